"""Language-model data as fixed context windows of a token file: the training batches of `pretrain`
(each iteration's global batch drawn from a generator seeded by (seed, iteration), so a resumed run or
the same run on more processes sees exactly the same windows), and its evaluation on fixed windows."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from noisecli.training import distributed


def lm_loss(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """The mean next-token loss of a micro-batch (inputs, targets): the training loop's loss for GPTs."""
    return model(*batch)[1]


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
