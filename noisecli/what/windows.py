"""Language-model data as fixed context windows of a token file: the windows of `pretrain`'s training
batches (each iteration's global batch drawn from a generator seeded by (seed, iteration), so a resumed
run or the same run on more processes sees exactly the same windows; each architecture makes its batch of
them), and the evaluation during training on fixed windows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from noisecli.training import distributed


def window_starts(n_tokens: int, block: int, count: int, seed: int, stream: int) -> np.ndarray:
    rng = np.random.default_rng(np.random.SeedSequence([seed, stream]))
    return rng.integers(0, n_tokens - block - 1, size=count)


def draw_windows(data: np.ndarray, it: int, micro: int, cfg, block: int) -> np.ndarray:
    """The block+1-token windows of micro-batch `micro` of iteration `it`, from the iteration's global
    batch, which depends only on (seed, it) and the global batch size, never on the number of processes."""
    starts = window_starts(len(data), block, cfg.batch_size * cfg.grad_accum, cfg.seed, 1_000_000 + it)
    starts = starts[micro * cfg.batch_size:(micro + 1) * cfg.batch_size]
    return np.stack([data[s:s + block + 1] for s in starts]).astype(np.int64)


def to_device(device: torch.device, *arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    """Arrays as tensors on `device` (pinned and copied without blocking to a GPU)."""
    tensors = [torch.from_numpy(np.ascontiguousarray(a)) for a in arrays]
    if device.type == "cuda":
        return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
    return tuple(tensors)


@torch.no_grad()
def evaluate(model: nn.Module, data: np.ndarray, block: int, batch_size: int, windows: int, seed: int,
             device: torch.device, dist: "distributed.Dist") -> float:
    """Mean loss over a fixed set of `windows` context windows (seeded), split over the ranks."""
    from noisecli.what.architectures import architecture
    arch = architecture(model.arch)   # how its windows become (inputs, targets), fixed masks included
    mine = np.arange(windows)[dist.rank::dist.world_size]
    starts = window_starts(len(data), block, windows, seed, 7)[mine]
    total = torch.zeros(2, dtype=torch.float64, device=device)
    for i in range(0, len(starts), batch_size):
        xy = np.stack([data[s:s + block + 1] for s in starts[i:i + batch_size]]).astype(np.int64)
        pair = arch.inputs(xy[:, :arch.window(block)], seed, mine[i:i + batch_size])
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in pair)
        _, loss = model(x, y, reduction="sum")
        predicted = (y != -100).sum()
        total += torch.stack([loss.double(), torch.as_tensor(float(predicted), device=device, dtype=torch.float64)])
    distributed.all_reduce(total, "sum")
    return (total[0] / total[1]).item()
