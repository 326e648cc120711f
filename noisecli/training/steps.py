"""The pieces of one training iteration, whatever the model: the dtype and autocast, the optimizer and
its schedule, one accumulated step, and the FLOP peak that MFU is relative to."""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, Callable, Iterable

import torch
import torch.nn as nn

from noisecli.core.errors import InputError

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


def grad_scaler(device: torch.device, dtype: torch.dtype) -> torch.amp.GradScaler | None:
    """float16 needs its loss scaled so that small gradients do not underflow (bfloat16 and float32 do not)."""
    return torch.amp.GradScaler(device.type) if dtype == torch.float16 else None


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer, batches: Iterable, accum: int,
               grad_clip: float, device: torch.device, dtype: torch.dtype,
               loss_fn: Callable[[nn.Module, Any], torch.Tensor],
               scaler: torch.amp.GradScaler | None = None) -> torch.Tensor:
    """One iteration: accumulate `accum` micro-batches (DDP syncs on the last), clip, step. `loss_fn(model,
    batch)` is the mean loss of one micro-batch; with a `scaler` (float16) the loss is scaled for the
    backward pass and the gradients unscaled before clipping, and a step with inf/NaN gradients is skipped.
    Returns the mean micro-batch loss (not synchronised)."""
    total = torch.zeros((), device=device)
    for i, batch in enumerate(batches):
        sync = i == accum - 1 or not hasattr(model, "no_sync")
        with (contextlib.nullcontext() if sync else model.no_sync()), autocast(device, dtype):
            loss = loss_fn(model, batch)
        (scaler.scale(loss / accum) if scaler is not None else loss / accum).backward()
        total += loss.detach()
    if scaler is not None:
        scaler.unscale_(optimizer)
    if grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return total / accum


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
