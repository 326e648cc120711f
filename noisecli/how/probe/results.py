"""What `noisecli probe` writes and prints: the paper's Table 1 layout (one row per backbone × method, one
column per task × head), as results.md beside results.json/.csv, and on the command line."""

from __future__ import annotations

from pathlib import Path


from noisecli.core.manifest import Record
from noisecli.core.tables import markdown_table, write_table


class ProbeRow(Record):
    """One row of results.json: a head on one task's features (what the report and the findings read)."""
    features: str
    backbone: str
    task: str
    head: str
    method: str
    variant: str | None = None
    test_acc: float
    test_std: float
    seed_list: list[int] | None = None
    test_acc_per_seed: list[float] | None = None


class ProbeResults(Record):
    """results.json of `probe`, as `reproduce`'s findings and report read it back."""
    rows: list[ProbeRow]
    std: str


def probe_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    """The paper's Table 1 layout: one row per backbone × method, one column per task × head,
    cells "test accuracy ± std" in %."""
    columns = list(dict.fromkeys((r["task"], r["head"]) for r in rows))

    def method(r: dict) -> str:   # a (γ, λ) grid gives one line per setting (Table 6)
        return f"{r['method']} ({r['variant']})" if r.get("variant") else r["method"]
    lines = list(dict.fromkeys((r["backbone"], method(r)) for r in rows))
    cell = {(r["backbone"], method(r), r["task"], r["head"]): f"{r['test_acc']:.2f} ± {r['test_std']:.2f}"
            for r in rows}
    header = ["backbone", "method"] + [f"{task} ({head})" for task, head in columns]
    body = [[b, m] + [cell.get((b, m, t, h), "") for t, h in columns] for b, m in lines]
    return header, body


def write_probe_tables(folder, rows: list[dict], result: dict) -> None:
    """results.json (everything), results.csv (one row per features × head × method), results.md."""
    write_table(Path(folder) / "results", rows, result)
    header, body = probe_table(rows)
    note = (f"\nTest accuracy (%) of the setting chosen by validation accuracy, mean ± {result['std']} "
            f"over {rows[0]['seeds'] if rows else 0} seeds.\n")
    (Path(folder) / "results.md").write_text(markdown_table(header, body) + note)


def show(cfg, result: dict) -> None:
    """The command's table, and each setting the validation chose."""
    from rich.table import Table

    from noisecli.core.tables import console
    header, body = probe_table(result["rows"])
    table = Table(title=f"probe: test accuracy % (mean ± std over seeds)  ({result['out']}/results.md)")
    for i, col in enumerate(header):
        table.add_column(col, justify="left" if i < 2 else "right")
    for r in body:
        table.add_row(*r)
    console.print(table)
    for r in result["rows"]:
        console.print(f"  {r['features']} {r['head']} {r['method']}: lr {r['lr']:g}, batch {r['batch_size']}, "
                      f"val {r['val_acc']:.2f}%, {r['seconds']:.1f} s")
