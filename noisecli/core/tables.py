"""Tables every stage shares: the console, a table's JSON and CSV twins, and a markdown table. What each
stage prints of its own result is its `show` (core/stage.py)."""

from __future__ import annotations

from rich.console import Console

console = Console()


def write_table(stem, rows: list[dict], result: dict) -> None:
    """A table's JSON and CSV twins: STEM.json (the whole result) and STEM.csv (its rows)."""
    import csv
    from pathlib import Path

    from noisecli.core.manifest import atomic_path, provenance, write_json
    stem = Path(stem)
    write_json(stem.with_suffix(".json"), {**provenance(), **result})
    with atomic_path(stem.with_suffix(".csv")) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        writer.writeheader()
        writer.writerows(rows)


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body]) + "\n"
