"""The pieces of one training iteration, shared by `pretrain` and the benchmarks: batches, the
optimizer and its schedule, autocast, one accumulated step, the fixed-window evaluation, FLOP peaks."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Iterable

import numpy as np
import torch
import torch.nn as nn

from noisecli.core.errors import InputError
from noisecli.training import distributed

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
# dense bf16 tensor-core peaks, FLOP/s
GPU_PEAKS = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L40S": 362e12, "A10G": 125e12, "4090": 165e12}


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    if name == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if name not in DTYPES:
        raise InputError(f"--dtype must be auto, {', '.join(DTYPES)}; got '{name}'")
    return DTYPES[name]


def autocast(device: torch.device, dtype: torch.dtype):
    if dtype == torch.float32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def lr_at(it: int, cfg) -> float:
    """Linear warm-up to cfg.lr, then cosine decay to cfg.min_lr at lr_decay_iters (nanoGPT's)."""
    decay = cfg.lr_decay_iters or cfg.max_iters
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / (cfg.warmup_iters + 1)
    if it > decay:
        return cfg.min_lr
    ratio = (it - cfg.warmup_iters) / max(1, decay - cfg.warmup_iters)
    return cfg.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: nn.Module, lr: float, weight_decay: float, betas: tuple[float, float],
                   device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices and embeddings only (tensors of 2+ dims). Fused (one kernel
    for the whole update) on CPUs and GPUs: on the tiny preset's CPU step it is 46 -> 7 ms."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=betas, fused=device.type in ("cpu", "cuda"))


def window_starts(n_tokens: int, block: int, count: int, seed: int, stream: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    return rng.integers(0, n_tokens - block - 1, size=count)


def get_batch(data: np.ndarray, it: int, micro: int, cfg, block: int, device: torch.device):
    """Micro-batch `micro` of iteration `it`: windows from the iteration's global batch, which depends
    only on (seed, it) and the global batch size, never on the number of processes."""
    starts = window_starts(len(data), block, cfg.batch_size * cfg.grad_accum, cfg.seed, 1_000_000 + it)
    starts = starts[micro * cfg.batch_size:(micro + 1) * cfg.batch_size]
    xy = torch.from_numpy(np.stack([data[s:s + block + 1] for s in starts]).astype(np.int64))
    x, y = xy[:, :-1], xy[:, 1:]
    if device.type == "cuda":
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.contiguous(), y.contiguous()


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, accum: int,
               grad_clip: float, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """One iteration: accumulate `accum` micro-batches (DDP syncs on the last), clip, step.
    Returns the mean micro-batch loss (a tensor, not synchronised)."""
    total = torch.zeros((), device=device)
    for i, (x, y) in enumerate(batches):
        sync = i == accum - 1 or not hasattr(model, "no_sync")
        with (contextlib.nullcontext() if sync else model.no_sync()), autocast(device, dtype):
            _, loss = model(x, y)
        (loss / accum).backward()
        total += loss.detach()
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / accum


@torch.no_grad()
def evaluate(model: nn.Module, data: np.ndarray, block: int, batch_size: int, windows: int, seed: int,
             device: torch.device, dist: "distributed.Dist") -> float:
    """Mean loss over a fixed set of `windows` context windows (seeded), split over the ranks."""
    starts = window_starts(len(data), block, windows, seed, 7)[dist.rank::dist.world_size]
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(starts), batch_size):
        xy = torch.from_numpy(np.stack([data[s:s + block + 1] for s in starts[i:i + batch_size]]).astype(np.int64))
        xy = xy.to(device)
        _, loss = model(xy[:, :-1], xy[:, 1:], reduction="sum")
        total += torch.stack([loss.double(), torch.tensor(float(xy[:, 1:].numel()), device=device,
                                                          dtype=torch.float64)])
    distributed.all_reduce(total, "sum")
    return (total[0] / total[1]).item()


def matmul_peak(dtype: torch.dtype, device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Measured FLOP/s of an n x n x n matrix product (best of `repeats`)."""
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 2):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def peak_flops(device: torch.device, dtype: torch.dtype) -> float | None:
    """The FLOP/s that MFU is relative to: a known GPU's bf16 peak, or a CPU matmul measured now."""
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        return next((v for k, v in GPU_PEAKS.items() if k in name), None)
    return matmul_peak(dtype, device, n=512, repeats=3)
