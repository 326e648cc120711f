"""`finetune`'s results in the paper's Table 4 layout: one row per method (each regulariser, then with
LGM), one column per task, the test score at the best validation epoch as mean ± std over seeds (sample
std), and LGM's gain over the same method paired by seed (mean ± standard error, wins/ties/losses)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydantic import model_validator

from noisecli.core.manifest import Record
from noisecli.core.stats import paired_seeds


class FinetuneRow(Record):
    """One method on one task over its seeds; its headline score's mean and std must be there."""
    task: str
    method: str
    headline: str
    chance: float | None = None

    @model_validator(mode="after")
    def _headline_scores(self):
        for key in (f"test_{self.headline}_mean", f"test_{self.headline}_std"):
            value = (self.model_extra or {}).get(key, "missing")
            if not (value is None or isinstance(value, (int, float))) or isinstance(value, bool):
                raise ValueError(f"{key} must be a number (got {value!r})")
        return self


class LgmGain(Record):
    task: str
    method: str
    score: str
    mean: float
    wins: int
    ties: int
    losses: int


class FinetuneSettings(Record):
    model: str
    seeds: int


class FinetuneResults(Record):
    """results.json of `finetune`, as `finetune` itself (done or not), the findings and the report read it back."""
    status: str
    tasks: list[str]
    methods: list[str]
    rows: list[FinetuneRow]
    lgm_gains: list[LgmGain] = []
    config: FinetuneSettings
    method: str


class RunResult(Record):
    """runs/TASK/METHOD/seedS/result.json: one finished run, which a rerun takes instead of training again."""
    task: str
    method: str
    seed: int
    scores: list[str]
    val: dict[str, float]
    test: dict[str, float]
    best_epoch: int


def _mean_std(values: list[float]) -> tuple[float, float | None]:
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1)) if len(v) > 1 else None)


def summarise(results: list[dict], cfg, status: str) -> dict:
    tasks = list(dict.fromkeys(r["task"] for r in results))
    methods = list(dict.fromkeys(r["method"] for r in results))
    rows, gains = [], []
    for task in tasks:
        for method in methods:
            runs = sorted((r for r in results if r["task"] == task and r["method"] == method), key=lambda r: r["seed"])
            if not runs:
                continue
            row = {"task": task, "method": method, "seeds": len(runs), "headline": runs[0]["scores"][0],
                   "chance": runs[0].get("chance", {}).get(runs[0]["scores"][0])}
            for k in runs[0]["scores"]:
                row[f"test_{k}_mean"], row[f"test_{k}_std"] = _mean_std([r["test"][k] for r in runs])
            row["val_mean"] = _mean_std([r["val"][row["headline"]] for r in runs])[0]
            # no better than predicting the majority class: training failed (or diverged); flagged, not a result
            row["at_chance"] = row["chance"] is not None and row[f"test_{row['headline']}_mean"] <= row["chance"]
            row["best_epochs"] = [r["best_epoch"] for r in runs]
            row["test_by_seed"] = {r["seed"]: r["test"][row["headline"]] for r in runs}
            rows.append(row)
    for row in rows:
        if row["method"].endswith("+lgm"):
            base = next((b for b in rows if b["task"] == row["task"] and b["method"] == row["method"][:-4]), None)
            common = sorted(set(row["test_by_seed"]) & set(base["test_by_seed"])) if base else []
            if common:
                g = paired_seeds([row["test_by_seed"][s] - base["test_by_seed"][s] for s in common])
                gains.append({"task": row["task"], "method": row["method"][:-4], "score": row["headline"], **g})
    return {"status": status, "tasks": tasks, "methods": methods, "rows": rows, "lgm_gains": gains,
            "config": {"model": cfg.model, "epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
                       "gamma": cfg.gamma, "lam": cfg.lam, "seeds": cfg.seeds, "limit": cfg.limit},
            "method": "test score (%) at the epoch with the best validation score; mean ± sample std over seeds; "
                      "LGM gains paired by seed (mean ± standard error)"}


def _cell(row: dict | None) -> str:
    if row is None:
        return ""
    k = row["headline"]
    mean, std = row[f"test_{k}_mean"], row[f"test_{k}_std"]
    return f"{mean:.2f}" + (f" ± {std:.2f}" if std is not None else "") + (" (≤ chance)" if row.get("at_chance") else "")


def table_markdown(summary: dict) -> str:
    """Table 4's layout: methods × tasks (the headline score of each task in its column's title)."""
    rows = {(r["task"], r["method"]): r for r in summary["rows"]}
    heads = {r["task"]: r["headline"] for r in summary["rows"]}
    lines = ["| method | " + " | ".join(f"{t} ({heads[t]})" for t in summary["tasks"]) + " |",
             "|---" * (len(summary["tasks"]) + 1) + "|"]
    for m in summary["methods"]:
        lines.append(f"| {m.replace('+lgm', ' + L_gm')} | "
                     + " | ".join(_cell(rows.get((t, m))) for t in summary["tasks"]) + " |")
    if summary["lgm_gains"]:
        lines += ["", "| LGM gain | task | Δ score (mean ± s.e.) | wins/ties/losses |", "|---|---|---|---|"]
        for g in summary["lgm_gains"]:
            se = f" ± {g['se']:.2f}" if g["se"] is not None else ""
            lines.append(f"| {g['method']} | {g['task']} | {g['mean']:+.2f}{se} | {g['wins']}/{g['ties']}/{g['losses']} |")
    return "\n".join(lines) + "\n"


def write_results(out: Path, summary: dict) -> None:
    from noisecli.core.manifest import write_text
    from noisecli.core.tables import write_table
    flat = [{"task": r["task"], "method": r["method"], "seeds": r["seeds"], "score": k,
             "headline": k == r["headline"], "test_mean": r[f"test_{k}_mean"], "test_std": r[f"test_{k}_std"],
             "chance": r["chance"] if k == r["headline"] else None, "at_chance": r.get("at_chance", False)}
            for r in summary["rows"] for k in [key[5:-5] for key in r if key.startswith("test_") and key.endswith("_mean")]]
    write_table(Path(out) / "results", flat, summary)
    write_text(Path(out) / "table.md", f"# Fine-tuning (Table 4 layout)\n\n{summary['method']}.\n\n"
               + table_markdown(summary))


def print_table(summary: dict) -> None:
    from rich.table import Table

    from noisecli.core.tables import console
    rows = {(r["task"], r["method"]): r for r in summary["rows"]}
    table = Table(title="fine-tuning: test score at the best validation epoch, mean ± std over seeds")
    table.add_column("method")
    for t in summary["tasks"]:
        table.add_column(t, justify="right")
    for m in summary["methods"]:
        table.add_row(m, *(_cell(rows.get((t, m))) for t in summary["tasks"]))
    console.print(table)
    failed = [f"{r['method']} on {r['task']}" for r in summary["rows"] if r.get("at_chance")]
    if failed:
        from noisecli.core.errors import warn
        warn(f"no better than predicting the majority class (training failed or diverged; marked '≤ chance'): "
             f"{', '.join(failed)}")
