"""`noisecli finetune`: full fine-tuning of a transformers encoder with L²-SP, SMART or LNSR, each alone
and with Local Gradient Matching (the paper's Table 4, §4.3).

For every task × regulariser × (± LGM) × seed, one run: every weight of the encoder and a linear head on
its pooled feature are trained on the shared loop (training/loop.py) for --epochs, evaluated on val and
test after every epoch; the epoch with the best validation score is the run's result. Seeds give
mean ± std, and the LGM gain is paired by seed (same initialisation, batches and dropout seeds).

The recipe, where the paper gives none for Table 4 (it cites Hua et al. 2021's numbers): BERT's GLUE
fine-tuning (Devlin et al. 2019) as Lee et al. 2020 and Hua et al. 2021 use it: AdamW lr 2e-5, batch 32,
3 epochs, linear warm-up over 10 % of the steps then linear decay to 0, weight decay 0.01, gradient
clipping at 1, 128 tokens. LGM: the paper's γ = 0.01, λ = 0.15.

    OUT/finetune.json                         how the sweep was made
    OUT/runs/TASK/METHOD/seedS/               run.json, metrics.jsonl (per epoch), result.json, checkpoints/
    OUT/results.json, results.csv, table.md   Table 4's layout: methods ± LGM × tasks, mean ± std
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, provenance, read_manifest, write_json
from noisecli.how.finetune.results import FinetuneResults, RunResult
from noisecli.core.options import SEED_DOWNSTREAM, as_dict, check_choices, device_opt, dtype_opt, opt, seed_opt
from noisecli.core.stage import Stage
from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.tasks import TASKS


HELP = ("Fine-tune every weight of a transformers encoder with L²-SP, SMART or LNSR, each alone and with LGM "
        "(the paper's Table 4): GLUE RTE/MRPC/CoLA/STS-B, embedded or local tasks; seeds, best epoch on "
        "validation, DDP, resume.")   # `noisecli --help`


@dataclass
class FinetuneConfig:
    model: str = opt("hf:sentence-transformers/all-MiniLM-L6-v2", "hf:PATH_OR_ID of a transformers encoder "
                     "(BERT-Large is the paper's: hf:bert-large-uncased). The default ships offline.")
    task: list[str] = opt(["movie"], "Task(s): the GLUE tasks of Table 4 (" + ", ".join(n for n in TASKS if
                          n.startswith("glue-")) + ", from the hub), an offline text one (" + ", ".join(
                          n for n, t in TASKS.items() if t.offline and t.modality == "text") + "), any other text "
                          "task of `extract --help`, or a local .csv/.tsv/.jsonl/.parquet with one or two text fields.")
    out: Path = opt(Path("results/finetune"), "Output folder: runs/, results.json/.csv, table.md.")
    reg: list[str] = opt(["none", "l2sp", "smart", "lnsr"], "Regulariser(s) (the README's table; one file "
                         "each in noisecli/how/finetune/regularisers/).", choices=FINETUNE_REGULARISERS.names)
    lgm: bool = opt(False, "Also run every regulariser combined with LGM (L + λ·L_gm on the pooled feature).")
    gamma: float = opt(0.01, "LGM's γ: t̂ = t + γδ, δ ~ N(0, I).")
    lam: float = opt(0.15, "LGM's λ.")
    reg_option: list[str] = opt([], "A regulariser's option, NAME.KEY=VALUE, e.g. smart.lambda_s=3 (the "
                                "options and defaults are in the README's table).")
    seeds: int = opt(3, "Seeds per method: the head's initialisation, batch order and dropout.")
    seed: int = seed_opt(SEED_DOWNSTREAM, "the first run, and of the task's splits")
    epochs: int = opt(3, "Epochs; the best on validation is reported.")
    batch_size: int = opt(32, "Global batch size (split over the processes).")
    lr: float = opt(2e-5, "Peak learning rate of AdamW.")
    warmup: float = opt(0.1, "Fraction of the steps of linear warm-up (then linear decay to 0).")
    weight_decay: float = opt(0.01, "AdamW weight decay (off with l2sp, which replaces it).")
    grad_clip: float = opt(1.0, "Clip the global gradient norm to this (0 = off).")
    max_length: int = opt(128, "Tokens per sample (pairs are truncated together).")
    pool: str = opt("cls", "The feature the head reads: cls (the first token) or mean.", choices=["cls", "mean"])
    text_field: list[str] = opt(["text"], "A local file's text column, or two for text pairs.")
    label_field: str = opt("label", "A local file's label column.")
    limit: int | None = opt(None, "Keep a seeded random N samples of each split (quick runs).")
    device: str = device_opt()
    dtype: str = dtype_opt()
    threads: int = opt(0, "CPU threads per process (0 = cores / local processes).")
    report_to: list[str] = opt([], "Mirror each run's metrics to tensorboard and/or wandb (see pretrain).",
                               choices=["tensorboard", "wandb"])
    keep_checkpoints: bool = opt(False, "Keep each finished run's last checkpoint (default: deleted once "
                                 "its results are written).")
    resume: bool = opt(False, "Continue the sweep in --out: finished runs are kept, others resume.")
    stop_after: int | None = opt(None, "End each run at this iteration as an interruption would.")
    gpus: int = opt(0, "GPUs on this node; > 1 starts one DDP worker per GPU.")
    procs: int = opt(0, "CPU worker processes (DDP over gloo).")


def method_name(reg: str, lgm: bool) -> str:
    return reg + ("+lgm" if lgm else "")


def reg_options(cfg: FinetuneConfig) -> dict[str, dict[str, float]]:
    """--reg-option NAME.KEY=VALUE as {name: {key: value}}."""
    out: dict[str, dict[str, float]] = {}
    for item in cfg.reg_option:
        name, _, rest = item.partition(".")
        key, eq, value = rest.partition("=")
        if not (name and key and eq):
            raise InputError(f"--reg-option '{item}' is not NAME.KEY=VALUE")
        if name not in FINETUNE_REGULARISERS.names():
            raise InputError(f"--reg-option '{item}': unknown regulariser '{name}'")
        try:
            out.setdefault(name, {})[key] = float(value)
        except ValueError:
            raise InputError(f"--reg-option '{item}': '{value}' is not a number") from None
    return out


def validate(cfg: FinetuneConfig) -> None:
    check_choices(cfg)   # choices, and every number within its name's limits
    check_output(cfg.out)
    from noisecli.training.report_to import check_available
    check_available(cfg.report_to)
    if not cfg.model.startswith("hf:"):
        raise InputError(f"--model must be hf:PATH_OR_ID (a transformers encoder), got '{cfg.model}'")
    if cfg.limit is not None and cfg.limit < 2:
        raise InputError("--limit must be >= 2")
    if cfg.gpus and cfg.procs:
        raise InputError("give --gpus or --procs, not both")
    world = max(cfg.gpus, cfg.procs, 1)
    if cfg.batch_size % world:
        raise InputError(f"--batch-size {cfg.batch_size} does not split evenly over {world} processes")
    options = reg_options(cfg)
    for name in cfg.reg:
        FINETUNE_REGULARISERS.get(name)(**options.get(name, {}))   # unknown or non-finite options fail here
    runs = Path(cfg.out) / "runs"
    if runs.is_dir() and any(runs.iterdir()) and not cfg.resume:
        raise InputError(f"{cfg.out} already holds fine-tuning runs (use --resume, or another --out)")


def finetune(cfg: FinetuneConfig) -> dict:
    """Run the sweep (launching DDP workers first when asked to); returns the results."""
    from noisecli.training import distributed
    validate(cfg)
    if distributed.run_in_workers(_sweep, cfg, max(cfg.gpus, cfg.procs)):
        return read_manifest(Path(cfg.out) / "results.json", schema=FinetuneResults)
    return _sweep(cfg)


def load_encoder(spec: str):
    """(encoder, tokenizer) of hf:PATH_OR_ID."""
    from noisecli.core.hub import load_pretrained
    tokenizer, encoder = load_pretrained(spec[3:], "AutoTokenizer", "AutoModel")
    if encoder.config.is_decoder:
        raise InputError(f"{spec} is a decoder; finetune trains encoders (BERT, MiniLM, RoBERTa, ...)")
    return encoder, tokenizer


def _sweep(cfg: FinetuneConfig) -> dict:
    import torch

    from noisecli.core.progress import console
    from noisecli.how.finetune.data import encode_split
    from noisecli.how.finetune.results import summarise
    from noisecli.how.tasks import load_task
    from noisecli.training.loop import process_group
    from noisecli.training.steps import resolve_dtype

    with process_group(cfg.device) as dist:
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // dist.local_world_size))
        dtype = resolve_dtype(cfg.dtype, dist.device)
        encoder, tokenizer = load_encoder(cfg.model)
        out = Path(cfg.out)
        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            write_json(out / "finetune.json", {"config": as_dict(cfg), "encoder": encoder.config.to_dict(),
                                               "parameters": sum(p.numel() for p in encoder.parameters()),
                                               "world_size": dist.world_size, "device": str(dist.device),
                                               "dtype": str(dtype).replace("torch.", ""), **provenance()})
        results, status, signum = [], "finished", None
        for task_name in cfg.task:
            task = load_task(task_name, cfg.seed, cfg.text_field, cfg.label_field, None, cfg.limit)
            if task.modality != "text":
                raise InputError(f"task '{task_name}' holds images; finetune trains text encoders")
            data = {s: encode_split(tokenizer, task, s, cfg.max_length) for s in ("train", "val", "test")}
            for reg, lgm, seed in product(cfg.reg, [False, True] if cfg.lgm else [False],
                                          range(cfg.seed, cfg.seed + cfg.seeds)):
                result, loop = _run(cfg, task, data, encoder, tokenizer.pad_token_id or 0, reg, lgm, seed, dist, dtype)
                if result is None:
                    status, signum = loop["status"], loop.get("signal")
                    break
                results.append(result)
            if status != "finished":
                break
        summary = {**summarise(results, cfg, status), "signal": signum}
        if dist.is_main:
            from noisecli.how.finetune.results import print_table, write_results
            write_results(out, summary)
            print_table(summary)
            console.print(f"finetune {status}: {len(results)} run(s); results {out / 'results.json'}, "
                          f"{out / 'table.md'}")
        return summary


def _run(cfg, task, data, encoder, pad_id, reg_name, lgm, seed, dist, dtype) -> tuple[dict | None, dict | None]:
    """One run (resumed or skipped if already there): (its result, or None if it was stopped; the loop's
    summary)."""
    import copy
    import shutil

    import torch

    from noisecli.how.finetune.data import batch_indices, collate, iters_per_epoch, predict
    from noisecli.how.finetune.model import FineTuneModel, Objective
    from noisecli.how.finetune.regularisers import make_finetune_regulariser
    from noisecli.how.tasks.scores import score
    from noisecli.training import distributed
    from noisecli.training.loop import Hooks, LoopConfig, train_loop, wrap
    from noisecli.training.steps import make_optimizer

    method = method_name(reg_name, lgm)
    run_dir = Path(cfg.out) / "runs" / task.name / method / f"seed{seed}"
    if (run_dir / "result.json").is_file():     # finished before: taken as it is (checked)
        return read_manifest(run_dir / "result.json", schema=RunResult), None
    device, regression = dist.device, task.regression
    n_train = len(data["train"].labels)
    per_epoch = iters_per_epoch(n_train, cfg.batch_size)
    max_iters = per_epoch * cfg.epochs
    scores = task.scores()
    run_info = {"task": task.name, "method": method, "reg": reg_name, "lgm": lgm, "seed": seed,
                "model": cfg.model, "train_samples": n_train, "iters_per_epoch": per_epoch,
                "recipe": {k: getattr(cfg, k) for k in ("epochs", "batch_size", "lr", "warmup", "weight_decay",
                                                        "grad_clip", "max_length", "pool", "gamma", "lam", "limit")},
                "reg_options": reg_options(cfg).get(reg_name, {})}

    reg = make_finetune_regulariser(reg_name, run_info["reg_options"])
    torch.manual_seed(seed)
    outputs = 1 if regression else len(task.labels)
    model = FineTuneModel(copy.deepcopy(encoder), outputs, cfg.pool, cfg.model).to(device)
    reg.setup(model)
    model.objective = Objective(reg, lgm, cfg.gamma, cfg.lam)
    decay = 0.0 if reg.replaces_weight_decay else cfg.weight_decay
    optimizer = make_optimizer(model, cfg.lr, decay, (0.9, 0.999), device)
    start, resumed = _start(cfg, run_dir, run_info, model, optimizer, reg, dist)
    raw_model, wrapped = model, wrap(model, dist)

    def micro_batches(it: int):
        torch.manual_seed((seed * 1_000_003 + it) * 1024 + dist.rank)   # dropout and noise: (seed, it, rank)
        idx = batch_indices(n_train, cfg.batch_size, seed, it, dist.rank, dist.world_size)
        yield collate(data["train"], idx, pad_id, device, regression)

    def evaluate() -> dict:
        record = {}
        for split in ("val", "test"):
            outputs_, loss = predict(raw_model, data[split], pad_id, device, regression)
            record[f"{split}_loss"] = loss
            record.update({f"{split}_{k}": v for k, v in score(scores, outputs_, data[split].labels).items()})
        return record

    warm = int(cfg.warmup * max_iters)
    hooks = Hooks(
        micro_batches=micro_batches, accum=1, loss=lambda m, batch: m(batch),
        lr=lambda it: linear_schedule(it, cfg.lr, warm, max_iters),
        evaluate=evaluate, checkpoint_info=lambda it: {"epoch": it / per_epoch, "task": task.name, "method": method},
        after_step=lambda it: reg.after_step(raw_model), extra_state=reg.state_dict)
    end = min(max_iters, cfg.stop_after) if cfg.stop_after is not None else max_iters
    loop = LoopConfig(out=run_dir, max_iters=max_iters, end=end, log_every=per_epoch, eval_every=per_epoch,
                      save_every=per_epoch, keep_last=1, grad_clip=cfg.grad_clip, units_per_iter=cfg.batch_size,
                      unit="samples", name=f"{task.name} {method} seed {seed}", report_to=cfg.report_to,
                      config=run_info)
    summary = train_loop(loop, hooks, raw_model, wrapped, optimizer, start, dist, dtype, resumed)
    distributed.barrier()   # rank 0's metrics.jsonl is complete
    if summary["status"] != "finished":
        return None, summary
    result = {**_best_epoch(run_dir, scores, per_epoch, run_info), "chance": chance(task, data, scores)}
    if dist.is_main:
        write_json(run_dir / "result.json", result)
        if not cfg.keep_checkpoints:
            shutil.rmtree(run_dir / "checkpoints", ignore_errors=True)
    distributed.barrier()
    return result, summary


def _start(cfg, run_dir: Path, run_info: dict, model, optimizer, reg, dist) -> tuple[int, dict | None]:
    """Where a run starts: its newest checkpoint with --resume (the same settings checked), else a new run
    folder with its run.json. Returns (iteration, the resumed state or None)."""
    from noisecli.training import checkpoint
    from noisecli.training.loop import resume
    if checkpoint.list_checkpoints(run_dir):
        if not cfg.resume:
            raise InputError(f"{run_dir} holds a checkpoint (use --resume)")
        old = read_manifest(run_dir / "run.json")
        if {k: old.get(k) for k in run_info} != json.loads(json.dumps(run_info)):
            raise InputError(f"--resume: the settings differ from those of the run in {run_dir}")
        folder = checkpoint.newest_loadable(run_dir)
        from safetensors.torch import load_model
        load_model(model, str(folder / "model.safetensors"), device=str(dist.device))
        start, resumed = resume(folder, optimizer)
        reg.load_state_dict({k: v.to(dist.device) for k, v in resumed.get("extra", {}).items()})
        return start, resumed
    if dist.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_json(run_dir / "run.json", {**run_info, **provenance()})
    return 0, None


def chance(task, data: dict, scores: list[str]) -> dict[str, float]:
    """The test scores of a constant prediction: the training set's majority class (0 correlation for a
    regression): what a model that learned nothing from the text would score."""
    from noisecli.how.tasks.scores import score
    test = data["test"].labels
    if task.regression:
        return score(scores, np.zeros(len(test)), test)
    majority = np.bincount(data["train"].labels, minlength=len(task.labels)).argmax()
    return score(scores, np.eye(len(task.labels))[np.full(len(test), majority)], test)


def linear_schedule(it: int, lr: float, warm: int, total: int) -> float:
    """BERT's: linear warm-up over `warm` steps, then linear decay to 0 at `total`."""
    if it < warm:
        return lr * (it + 1) / warm
    return lr * max(0.0, (total - it) / max(1, total - warm))


