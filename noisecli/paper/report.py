"""The report of `noisecli reproduce`: a table of findings a reader takes in at a glance (finding, the paper's
claim, what was measured here with its interval and seeds, verdict), one paragraph per finding, then the
figures and tables of each stage. The findings and their rules are in paper/findings/ (the rules: findings/base.py).

Reads only the stage outputs under the reproduce folder (eval/, theory/, probe/, finetune/, data/); writes
report.md and report/{ntp_final,findings}.{json,csv}.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from pydantic import BaseModel

from noisecli.core.manifest import Record, write_text
from noisecli.core.tables import markdown_table, write_table
from noisecli.how.finetune.results import FinetuneResults
from noisecli.how.probe.results import ProbeResults, probe_table
from noisecli.paper.evidence import MARGIN, load_json
from noisecli.paper.findings import findings
from noisecli.scan.report import ScanResult
from noisecli.what.eval_ntp import EvalResults
from noisecli.what.token_files import DatasetManifest
from noisecli.why.theory import Lemma1Result

VERDICT = {"agrees": "agrees", "disagrees": "disagrees at this scale", "within noise": "within noise",
           "not decidable": "not decidable"}


class Overfitting(BaseModel):
    last_iter: int
    best_iter: int
    excess: float
    overfits: bool


class FindingsFile(Record):
    """report/findings.json, as `reproduce` reads it back (whether the clean model overfits)."""
    findings: list[dict]
    overfitting: Overfitting | None = None


def _final_rows(ev: dict) -> list[dict]:
    """Each run's last iteration on the clean validation set, beside the clean baseline."""
    last = {}
    for r in ev["rows"]:
        last[r["run"]] = max(last.get(r["run"], 0), r["iter"])
    out = []
    for r in ev["rows"]:
        if r["iter"] == last[r["run"]] and r["dataset"].endswith("/val"):
            base = next((b for b in ev["baseline_rows"] if b["iter"] == r["iter"] and b["dataset"] == r["dataset"]),
                        None)
            if base is None:
                continue
            noise = next((n["loss"] for n in ev["rows"] if n["run"] == r["run"] and n["iter"] == r["iter"]
                          and n["dataset"] == f"{r['run']}/noise"), None)
            out.append({"run": r["run"], "alpha": r["alpha"], "iter": r["iter"], "clean_loss": base["loss"],
                        "noisy_loss": r["loss"], "rise": r["loss"] - base["loss"],
                        "relative_rise": (r["loss"] - base["loss"]) / base["loss"], "noise_loss": noise})
    return out


def _summary(items: list, evidence) -> list[str]:
    """The report's first lines: the gate, stated once, then the table of findings."""
    e = evidence
    seeds = len(e.clean_seeds)
    if e.margin is None:
        gate = "The clean runs or their data are missing: no finding is decided."
    else:
        per_seed = ", ".join(f"{s} {e.loss(s, 'clean/val'):.3f}" for s in e.clean_seeds)
        gate = (f"**Gate.** Every clean seed must score ≥ {MARGIN:.1f} nat below the clean data's unigram cross-entropy "
                f"on the same validation tokens ({e.unigram:.3f} nats) before a finding is decided. Clean validation "
                f"losses: {per_seed} ({seeds} seed{'s' if seeds > 1 else ''}); the worst margin is {e.margin:.2f} nats: "
                + ("findings are decided." if e.decidable else
                   "**no finding on the pre-trained GPT-2 models is decided** (the models have not learned beyond "
                   "token frequencies), though their numbers are shown."))
    over = e.overfitting()
    if over and over["overfits"]:
        gate += (f" **Warning: the clean model overfits.** Its validation loss at its last checkpoint ({over['last']:.4f} "
                 f"at iteration {over['last_iter']}) is {over['excess']:.3f} nats above its minimum ({over['best']:.4f} at "
                 f"{over['best_iter']}), more than {over['limit']:g}: fewer iterations or epochs would compare models "
                 "that are not over-trained.")
    if e.epochs is not None:
        gate += (f" The runs saw {e.epochs:.2f} epoch of their data (the paper: ~22 epochs of OpenWebText); each "
                 "verdict below says which comparison it rests on.")
    table = markdown_table(["finding", "the paper's claim", "measured here (95 % interval, seeds)", "verdict"],
                           [[f.name, f.claim, f.measured, f"**{VERDICT[f.status]}**" if f.status == "disagrees"
                             else VERDICT[f.status]] for f in items])
    return [gate, "", table, "",
            "Intervals hold both the scored windows and the training seeds unless a line says otherwise; the rules "
            "(gate, the one verdict rule, α/10, k > 10) are in `noisecli/paper/findings/base.py`. Every number is also "
            "in `report/findings.json` and `.csv`.", ""]


