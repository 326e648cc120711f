"""The metrics log of a training run: one JSON line per logged iteration in RUN_DIR/metrics.jsonl,
written by rank 0 only. On resume the lines past the checkpoint are dropped, so the log reads as one
uninterrupted run."""

from __future__ import annotations

import json
from pathlib import Path

from noisecli.core.manifest import write_text


class MetricsLog:
    def __init__(self, path: Path, enabled: bool = True, mirrors: list | None = None):
        self.path, self.enabled = Path(path), enabled
        self.mirrors = mirrors or []     # --report-to: TensorBoard, W&B (report_to.py), rank 0 only

    def resume_at(self, iteration: int) -> None:
        """Keep the lines up to `iteration`, the checkpoint's (which logged its own line before saving); none
        when starting at 0, which logs iteration 0 again (a run killed before its first checkpoint)."""
        if not self.enabled or not self.path.exists():
            return
        lines = []
        for line in self.path.read_text().splitlines() if iteration > 0 else ():
            try:
                if json.loads(line)["iter"] <= iteration:
                    lines.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                pass   # a line cut short by a killed process (it is past the checkpoint anyway)
        write_text(self.path, "".join(line + "\n" for line in lines))

    def write(self, record: dict) -> None:
        if self.enabled:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")
            for m in self.mirrors:
                m.log(record)

    def close(self) -> None:
        for m in self.mirrors:
            m.close()

    def last(self) -> dict:
        """The newest value of every metric logged so far (empty when nothing was)."""
        merged: dict = {}
        if self.enabled and self.path.exists():
            for line in self.path.read_text().splitlines():
                if line.strip():
                    merged.update(json.loads(line))
        return merged
