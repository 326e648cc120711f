"""`noisecli reproduce`: the whole paper on the embedded corpus in one command, then a report.

    What  prepare: English Wikipedia clean; α ∈ {0.01, 0.05, 0.2} of the paper's `random` noise (0.01 not in
          `small`); α = 0.05 Gaussian and uniform; English + French as Pⁿ (the multilingual case) — pretrain
          a GPT-2 on each (same seed, iterations, batches), and clean again with a second seed (the noise
          floor) — eval-ntp on clean validation and each run's own noise at every checkpoint, and on NYT and
          movie sentences at the last
    Why   theory k and predict for every noisy run, lemma1 on the α = 0.2 run
    How   extract from every run's final checkpoint for the offline tasks; probe linear and MLP heads,
          baseline and LGM, over seeds (Table 1); the regulariser ablation on the clean run (Table 5); LGM
          over a γ × λ grid (Table 6); full fine-tuning of MiniLM with L²-SP, SMART and LNSR, each ± LGM,
          on two embedded tasks (Table 4's analogue)

Every stage writes into its own folder under --out and is skipped when its manifest says it finished,
so rerunning the command resumes; a pretraining run that was cut short continues from its checkpoint.
"""

from __future__ import annotations

import functools
import gzip
import multiprocessing
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from noisecli.core.errors import InputError, Interrupted, RunError, raise_if_interrupted
from noisecli.core.manifest import Record, atomic_path, check_output, provenance, read_manifest, write_json, write_text
from noisecli.core.options import device_opt, opt
from noisecli.core.stage import Stage
from noisecli.core.tables import console
from noisecli.paper.plan import DATASETS, Scale, Step, experiment


class BudgetMarker(Record):
    """budget.json: which --budget a reproduction folder holds."""
    budget: str


HELP = ("The whole paper on the embedded corpus in one command (prepare, pretrain, eval-ntp, theory, extract, "
        "probe, finetune, scan) and a report.md with figures, tables and findings; resumable.")   # `noisecli --help`


@dataclass
class ReproduceConfig:
    out: Path | None = opt(None, "Output folder: data/, runs/, eval/, theory/, features/, probe/, report.md, "
                           "reproduce.json. Default: results/reproduce-<budget>.")
    budget: str = opt("small", "micro (a few minutes: CI smoke test), small (~45 minutes on 2 CPU cores, measured in parts), "
                      "gpu (one GPU, about 5 epochs per run, sized for 10 minutes, not yet measured) or "
                      "paper (print the full-scale plan: OpenWebText, gpt2-124m, 300,000 iterations, 8 GPUs).",
                      choices=lambda: [*BUDGETS, "paper"])
    launch: bool = opt(False, "With --budget paper: run the plan's commands one after another.")
    device: str = device_opt("for every stage")


@dataclass
class Budget:
    docs: int | None              # English documents (None = all 10,033); French likewise
    model: dict                   # pretrain preset overrides
    iters: int
    batch_size: int
    eval_every: int
    eval_tokens: int              # tokens scored per file by eval-ntp and lemma1
    task_limit: int               # samples per split for extract
    tasks: list[str]
    seeds: int
    epochs: int
    lrs: list[float]
    batch_sizes: list[int]
    estimate_min: float           # minutes on a 2-core machine (measured), or on one GPU for `gpu`
    ablation_task: str = "movie"
    preset: str = "tiny"          # pretrain preset the model overrides apply to
    lr: float | None = None       # peak / final learning rate (None: pretrain's defaults, the paper's 6e-4 → 6e-5)
    min_lr: float | None = None
    device: str | None = None     # a budget made for one kind of device (gpu: cuda)
    warmup: int | None = None     # warm-up iterations (None: a tenth of iters)
    side_by_side: int = 1         # pretraining runs trained at once, one CPU thread each (see _pretrain_together)
    skip: tuple[str, ...] = ()    # datasets (and their runs) this budget leaves out
    bert: dict = field(default_factory=lambda: dict(arch="bert", preset="bert-tiny"))   # Table 9's runs: what
    #                               differs from the GPT runs (the budget's model overrides apply to both)
    finetune: dict = field(default_factory=dict)   # Table 4's analogue: FinetuneConfig fields (MiniLM, offline;
    #                               mean pooling, as MiniLM was trained, and lr 1e-4: with [CLS] and 2e-5 it stayed
    #                               near the majority class in the few steps a budget affords)