def _scan_section(out: Path) -> list[str]:
    """Your corpus: `noisecli scan` on one of the noisy datasets, α̂ beside the α that prepare put in."""
    lines = []
    for folder in sorted((out / "scan").glob("*")) if (out / "scan").is_dir() else []:
        scan = load_json(folder / "scan.json", ScanResult)
        meta = load_json(out / "data" / folder.name / "meta.json", DatasetManifest)
        if not scan or not meta:
            continue
        s = scan["shares"]["random noise (all kinds)"]["share_of_tokens"]
        lines += ["## Your corpus: `noisecli scan` on a noisy dataset", "",
                  f"Scanning `data/{folder.name}` (its train.bin, decoded and tokenized again), with no model: "
                  f"α̂ = {100 * s['value']:.2f} % of tokens flagged as random noise, 95 % interval [{100 * s['lo']:.2f}, "
                  f"{100 * s['hi']:.2f}] (bootstrap over documents); `prepare` put in α = {100 * meta['alpha_actual']:.2f} % "
                  f"of noise tokens. The decoded noise re-tokenizes to a slightly different number of tokens, so the "
                  f"two are shares of different token counts."
                  + (" Here the noise is appended after the clean text as one block, one document to the scan, so "
                     "the bootstrap over documents can say little about its share." if meta.get("placement") == "append"
                     else "") + f" Spans and examples: `scan/{folder.name}/`.", ""]
    return lines


