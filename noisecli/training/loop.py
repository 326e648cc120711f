"""The training loop every trainer shares, whatever the model: schedule, accumulation, DDP, the stop
flag, metrics, evaluation, checkpoints with pruning, and the run's summary.

A trainer (e.g. `pretrain`) builds its model and optimizer (fresh or from a checkpoint, `resume`), and
hands the loop `Hooks`: its micro-batches per iteration, its loss, its learning-rate schedule, its
evaluation and what each checkpoint records. The loop does the rest:

    for it in [start, end):  set lr; accumulate the rank's micro-batches (DDP syncs the last); clip; step
                             log every --log-every (train loss averaged over ranks, units/s, MFU),
                             evaluate every --eval-every, checkpoint every --save-every and at milestones,
                             stop cleanly (checkpoint saved) on SIGINT/SIGTERM.

The batches of an iteration depend only on (seed, iteration), and the optimizer state and RNG are in
every checkpoint, so a resumed run continues bit for bit.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn
from pydantic import StrictInt

from noisecli.core.errors import RunError
from noisecli.core.manifest import Record, write_json
from noisecli.core.progress import Reporter, console
from noisecli.training import checkpoint, distributed
from noisecli.training.metrics import MetricsLog
from noisecli.training.steps import autocast, grad_scaler, train_step


class RunSummary(Record):
    """summary.json: how a training run ended, as the command that launched its workers reads it back."""
    status: str
    iter: StrictInt
    max_iters: StrictInt
    checkpoint: str | None = None
    signal: int | None = None


@dataclass
class LoopConfig:
    out: Path                    # the run folder: metrics.jsonl, checkpoints/, summary.json
    max_iters: int               # the schedule's length
    end: int                     # where this invocation stops (max_iters, or earlier with --stop-after)
    log_every: int
    eval_every: int
    save_every: int
    keep_last: int
    grad_clip: float
    units_per_iter: int          # what one iteration consumes, e.g. tokens
    unit: str = "tokens"
    milestones: set[int] = field(default_factory=set)
    name: str = "train"          # the progress bar's label
    report_to: list[str] = field(default_factory=list)   # mirrors of metrics.jsonl: tensorboard, wandb
    config: dict = field(default_factory=dict)           # what the mirrors record as the run's config


@dataclass
class Hooks:
    micro_batches: Callable[[int], Iterable]          # this rank's micro-batches of iteration `it`
    accum: int                                        # how many that is
    loss: Callable[[nn.Module, Any], torch.Tensor]    # mean loss of one micro-batch
    lr: Callable[[int], float]
    evaluate: Callable[[], dict]                      # {"val_loss": ...}; model already in eval mode
    checkpoint_info: Callable[[int], dict]            # what the checkpoint's noisecli.json records
    flops_per_iter: float | None = None
    peak_flops: float | None = None
    after_step: Callable[[int], None] | None = None   # after each optimizer step (e.g. a teacher's EMA)
    extra_state: Callable[[], dict] | None = None     # more state for exact resume, saved as state["extra"]


class StopFlag:
    """SIGINT/SIGTERM ask the loop to save and stop after the current iteration."""

    def __init__(self):
        self.signal: int | None = None
        self._old = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread
                pass

    def _handle(self, signum, frame):
        self.signal = signum

    def restore(self):
        for sig, old in self._old.items():
            signal.signal(sig, old)


def wrap(model: nn.Module, dist: distributed.Dist, compile: bool = False) -> nn.Module:
    """The model as the step sees it: in DDP when there are several processes, compiled if asked."""
    if dist.active:
        from torch.nn.parallel import DistributedDataParallel as DDP
        model = DDP(model, device_ids=[dist.local_rank] if dist.device.type == "cuda" else None)
    return torch.compile(model) if compile else model


def resume(folder: Path, optimizer: torch.optim.Optimizer) -> tuple[int, dict]:
    """Restore the optimizer and the CPU RNG from a checkpoint's state; returns its iteration and the
    state (the loss scaler's, if any, is restored by `train_loop`)."""
    state = checkpoint.load_state(folder)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_cpu"])
    if "rng_cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["rng_cuda"])
    return int(state["iter"]), state


def train_loop(cfg: LoopConfig, hooks: Hooks, raw_model: nn.Module, model: nn.Module,
               optimizer: torch.optim.Optimizer, start: int, dist: distributed.Dist, dtype: torch.dtype,
               resumed: dict | None = None) -> dict:
    """Train `model` (the wrapped `raw_model`) from iteration `start` to `cfg.end` (`resumed`: the state
    `resume` returned); returns the summary that summary.json also holds."""
    out, device = Path(cfg.out), dist.device
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        checkpoint.remove_leftovers(out)
    from noisecli.training.report_to import mirrors
    metrics = MetricsLog(out / "metrics.jsonl", enabled=dist.is_main,
                         mirrors=mirrors(cfg.report_to, out, cfg.name, cfg.config) if dist.is_main else [])
    metrics.resume_at(start)
    scaler = grad_scaler(device, dtype)
    if scaler is not None and resumed and "scaler" in resumed:
        scaler.load_state_dict(resumed["scaler"])

    def evaluate() -> dict:
        model.eval()
        with autocast(device, dtype):
            result = hooks.evaluate()
        model.train()
        return result

    def save(it: int) -> Path | None:
        if not dist.is_main:
            return None
        state = {"iter": it, "optimizer": optimizer.state_dict(), "rng_cpu": torch.get_rng_state(),
                 **({"rng_cuda": torch.cuda.get_rng_state(device)} if device.type == "cuda" else {}),
                 **({"scaler": scaler.state_dict()} if scaler is not None else {}),
                 **({"extra": hooks.extra_state()} if hooks.extra_state is not None else {})}
        path = checkpoint.save_checkpoint(out, raw_model, it, hooks.checkpoint_info(it), state)
        checkpoint.prune_checkpoints(out, cfg.keep_last, cfg.milestones)
        return path

    model.train()
    if start == 0:
        metrics.write({"iter": 0, cfg.unit: 0, "lr": hooks.lr(0), **evaluate()})
    stop = StopFlag()
    status, last_saved = "finished" if cfg.end == cfg.max_iters else "stopped", None
    t_last, it_last, it = time.perf_counter(), start, start
    try:
        with Reporter(cfg.name, total=cfg.end - start, unit="iters", every_s=1e9, enabled=dist.is_main) as progress:
            while it < cfg.end:
                lr = hooks.lr(it)
                for group in optimizer.param_groups:
                    group["lr"] = lr
                loss = train_step(model, optimizer, hooks.micro_batches(it), hooks.accum, cfg.grad_clip, device,
                                  dtype, hooks.loss, scaler)
                if hooks.after_step is not None:
                    hooks.after_step(it)
                loss = distributed.all_reduce(loss.detach().clone(), "sum").item() / dist.world_size
                it += 1
                if not math.isfinite(loss):
                    good = checkpoint.list_checkpoints(out)
                    raise RunError(f"training loss is {loss} at iteration {it}: stopped; last good "
                                   f"checkpoint: {good[-1][1] if good else 'none'}")
                stopping = distributed.all_reduce(torch.tensor(float(stop.signal is not None)), "max").item() > 0
                if it % cfg.log_every == 0 or it == cfg.end or stopping:
                    dt, n_iters = time.perf_counter() - t_last, it - it_last
                    rate = n_iters * cfg.units_per_iter / dt
                    peak = hooks.peak_flops
                    record = {"iter": it, cfg.unit: it * cfg.units_per_iter, "lr": lr, "train_loss": loss,
                              f"{cfg.unit}_per_s": rate,
                              "mfu": (hooks.flops_per_iter * n_iters / dt / peak) if peak and hooks.flops_per_iter else None}
                    if it % cfg.eval_every == 0 or it == cfg.end:
                        record.update(evaluate())
                    metrics.write(record)
                    progress.advance(n_iters, loss=loss, **{f"{cfg.unit}_per_s": rate})
                    if not progress.interactive and dist.is_main:
                        progress.line()
                    t_last, it_last = time.perf_counter(), it
                if it % cfg.save_every == 0 or it == cfg.end or stopping or it in cfg.milestones:
                    last_saved = save(it)
                if stopping:
                    status = "interrupted"
                    break
    finally:
        stop.restore()
        metrics.close()
    summary = {"status": status, "iter": it, "max_iters": cfg.max_iters, "checkpoint": str(last_saved),
               "out": str(out), "signal": stop.signal}
    if dist.is_main:
        _report(cfg, summary, metrics.last())
    return summary


def _report(cfg: LoopConfig, summary: dict, last_metrics: dict) -> None:
    """summary.json, and the run's last line on the console."""
    out = Path(cfg.out)
    write_json(out / "summary.json", summary)
    if summary["status"] == "interrupted":
        console.print(f"interrupted at iteration {summary['iter']}; checkpoint saved. Continue with --resume.")
    else:
        last = {k: v for k, v in last_metrics.items() if k.endswith("_loss")}
        console.print(f"{cfg.name} {summary['status']} at iteration {summary['iter']} of {cfg.max_iters}: "
                      + ", ".join(f"{k} {v:.4f}" for k, v in last.items())
                      + f"; checkpoint {summary['checkpoint']}; metrics {out / 'metrics.jsonl'}")


@contextlib.contextmanager
def process_group(device: str):
    """Join the process group (if any) for the duration of a run."""
    dist = distributed.setup(device)
    try:
        yield dist
    finally:
        distributed.teardown()