BUDGETS = {
    "micro": Budget(docs=500, model=dict(n_layer=2, n_head=2, n_embd=64, block_size=64), iters=12, batch_size=4,
                    eval_every=6, eval_tokens=2_000, task_limit=100, tasks=["movie", "wiki-topic"], seeds=2,
                    epochs=3, lrs=[1e-3], batch_sizes=[16], estimate_min=2, side_by_side=2,
                    finetune=dict(task=["amazon", "movie-rating"], limit=32, epochs=1, seeds=2, batch_size=8,
                                  max_length=24, lr=1e-4, pool="mean")),
    # 2 CPU cores: `tiny` narrowed to 64 and deepened to 12 blocks (the 50304-wide LM head is most of a step's
    # FLOPs and scales with the width; blocks at width 64 are cheap, and depth learned faster per token), a
    # learning rate of 4e-3 after 50 warm-up iterations (6e-3 after 25 spiked back to the unigram plateau),
    # micro-batch 8 (more optimizer steps per token), 900 iterations ≈ 0.9 epoch of the embedded corpus, two
    # runs side by side on one thread each; α = 0.01 is left out here to fit the time, and Table 4's analogue
    # fine-tunes on 64 samples per split (96 before the third clean seed: 45 minutes in all, docs/findings.md).
    # docs/findings.md has the measurements behind each choice.
    "small": Budget(docs=None, model=dict(n_embd=64, n_layer=12), iters=900, batch_size=8, eval_every=300,
                    eval_tokens=16_000, task_limit=800, tasks=["movie", "amazon", "nyt", "wiki-topic"], seeds=3,
                    epochs=10, lrs=[3e-4, 6e-4], batch_sizes=[16, 32], estimate_min=45, lr=4e-3, min_lr=4e-4,
                    warmup=50, side_by_side=2, skip=("random-0.01",),
                    bert=dict(arch="bert", preset="bert-tiny", max_iters=300, eval_every=100, save_every=100,
                              log_every=10),
                    finetune=dict(task=["amazon", "movie-rating"], limit=64, epochs=2, seeds=2, batch_size=16,
                                  max_length=48, lr=1e-4, pool="mean")),
    # one GPU: the `small` preset (6 layers, 384 wide, context 256), about 5 epochs of the embedded corpus per run
    # (300 × 64 × 256 = 4.9 M tokens of 0.99 M): several epochs, as the paper's ~22, but a 30 M-parameter model on
    # 1 M tokens may overfit within a few (the first guess, 16 epochs, likely would), so reproduce checks the clean
    # run (last validation loss within 0.02 nats of its minimum over the 6 checkpoints) and warns. Not yet run on
    # a GPU (issue #30: bench/gpu.sh runs it); the estimate is from FLOPs: 6 × 30 M × 4.9 M ≈ 9e14 per run, ~3 s
    # at 30 % of an H100's bf16 peak, so the budget's minutes go to compiling, evaluation, extraction and probes.
    "gpu": Budget(docs=None, model={}, preset="small", iters=300, batch_size=64, eval_every=50, eval_tokens=100_000,
                  task_limit=2_000, tasks=["movie", "amazon", "nyt", "wiki-topic"], seeds=3, epochs=10,
                  lrs=[3e-4, 6e-4], batch_sizes=[16, 32], estimate_min=10, lr=1e-3, min_lr=1e-4, device="cuda",
                  bert=dict(arch="bert", preset="bert-tiny", n_layer=6, n_head=6, n_embd=384, block_size=256),
                  finetune=dict(task=["amazon", "movie-rating"], limit=1000, epochs=3, seeds=3, batch_size=32,
                                max_length=64, lr=1e-4, pool="mean", dtype="float32")),
}
OTHER_CORPORA = {"nyt": "nyt", "movie": "movie"}


@dataclass
class Job:
    """One unit of a reproduction's work: a plan step, or a group of pre-training runs trained together."""
    name: str
    done: Callable[[], bool]
    run: Callable[[], object]
    seconds: float | None = None
    skipped: bool = False


@dataclass
class Plan:
    out: Path
    budget: Budget
    device: str
    stages: list[Job] = field(default_factory=list)

    def add(self, name: str, done: Callable[[], bool], run: Callable[[], object]) -> None:
        self.stages.append(Job(name, done, run))