def _best_epoch(run_dir: Path, scores: list[str], per_epoch: int, run_info: dict) -> dict:
    """The epoch with the best validation headline score (the first; ties: the earliest) and its test scores."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    epochs = [r for r in records if r["iter"] > 0 and f"val_{scores[0]}" in r]
    best = max(epochs, key=lambda r: (r[f"val_{scores[0]}"], -r["iter"]))
    return {**run_info, "best_epoch": best["iter"] // per_epoch, "scores": scores,
            "val": {k: best[f"val_{k}"] for k in scores}, "test": {k: best[f"test_{k}"] for k in scores},
            "curve": [{"epoch": r["iter"] // per_epoch, **{f"val_{k}": r[f"val_{k}"] for k in scores},
                       **{f"test_{k}": r[f"test_{k}"] for k in scores}} for r in epochs]}


def _finished(cfg: FinetuneConfig) -> bool:
    results = Path(cfg.out) / "results.json"
    return results.is_file() and read_manifest(results, schema=FinetuneResults)["status"] == "finished"


def _show(cfg: FinetuneConfig, result: dict) -> None:
    from noisecli.core.errors import raise_if_interrupted
    raise_if_interrupted(result)


STAGE = Stage("finetune", FinetuneConfig, finetune, HELP, done=_finished, show=_show)
