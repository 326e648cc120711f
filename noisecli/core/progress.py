"""One progress reporter for every long loop: a rich bar on a terminal, plain periodic lines otherwise
(CI logs, files). Extra fields (loss, tokens/s, ...) are shown beside the bar or in the line."""

from __future__ import annotations

import sys
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

console = Console(stderr=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


class Reporter:
    """Usage: `with Reporter("tokenize", total=n, unit="docs") as r: r.advance(k, tokens_per_s=...)`.
    `total=None` means unknown length (streaming sources)."""

    def __init__(self, description: str, total: float | None = None, unit: str = "",
                 every_s: float = 10.0, enabled: bool = True):
        self.description, self.total, self.unit = description, total, unit
        self.every_s, self.enabled = every_s, enabled
        self.done = 0.0
        self.fields: dict[str, Any] = {}
        self.interactive = console.is_terminal and enabled
        self._bar: Progress | None = None
        self._last_line = 0.0
        self.t0 = time.perf_counter()

    def __enter__(self) -> "Reporter":
        if self.interactive:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn(self.unit),
                                 TimeElapsedColumn(), TimeRemainingColumn(),
                                 TextColumn("{task.fields[info]}"), console=console, transient=False)
            self._bar.start()
            self._task = self._bar.add_task(self.description, total=self.total, info="")
        self._last_line = time.perf_counter()
        return self

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def info(self) -> str:
        return "  ".join(f"{k}={_fmt(v)}" for k, v in self.fields.items())

    def advance(self, n: float = 1, **fields: Any) -> None:
        self.done += n
        self.fields.update(fields)
        if self._bar is not None:
            self._bar.update(self._task, advance=n, info=self.info())
        elif self.enabled and time.perf_counter() - self._last_line >= self.every_s:
            self.line()

    def line(self) -> None:
        total = f"/{_fmt(self.total)}" if self.total else ""
        print(f"[{self.description}] {_fmt(self.done)}{total} {self.unit} "
              f"{self.elapsed():.1f}s {self.info()}".rstrip(), file=sys.stderr, flush=True)
        self._last_line = time.perf_counter()

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