def _subset(lang: str, docs: int | None, out: Path) -> str:
    """The embedded corpus, or its first `docs` documents as a .jsonl (micro budget)."""
    if docs is None:
        return lang
    from noisecli.what.corpus import data_path
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(data_path(f"corpus/wiki_{lang}.jsonl.gz"), "rt", encoding="utf-8") as f:
        lines = [line for _, line in zip(range(docs), f)]
    write_text(out, "".join(lines))
    return str(out)


def _other_corpus(task: str, out: Path) -> None:
    """A task's sentences (all splits) as an EOT-separated token file, for eval-ntp's "other corpora"."""
    from noisecli.how.tasks import load_task
    from noisecli.what.token_files import TokenWriter
    from noisecli.what.tokenizer import EOT, encode
    out.parent.mkdir(parents=True, exist_ok=True)
    t = load_task(task)
    with atomic_path(out) as tmp, TokenWriter(tmp) as w:
        for split in t.splits.values():
            for sample in split.inputs:
                w.write(np.append(encode(sample["text"]), np.uint16(EOT)).astype(np.uint16))


def _finished_run(run: Path, iters: int) -> bool:
    from noisecli.training.checkpoint import list_checkpoints
    ckpts = list_checkpoints(run)
    return bool(ckpts) and ckpts[-1][0] >= iters


def _pretrain(config, threads: int = 0) -> None:
    """One run of the plan, resumed from its checkpoint when it has one."""
    from noisecli.training.checkpoint import list_checkpoints
    from noisecli.what.pretrain import pretrain
    run = Path(config.out)
    if run.exists() and not list_checkpoints(run):
        shutil.rmtree(run)  # started but never saved: start again
    summary = pretrain(replace(config, resume=bool(list_checkpoints(run)), threads=threads))
    if summary["status"] == "interrupted":  # SIGINT/SIGTERM: the checkpoint is saved; stop the whole plan
        raise Interrupted(summary.get("signal") or signal.SIGINT)


def _pretrain_process(config, parent: int) -> None:
    """One run of a pair, in its own process: a stop signal ends it with 128 + the signal's number, and so does
    the death of `parent` (SIGTERM: it saves a checkpoint), so that a killed reproduce leaves no run behind."""
    from noisecli.core.workers import die_with_parent
    die_with_parent(parent, signal.SIGTERM)
    try:
        _pretrain(config, threads=1)
    except (Interrupted, KeyboardInterrupt) as e:
        raise SystemExit(128 + int(getattr(e, "signum", signal.SIGINT))) from None


