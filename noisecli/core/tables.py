"""Human-readable summaries (rich tables on stdout) of what each stage wrote."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

console = Console()


def print_prepare_summary(meta: dict) -> None:
    tokens, docs = meta["tokens"], meta["documents"]
    table = Table(title=f"prepared {meta['out']}  ({meta['elapsed_s']:.1f} s)")
    for col in ("file", "documents", "tokens", "share of train"):
        table.add_column(col, justify="right" if col != "file" else "left")
    table.add_row("train.bin", f"{docs['train']:,} clean", f"{tokens['train']:,}", "100%")
    table.add_row("  clean part", "", f"{tokens['clean_train']:,}", f"{tokens['clean_train'] / tokens['train']:.2%}")
    table.add_row("  noise part", f"{docs['noise']:,}" if docs["noise"] else "", f"{tokens['noise']:,}",
                  f"{tokens['noise'] / tokens['train']:.2%}")
    table.add_row("val.bin", f"{docs['val']:,}", f"{tokens['val']:,}", "")
    table.add_row("noise.bin", "", f"{tokens['noise']:,}", "")
    console.print(table)
    noise = meta["noise"]
    console.print(f"α = {meta['alpha']} ({noise['dist']} noise, {meta['placement']}), seed {meta['seed']}, "
                  f"{tokens['train'] / meta['elapsed_s']:,.0f} tokens/s; manifest: {meta['out']}/meta.json")


def print_ntp_table(result: dict) -> None:
    rows = result["rows"] + result["baseline_rows"]
    table = Table(title=f"next-token loss  ({result['out']}/results.json, results.csv)")
    cols = ["run", "α", "dist", "iter", "dataset", "loss", "tokens"]
    diffs = any("diff_same_iter" in r for r in rows)
    cols += ["Δ same iter", "Δ same clean tokens"] if diffs else []
    for c in cols:
        table.add_column(c, justify="left" if c in ("run", "dist", "dataset") else "right")
    for r in rows:
        cells = [r["run"], str(r["alpha"]), str(r["dist"]), f"{r['iter']:,}", r["dataset"], f"{r['loss']:.4f}",
                 f"{r['tokens']:,}" + (" (capped)" if r["capped"] else "")]
        if diffs:
            cells += [f"{r[k]:+.4f}" if r.get(k) is not None else "" for k in ("diff_same_iter", "diff_calibrated")]
        table.add_row(*cells)
    console.print(table)
    console.print(result["method"] + ".")
    if any(r.get("objective") == "mlm" for r in result["rows"] + result["baseline_rows"]):
        console.print(result["method_mlm"] + ".")


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


def print_result(result: dict, title: str) -> None:
    """A theory result as a two-column table, or its rows as a table."""
    if "rows" in result:
        rows = result["rows"]
        table = Table(title=title)
        for col in rows[0] if rows else []:
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(*(f"{v:.5g}" if isinstance(v, float) else str(v) for v in r.values()))
        console.print(table)
        for key, value in result.items():
            if key != "rows":
                console.print(f"{key}: {value}")
        return
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in result.items():
        if key not in ("conclusion", "conclusions", "k_rows"):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    console.print(table)
    for c in result.get("conclusions") or []:   # Proposition 1: a conclusion only where its conditions hold
        console.print(f"({c['number']}) {c['statement']}  [dim]conditions: {c['conditions']}[/dim]" if c["holds"]
                      else f"({c['number']}) not concluded: its conditions fail ({c['conditions']})", soft_wrap=True)
    if "conclusion" in result and not result.get("conclusions"):
        console.print(result["conclusion"])


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


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in body]) + "\n"


def write_probe_tables(folder, rows: list[dict], result: dict) -> None:
    """results.json (everything), results.csv (one row per features × head × method), results.md."""
    from pathlib import Path
    write_table(Path(folder) / "results", rows, result)
    header, body = probe_table(rows)
    note = (f"\nTest accuracy (%) of the setting chosen by validation accuracy, mean ± {result['std']} "
            f"over {rows[0]['seeds'] if rows else 0} seeds.\n")
    (Path(folder) / "results.md").write_text(markdown_table(header, body) + note)


def print_probe_table(result: dict) -> None:
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
