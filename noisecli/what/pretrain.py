"""`noisecli pretrain`: train GPT-2 (or, with --arch bert, BERT by masked-language modelling: the paper's
Table 9) on a prepared dataset with the paper's recipe (nanoGPT's).

A thin user of the shared training parts (training/): it builds the model and optimizer, says what a
batch, the loss and the evaluation are (what/windows.py), and hands them to the loop. Same data whatever
the number of processes: the global batch of iteration i (micro-batch x grad-accum windows) is drawn
from a generator seeded by (seed, i), and rank r takes its share of the accumulation steps. So a resumed
run, or the same run on more processes, sees exactly the same windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, StrictInt

from noisecli.core.errors import InputError
from noisecli.core.manifest import Record, check_output, provenance, read_manifest, write_json
from noisecli.core.options import SEED_DATA, as_dict, check_choices, device_opt, dtype_opt, opt, seed_opt
from noisecli.core.stage import Stage
from noisecli.what.architectures import ARCHITECTURES, architecture
from noisecli.what.token_files import check_dataset, data_fingerprint, open_tokens, read_meta
from noisecli.what.tokenizer import VOCAB_SIZE


class RunManifest(Record):
    """run.json as the stages read it back (pretrain writes more; other keys pass)."""
    arch: str = "gpt"
    model: dict
    data: str
    data_meta_sha256: str
    seed: StrictInt | None = None
    alpha: float | None = Field(None, ge=0, lt=1, strict=True)
    noise: str | None = None


HELP = ("Pre-train GPT-2 on a prepared dataset with the paper's recipe (AdamW 6e-4, cosine to 6e-5, batch "
        "16 x 40 x 1024) on a CPU, on N GPUs (DDP) or across nodes; exact resume.")   # `noisecli --help`


@dataclass
class PretrainConfig:
    data: Path | None = opt(None, "Prepared dataset folder (from `noisecli prepare`): train.bin, val.bin, "
                            "noise.bin, meta.json. Required.")
    out: Path = opt(Path("checkpoints/run"), "Run folder: run.json, metrics.jsonl, checkpoints/.")
    arch: str = opt("gpt", "The architecture (what/architectures/): "
                    + "; ".join(f"{name}: {ARCHITECTURES.get(name).summary}" for name in ARCHITECTURES.names()) + ".",
                    choices=ARCHITECTURES.names())
    preset: str | None = opt(None, "Model preset of the architecture, name (layers, heads, width, context). "
                             + "; ".join(f"{name}: {architecture(name).describe_presets()}, default "
                                         f"{architecture(name).default_preset}" for name in ARCHITECTURES.names())
                             + ".",
                             choices=[p for name in ARCHITECTURES.names() for p in architecture(name).presets])
    n_layer: int | None = opt(None, "Override the preset's number of transformer blocks.")
    n_head: int | None = opt(None, "Override the preset's attention heads.")
    n_embd: int | None = opt(None, "Override the preset's width (embedding size).")
    block_size: int | None = opt(None, "Context length in tokens (default: the preset's).")
    dropout: float = opt(0.0, "Dropout probability (the paper pre-trains with 0).")
    batch_size: int = opt(16, "Micro-batch size in sequences per process step.")
    grad_accum: int = opt(40, "Gradient-accumulation steps per iteration, in total over all processes "
                          "(must divide by the number of processes).")
    max_iters: int = opt(300_000, "Training iterations (optimizer steps); sets the length of the schedule.")
    lr: float = opt(6e-4, "Peak learning rate of AdamW.")
    min_lr: float = opt(6e-5, "Learning rate at the end of the cosine decay.")
    warmup_iters: int = opt(2000, "Iterations of linear warm-up.")
    lr_decay_iters: int | None = opt(None, "Iteration where the cosine reaches --min-lr (default: --max-iters).")
    weight_decay: float = opt(0.1, "AdamW weight decay, on weights of two or more dimensions only.")
    beta1: float = opt(0.9, "AdamW β1.")
    beta2: float = opt(0.95, "AdamW β2.")
    grad_clip: float = opt(1.0, "Clip the global gradient norm to this (0 = off).")
    eval_every: int = opt(1000, "Evaluate on val.bin and noise.bin every this many iterations.")
    eval_windows: int = opt(200, "Fixed context windows per evaluation set (same windows in every run "
                            "with the same seed and data sizes).")
    log_every: int = opt(10, "Write a metrics line every this many iterations.")
    save_every: int = opt(1000, "Save a checkpoint every this many iterations (and always at the end).")
    keep_last: int = opt(2, "Keep this many most recent checkpoints (milestones are always kept).")
    milestones: list[int] = opt([], "Iterations whose checkpoints are kept for good, comma-separated, "
                                "e.g. 10000,50000,100000 as in the paper's tables.")
    seed: int = seed_opt(SEED_DATA, "the initialisation, the batches and the evaluation windows")
    device: str = device_opt()
    dtype: str = dtype_opt()
    compile: bool = opt(False, "Compile the model with torch.compile.")
    threads: int = opt(0, "CPU threads per process (0 = cores / local processes).")
    peak_tflops: float | None = opt(None, "Peak TFLOP/s used for MFU (default: known GPUs' bf16 peak; on "
                                    "CPU a matmul measured at start).")
    report_to: list[str] = opt([], "Mirror metrics.jsonl to tensorboard (RUN/tensorboard/) and/or wandb (offline "
                               "without an API key), on rank 0; optional extras noisecli[tensorboard], "
                               "noisecli[wandb].", choices=["tensorboard", "wandb"])
    verify: bool = opt(False, "Check the full sha256 of every token file against meta.json before training (token "
                       "counts always are, and the sha256 of files up to 256 MiB).")
    resume: bool = opt(False, "Continue the run in --out from its newest checkpoint.")
    stop_after: int | None = opt(None, "End at this iteration as an interruption would (checkpoint saved), "
                                 "leaving the --max-iters schedule untouched.")
    gpus: int = opt(0, "GPUs on this node; > 1 starts one worker per GPU (DDP, NCCL) itself.")
    procs: int = opt(0, "CPU worker processes (DDP over gloo), e.g. to test distributed training.")
    nnodes: int = opt(1, "Number of nodes (each runs the same command).")
    node_rank: int = opt(0, "This node's rank among --nnodes.")
    rdzv_endpoint: str = opt("localhost:29400", "host:port of node 0, for --nnodes > 1.")


def _quiet(fn, *args):
    """fn(*args) with warnings silenced: validate() has printed them once already."""
    import contextlib
    import io
    with contextlib.redirect_stderr(io.StringIO()):
        return fn(*args)


def _model_config(cfg: PretrainConfig):
    """The architecture's config from --preset and the overrides."""
    return architecture(cfg.arch).config(cfg.preset, n_layer=cfg.n_layer, n_head=cfg.n_head, n_embd=cfg.n_embd,
                                         block_size=cfg.block_size, dropout=cfg.dropout)