def _pretrain_together(configs: list) -> None:
    """Train `names` at once, one process and one CPU thread each. The small budget's models are too narrow
    for two threads to help one run much: on 2 cores, two single-thread runs of width 64 × 8 blocks trained
    4,550 tokens/s in all, one two-thread run 3,750 (docs/findings.md). Each run stays resumable on its own; a stop signal
    reaches both, which save a checkpoint and stop."""
    if len(configs) == 1:
        return _pretrain(configs[0])
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_pretrain_process, args=(config, os.getpid())) for config in configs]
    for p in procs:
        p.start()
    stopped = []

    def forward(signum, frame):
        stopped.append(signum)
        for p in procs:
            if p.is_alive():
                os.kill(p.pid, signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.join()
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    stops = {128 + signal.SIGINT: signal.SIGINT, 128 + signal.SIGTERM: signal.SIGTERM,   # saved, then stopped
             -signal.SIGINT: signal.SIGINT, -signal.SIGTERM: signal.SIGTERM}               # killed before training
    signalled = [stops[p.exitcode] for p in procs if p.exitcode in stops]
    if stopped or signalled:
        raise Interrupted(stopped[0] if stopped else signalled[0])
    failed = [f"{Path(c.out).name} (exit {p.exitcode})" for c, p in zip(configs, procs) if p.exitcode]
    if failed:
        raise RunError(f"pretraining failed: {', '.join(failed)}; rerun to resume from the last checkpoints")


def budget_scale(cfg: ReproduceConfig, b: Budget) -> Scale:
    """The experiment at a budget's scale: the embedded corpora (or their first documents), a small model,
    the offline tasks, and two steps of the budget's own: Figure 4's corpora tokenized from the offline
    tasks' sentences, and k and the predicted rise taken from eval-ntp's losses instead of scored again."""
    out = Path(cfg.out)
    source = functools.cache(lambda lang: _subset(lang, b.docs, out / "data" / "src" / f"wiki_{lang}.jsonl"))
    others = {name: out / "data" / "other" / f"{name}.bin" for name in OTHER_CORPORA}
    results = out / "eval" / "results.json"

    def k_step(noisy: list[str]) -> Step:
        return Step("theory k + predict (from eval-ntp's losses)", run=lambda: [_theory(out, n) for n in noisy],
                    done=lambda: all(_newer(out / "theory" / n / "predict.json", results) for n in noisy))
    return Scale(
        root=out,
        sources={lang: dict(source=source(lang), workers=2) for lang in ("en", "fr")},
        datasets=[n for n in DATASETS if n not in b.skip],
        pretrain=dict(preset=b.preset, **b.model, batch_size=b.batch_size, grad_accum=1,
                      **({"lr": b.lr, "min_lr": b.min_lr} if b.lr is not None else {}),
                      max_iters=b.iters, warmup_iters=b.warmup or max(1, b.iters // 10), eval_every=b.eval_every,
                      eval_windows=32, log_every=max(1, b.iters // 30), save_every=b.eval_every, keep_last=1000,
                      device=cfg.device),
        eval=dict(max_tokens=b.eval_tokens, device=cfg.device, plot=True, own_noise_only=True),
        tasks=b.tasks, extract=dict(limit=b.task_limit, device=cfg.device),
        probe=dict(seeds=b.seeds, epochs=b.epochs, lr=b.lrs, batch_size=b.batch_sizes, head=["linear", "mlp"],
                   device="cpu"),
        theory=dict(max_tokens=b.eval_tokens, device=cfg.device),
        other_corpora=[Step(f"tokenize other corpus {name}", run=functools.partial(_other_corpus, name, path),
                            done=path.is_file) for name, path in others.items()],
        other_files=list(others.values()), k_from_eval=k_step, ablation_task=b.ablation_task,
        bert=b.bert, finetune={**b.finetune, "device": cfg.device, "resume": True} if b.finetune else None)


def _done(step: Step) -> Callable[[], bool]:
    """Whether a step has finished: its stage's output is there (`Stage.done`), or the budget's own test."""
    return step.done if step.stage is None else lambda: step.stage.done(step.config)


def _runner(step: Step) -> Callable[[], object]:
    """What runs a step: the stage's Python function on its config, as its command would."""
    if step.stage is None:
        return step.run
    return lambda: raise_if_interrupted(step.stage.run(step.config) or {})


def build(cfg: ReproduceConfig) -> Plan:
    """The budget's stages: the experiment's steps (paper/plan.py), with the pretraining runs grouped to
    train `side_by_side` at a time."""
    b, out = BUDGETS[cfg.budget], Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    marker = out / "budget.json"
    held = read_manifest(marker, ("budget",), BudgetMarker)["budget"] if marker.is_file() else cfg.budget
    if held != cfg.budget:
        raise InputError(f"{out} holds a --budget {held} reproduction; "
                         f"use another --out for --budget {cfg.budget}")
    write_json(marker, {"budget": cfg.budget, "settings": b.__dict__})
    plan = Plan(out, b, cfg.device)
    steps = experiment(budget_scale(cfg, b))
    runs = [s.config for s in steps if s.command == "pretrain"]
    for step in steps:
        if step.command != "pretrain":
            plan.add(step.name, _done(step), _runner(step))
        elif step.config is runs[0]:   # every run trains here, `side_by_side` at a time
            for i in range(0, len(runs), b.side_by_side):
                group = runs[i:i + b.side_by_side]
                plan.add(f"pretrain {' + '.join(Path(c.out).name for c in group)}",
                         lambda group=group: all(_finished_run(Path(c.out), c.max_iters) for c in group),
                         lambda group=group: _pretrain_together(group))
    return plan


def _newer(path: Path, than: Path) -> bool:
    return path.is_file() and than.is_file() and path.stat().st_mtime >= than.stat().st_mtime


def _theory(out: Path, name: str) -> None:
    """k over training and Proposition 1's prediction for one noisy run, from the losses eval-ntp already
    measured (the clean run is its baseline and was scored on every file): nothing is scored twice."""
    from noisecli.why import proposition, theory
    from noisecli.what.eval_ntp import EvalResults
    ev = read_manifest(out / "eval" / "results.json", schema=EvalResults)
    base = {(r["iter"], r["dataset"]): r["loss"] for r in ev["baseline_rows"]}
    mine = {(r["iter"], r["dataset"]): r["loss"] for r in ev["rows"] if r["run"] == name}
    rows = []
    for it in sorted({i for i, _ in mine}):
        c, n = (it, "clean/val"), (it, f"{name}/noise")
        if all(key in base and key in mine for key in (c, n)):
            rows.append({"iter": it, "Lc_clean": base[c], "Lc_noisy": mine[c], "Ln_noisy": mine[n], "Ln_clean": base[n]})
    folder = out / "theory" / name
    k = proposition.k_table(rows)
    theory.write_k(k, folder)
    predict = proposition.predict_from_losses(rows[-1], DATASETS[name][0])
    write_json(folder / "predict.json", {**predict, "k_rows": k["rows"], "losses": "eval/results.json"})


def reproduce(cfg: ReproduceConfig) -> dict:
    if cfg.budget == "paper":
        from noisecli.paper.plan import paper_commands
        cmds = paper_commands(Path(cfg.out or "results/paper"))
        console.print("[bold]Paper-scale plan[/bold] (OpenWebText, gpt2-124m, 300,000 iterations × 16 × 40 × 1024 "
                      "tokens, 8 GPUs; about 4 days per run on 8 A100s):")
        for c in cmds:
            console.print("  " + c, soft_wrap=True)
        if cfg.launch:
            for c in cmds:
                console.print(f"[bold]$ {c}[/bold]", soft_wrap=True)
                code = subprocess.call([sys.executable, "-m", "noisecli", *shlex.split(c)[1:]])
                if code:
                    raise InputError(f"stopped: `{c}` exited with {code}")
        return {"budget": "paper", "commands": cmds, "launched": cfg.launch}
    if cfg.budget not in BUDGETS:
        raise InputError(f"--budget must be {', '.join(BUDGETS)} or paper, not '{cfg.budget}'")
    if cfg.launch:
        raise InputError("--launch goes with --budget paper (micro and small always run)")
    if cfg.out is None:
        cfg.out = Path(f"results/reproduce-{cfg.budget}")
    check_output(cfg.out)
    if BUDGETS[cfg.budget].device and cfg.device == "auto":
        cfg.device = BUDGETS[cfg.budget].device
    from noisecli.training.distributed import pick_device
    pick_device(cfg.device)   # a missing device fails here, before any work
    plan = build(cfg)
    todo = [s for s in plan.stages if not s.done()]
    share = plan.budget.estimate_min * len(todo) / len(plan.stages)
    console.print(f"[bold]noisecli reproduce --budget {cfg.budget}[/bold] → {plan.out}: {len(plan.stages)} stages, "
                  f"{len(plan.stages) - len(todo)} already done; estimate ≈ {share:.0f} min "
                  f"{'on one GPU' if plan.budget.device == 'cuda' else 'on 2 CPU cores'}")
    for s in plan.stages:
        console.print(f"  {'✓' if s.done() else '·'} {s.name}")
    t0 = time.perf_counter()
    for s in plan.stages:
        if s.done():
            s.skipped = True
            continue
        console.print(f"[bold]▶ {s.name}[/bold]")
        t = time.perf_counter()
        s.run()
        s.seconds = time.perf_counter() - t
    from noisecli.paper.report import write_report
    t = time.perf_counter()
    report = write_report(plan.out, cfg.budget)
    from noisecli.paper.report import FindingsFile
    over = read_manifest(plan.out / "report" / "findings.json", schema=FindingsFile).get("overfitting")
    if over and over["overfits"]:
        print(f"noisecli: warning: the clean model overfits: its last validation loss is {over['excess']:.3f} nats above "
              f"its minimum (iteration {over['best_iter']}); the report says so", file=sys.stderr)
    stages = [{"stage": s.name, "seconds": round(s.seconds, 1) if s.seconds is not None else None,
               "skipped": s.skipped} for s in plan.stages] + [
        {"stage": "report", "seconds": round(time.perf_counter() - t, 1), "skipped": False}]
    result = {**provenance(), "budget": cfg.budget, "budget_settings": plan.budget.__dict__, "stages": stages,
              "elapsed_s": round(time.perf_counter() - t0, 1), "report": str(report)}
    write_json(plan.out / "reproduce.json", result)
    from rich.table import Table
    table = Table(title=f"reproduce --budget {cfg.budget}: {result['elapsed_s']:.0f} s  →  {report}")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    for s in stages:
        table.add_row(s["stage"], "done before" if s["skipped"] else f"{s['seconds']:.1f}")
    console.print(table)
    return result


STAGE = Stage("reproduce", ReproduceConfig, reproduce, HELP)