def write_report(out: Path, budget: str) -> Path:
    out = Path(out)
    folder = out / "report"
    folder.mkdir(parents=True, exist_ok=True)
    ev = load_json(out / "eval" / "results.json", EvalResults)
    items, evidence = findings(out)
    write_table(folder / "findings", [f.row() for f in items],
                {"findings": [asdict(f) for f in items], "unigram_cross_entropy": evidence.unigram,
                 "clean_val_loss": evidence.clean_loss, "clean_seeds": evidence.clean_seeds,
                 "margins_nats": evidence.margins, "margin_nats": evidence.margin, "margin_needed_nats": MARGIN,
                 "seed_spread": evidence.spread(), "epochs": evidence.epochs, "overfitting": evidence.overfitting()})
    lines = [f"# noisecli reproduction — budget `{budget}`", "",
             "The paper *Do we really have to filter out random noise in pre-training data for language models?* "
             "at small scale on the embedded English Wikipedia corpus: tiny GPT-2 models, the same iterations and "
             "batches for every run, the clean configuration with several seeds. Every number below is read from the "
             "stage outputs in this folder (`eval/`, `theory/`, `probe/`, `finetune/`); `reproduce.json` says how each "
             "was made.", "", "## Findings", "", *_summary(items, evidence)]
    gated = evidence.gate() is not None
    for f in items:
        why = " (the gate above: the per-run verdicts in this paragraph are what the numbers would say)" \
            if gated and f.gated else ""
        lines += [f"### {f.name}", "", f"*The paper:* {f.claim}.", "", f"{f.text} **Verdict: {VERDICT[f.status]}{why}.**",
                  ""]
    if ev:
        final = _final_rows(ev)
        write_table(folder / "ntp_final", final, {"rows": final})
        lines += ["## What: next-token loss", "",
                  markdown_table(["run", "α", "iter", "clean run", "noisy run", "rise", "relative", "loss on noise"],
                                 [[r["run"], str(r["alpha"]), str(r["iter"]), f"{r['clean_loss']:.4f}",
                                   f"{r['noisy_loss']:.4f}", f"{r['rise']:+.4f}", f"{100 * r['relative_rise']:+.2f} %",
                                   f"{r['noise_loss']:.3f}" if r["noise_loss"] is not None else ""] for r in final]),
                  "(also `report/ntp_final.csv` and `.json`)", ""]
        for name, caption in (("fig2a_loss_vs_iter.png", "Figure 2(a): loss on clean validation data"),
                              ("fig2b_diff_same_iter.png", "Figure 2(b): difference to the clean run, same iteration"),
                              ("fig2c_diff_calibrated.png", "Figure 2(c): difference at the same clean tokens seen"),
                              ("fig3a_loss_on_noise.png", "Figure 3(a): loss on the noise"),
                              ("fig3bc_by_distribution.png", "Figure 3(b, c): by noise distribution"),
                              ("fig4_datasets.png", "Figure 4: loss on other corpora")):
            if (out / "eval" / name).is_file():
                lines += [f"![{caption}](eval/{name})", f"*{caption}*", ""]
    bert = load_json(out / "eval-bert" / "results.json", EvalResults)
    if bert:
        rows = [r for r in bert["rows"] + bert["baseline_rows"] if r["dataset"] == "clean/val"]
        iters = sorted({r["iter"] for r in rows})
        runs = list(dict.fromkeys(r["run"] for r in rows))
        loss = {(r["run"], r["iter"]): r["loss"] for r in rows}
        lines += ["## What: BERT under noise (Table 9)", "",
                  markdown_table(["run", *[f"iter {i}" for i in iters]],
                                 [[n, *[f"{loss[(n, i)]:.4f}" if (n, i) in loss else "" for i in iters]] for n in runs]),
                  "MLM loss at the masked positions of clean validation windows (fixed seeded masks); "
                  "`eval-bert/results.csv`.", ""]
    lines += ["## Why: theory", ""]
    if (out / "theory" / "random-0.2" / "k.png").is_file():
        lines += ["![Figure 7(a): k over training, α = 0.2](theory/random-0.2/k.png)",
                  "*Figure 7(a): k over training (α = 0.2 random noise); per-run values in `theory/*/k.csv`*", ""]
    lemma = load_json(out / "theory" / "lemma1.json", Lemma1Result)
    if lemma:
        lines += [f"Lemma 1 on the α = 0.2 training tokens: L(Pᵐ) = {lemma['L_mixture']:.4f}, "
                  f"αL(Pⁿ) + (1−α)L(Pᶜ) = {lemma['alpha_L_noise_plus_rest']:.4f} (gap {lemma['gap']:+.4f}; "
                  f"{lemma['why_inexact']}).", ""]
    for table, title in (("table1", "Table 1: linear and MLP heads, baseline vs LGM"),
                         ("table5", "Table 5: regulariser ablation on the clean run"),
                         ("table6", "Table 6: LGM's sensitivity to γ and λ on the clean run")):
        res = load_json(out / "probe" / table / "results.json", ProbeResults)
        if res:
            header, body = probe_table(res["rows"])
            lines += [f"## How: {title}", "", markdown_table(header, body),
                      f"Test accuracy % (mean ± {res['std']}); `probe/{table}/results.csv`, `.json`.", ""]
    table4 = load_json(out / "finetune" / "results.json", FinetuneResults)
    if table4:
        from noisecli.how.finetune.results import table_markdown
        lines += ["## How: Table 4, full fine-tuning with each regulariser ± LGM", "", table_markdown(table4),
                  f"{table4['method']}; `finetune/results.csv`, `.json`, runs in `finetune/runs/`.", ""]
    lines += _scan_section(out)
    if (out / "probe" / "table5" / "sensitivity.png").is_file():
        lines += ["![Figure 6: decision regions around a test sample](probe/table5/sensitivity.png)",
                  "*Figure 6: decision regions on a random 2-D plane around one test sample (none / L2 / LGM)*", ""]
    report = out / "report.md"
    write_text(report, "\n".join(lines) + "\n")
    return report