def _world(cfg: PretrainConfig) -> int:
    from noisecli.training import distributed
    if distributed.launched_externally():
        return int(os.environ["WORLD_SIZE"])
    return max(cfg.gpus, cfg.procs, 1) * cfg.nnodes


def validate(cfg: PretrainConfig) -> tuple[object, dict]:
    """Check everything that can be wrong before any process starts or any file is written."""
    import torch

    from noisecli.training import checkpoint, distributed
    from noisecli.training.steps import resolve_dtype
    if cfg.data is None:
        raise InputError("--data is required: a folder made by `noisecli prepare`")
    check_choices(cfg)
    check_output(cfg.out)
    from noisecli.training.report_to import check_available
    check_available(cfg.report_to)
    mcfg = _model_config(cfg)
    if cfg.gpus and cfg.procs:
        raise InputError("give --gpus or --procs, not both")
    if cfg.gpus > 0 and not distributed.launched_externally():
        have = torch.cuda.device_count()
        if cfg.gpus > have:
            raise InputError(f"--gpus {cfg.gpus} asked for, but this machine has {have} GPU(s)")
    world = _world(cfg)
    if cfg.grad_accum % world:
        raise InputError(f"--grad-accum {cfg.grad_accum} does not divide evenly over {world} processes")
    if cfg.nnodes > 1 and not 0 <= cfg.node_rank < cfg.nnodes:
        raise InputError(f"--node-rank must be in [0, {cfg.nnodes})")
    resolve_dtype(cfg.dtype, distributed.pick_device("cuda" if cfg.gpus else "cpu" if cfg.procs else cfg.device))
    meta = read_meta(cfg.data)
    check_dataset(cfg.data, meta, cfg.verify)   # the files are those meta.json describes: never train on others
    vocab = meta.get("vocab_size", VOCAB_SIZE)
    architecture(cfg.arch).check_vocab(vocab, mcfg)
    train = open_tokens(Path(cfg.data) / "train.bin", vocab)
    val = open_tokens(Path(cfg.data) / "val.bin", vocab)
    for name, tokens in (("train.bin", train), ("val.bin", val)):
        if len(tokens) <= mcfg.block_size + 1:
            raise InputError(f"{name} holds {len(tokens)} tokens, too few for a context of {mcfg.block_size}")
    out = Path(cfg.out)
    has_ckpt = bool(checkpoint.list_checkpoints(out))
    if cfg.resume:
        if not has_ckpt:
            raise InputError(f"--resume: {out} has no checkpoint to resume from")
        checkpoint.newest_loadable(out)   # a damaged newest checkpoint is named here, once
        run = read_manifest(out / "run.json", ("model", "data_meta_sha256"), RunManifest)
        if run["model"] != mcfg.to_dict() or run.get("arch", "gpt") != cfg.arch:
            raise InputError(f"--resume: the model config differs from the run's ({out}/run.json)")
        if run["data_meta_sha256"] != data_fingerprint(cfg.data):
            raise InputError(f"--resume: --data is not the dataset the run in {out} was trained on")
        if run.get("seed", cfg.seed) != cfg.seed:
            raise InputError(f"--resume: --seed {cfg.seed} differs from the run's ({run['seed']}, {out}/run.json); "
                             "the batches depend on it")
    elif has_ckpt:
        raise InputError(f"{out} already holds a run with checkpoints (use --resume, or another --out)")
    return mcfg, meta


