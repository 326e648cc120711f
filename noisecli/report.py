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