def pretrain(cfg: PretrainConfig) -> dict:
    """Train (launching worker processes first when asked to); returns the run's summary."""
    from noisecli.training import distributed
    mcfg, meta = validate(cfg)
    if distributed.run_in_workers(_train_here, cfg, max(cfg.gpus, cfg.procs), cfg.nnodes, cfg.node_rank,
                                  cfg.rdzv_endpoint):
        from noisecli.training.loop import RunSummary
        return read_manifest(Path(cfg.out) / "summary.json", schema=RunSummary)
    return _train(cfg, mcfg, meta)


def _train_here(cfg: PretrainConfig) -> dict:
    """What each launched worker runs."""
    return _train(cfg, _model_config(cfg), read_meta(cfg.data))


def _train(cfg: PretrainConfig, mcfg, meta: dict) -> dict:
    """Build the model, optimizer and data of this process and run the shared loop."""
    import numpy as np
    import torch

    from noisecli.core.progress import console
    from noisecli.training import checkpoint
    from noisecli.training.loop import Hooks, LoopConfig, process_group, resume, train_loop, wrap
    from noisecli.training.steps import lr_at, make_optimizer, peak_flops, resolve_dtype
    from noisecli.what.windows import evaluate

    arch = architecture(cfg.arch)
    with process_group(cfg.device) as dist:
        out, device = Path(cfg.out), dist.device
        dtype = resolve_dtype(cfg.dtype, device)
        torch.set_num_threads(cfg.threads or max(1, (os.cpu_count() or 1) // dist.local_world_size))
        if device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        data_dir = Path(cfg.data)
        train_data = np.memmap(data_dir / "train.bin", dtype=np.uint16, mode="r")
        eval_sets = {"val": np.memmap(data_dir / "val.bin", dtype=np.uint16, mode="r")}
        if (data_dir / "noise.bin").is_file() and (data_dir / "noise.bin").stat().st_size // 2 > mcfg.block_size + 1:
            eval_sets["noise"] = np.memmap(data_dir / "noise.bin", dtype=np.uint16, mode="r")
        accum_local = cfg.grad_accum // dist.world_size
        tokens_per_iter = cfg.batch_size * cfg.grad_accum * mcfg.block_size

        start, resumed = 0, None
        if cfg.resume:
            folder = _quiet(checkpoint.newest_loadable, out)
            model = checkpoint.load_checkpoint(folder, lambda info: arch.from_config_dict(info["model"]), device)[0]
            optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device)
            start, resumed = resume(folder, optimizer)
        else:
            torch.manual_seed(cfg.seed)
            model = arch.model(mcfg).to(device)
            optimizer = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2), device)
        data_hash = data_fingerprint(data_dir)
        raw_model, model = model, wrap(model, dist, cfg.compile)

        if dist.is_main:
            out.mkdir(parents=True, exist_ok=True)
            if not cfg.resume:
                write_json(out / "run.json", {
                    "arch": cfg.arch, "model": mcfg.to_dict(), "train": as_dict(cfg),
                    "parameters": raw_model.num_params(),
                    "tokens_per_iter": tokens_per_iter, "world_size": dist.world_size, "device": str(device),
                    "dtype": str(dtype).replace("torch.", ""), "data": str(data_dir.resolve()),
                    "data_meta_sha256": data_hash, "alpha": meta.get("alpha"),
                    "noise": meta.get("noise", {}).get("dist") if meta.get("alpha") else None, "seed": cfg.seed,
                    "torch_version": torch.__version__, **provenance()})
            console.print(f"[bold]pretrain[/bold] {cfg.arch} {cfg.preset or 'default preset'}: "
                          f"{raw_model.num_params() / 1e6:.2f} M parameters "
                          f"(non-embedding), {tokens_per_iter:,} tokens/iteration, {dist.world_size} process(es) "
                          f"on {device.type}, {str(dtype).replace('torch.', '')}; data "
                          + (f"α={meta.get('alpha')} {meta.get('noise', {}).get('dist')} noise" if not meta.get("nanogpt")
                             else "α unknown (a nanoGPT folder without meta.json)")
                          + f"; iterations {start} -> "
                          f"{min(cfg.max_iters, cfg.stop_after or cfg.max_iters)} of {cfg.max_iters}")

        hooks = Hooks(
            micro_batches=lambda it: (arch.batch(train_data, it, m, cfg, mcfg.block_size, device)
                                      for m in range(dist.rank * accum_local, (dist.rank + 1) * accum_local)),
            accum=accum_local, loss=arch.loss, lr=lambda it: lr_at(it, cfg),
            evaluate=lambda: {f"{name}_loss": evaluate(raw_model, tokens, mcfg.block_size, cfg.batch_size,
                                                       cfg.eval_windows, cfg.seed, device, dist)
                              for name, tokens in eval_sets.items()},
            checkpoint_info=lambda it: {"tokens": it * tokens_per_iter, "alpha": meta.get("alpha"),
                                        "data_meta_sha256": data_hash},
            flops_per_iter=raw_model.flops_per_token() * tokens_per_iter,
            peak_flops=cfg.peak_tflops * 1e12 if cfg.peak_tflops else peak_flops(device, dtype))
        end = min(cfg.max_iters, cfg.stop_after) if cfg.stop_after is not None else cfg.max_iters
        loop = LoopConfig(out=out, max_iters=cfg.max_iters, end=end, log_every=cfg.log_every,
                          eval_every=cfg.eval_every, save_every=cfg.save_every, keep_last=cfg.keep_last,
                          grad_clip=cfg.grad_clip, units_per_iter=tokens_per_iter, unit="tokens",
                          milestones=set(cfg.milestones), name="pretrain", report_to=cfg.report_to,
                          config={**as_dict(cfg), "model": mcfg.to_dict()})
        return train_loop(loop, hooks, raw_model, model, optimizer, start, dist, dtype, resumed)


def _show(cfg: PretrainConfig, summary: dict) -> None:
    from noisecli.core.errors import raise_if_interrupted
    raise_if_interrupted(summary)   # a run stopped by a signal (after saving) ends as that signal would


def _finished(cfg: PretrainConfig) -> bool:
    from noisecli.training import checkpoint
    return any(it == cfg.max_iters for it, _ in checkpoint.list_checkpoints(Path(cfg.out)))


STAGE = Stage("pretrain", PretrainConfig, pretrain, HELP, done=_finished, show=_show)
