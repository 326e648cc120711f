"""Training stacked probe heads: a whole grid (seeds × learning rates) trained at once as one batched
head, by an AdamW vectorised over the stacked models, with CPU settings for many small steps.

Baseline and regulariser see identical batches: the order of samples depends only on (seed, epoch), and
δ comes from a generator of its own (how/lgm.py's Perturbations).
"""

from __future__ import annotations

import ctypes
import math
import platform
from contextlib import contextmanager

import numpy as np
import torch

from noisecli.core.progress import Reporter
from noisecli.how.lgm import Perturbations
from noisecli.how.probe.heads import make_head
from noisecli.how.probe.regularisers import make_regulariser


class AdamW:
    """torch.optim.AdamW's update, vectorised over stacked models with one learning rate per model."""

    def __init__(self, params: list[torch.Tensor], lr: torch.Tensor, weight_decay: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params, self.lr, self.wd, self.betas, self.eps = params, lr, weight_decay, betas, eps
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]
        # the update's one temporary, kept: with glibc's defaults a fresh one per step is a fresh mmap, and
        # its page faults made √v cost 2-3x its arithmetic (a 1.6 MB d = 4096, C = 100 head: 0.23 vs 0.09 ms)
        self.denom = [torch.empty_like(p) for p in params]
        self.t = 0

    @torch.no_grad()
    def step(self, scale: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for p, m, v, denom in zip(self.params, self.m, self.v, self.denom):
            lr = (self.lr * scale).view(-1, *[1] * (p.dim() - 1))
            if self.wd:
                p.mul_(1 - lr * self.wd)
            m.lerp_(p.grad, 1 - b1)
            v.mul_(b2).addcmul_(p.grad, p.grad, value=1 - b2)
            # p -= lr/c1 · m / (√(v/c2) + eps)
            torch.sqrt(v, out=denom).add_(self.eps * math.sqrt(c2)).div_(lr * (math.sqrt(c2) / c1))
            p.addcdiv_(m, denom, value=-1)
            p.grad = None


def keep_freed_memory() -> None:
    """glibc: freed blocks stay with the process. By default a block over 128 KiB is a fresh mmap and the
    heap's free top goes back to the OS, so each step's gradients and temporaries (MBs for a d = 4096 head)
    page-fault anew: a quarter to a half of a d = 4096, C = 100 probe step here, and much of its swing
    from run to run. Process-wide and kept, as with jemalloc or tcmalloc preloaded; memory freed later is
    reused rather than returned (blocks over 32 MiB, glibc's limit, are still mapped and unmapped)."""
    if platform.libc_ver()[0] == "glibc":
        libc = ctypes.CDLL(None)
        libc.mallopt(-1, 1 << 30)    # M_TRIM_THRESHOLD: keep up to 1 GiB free at the heap's top
        libc.mallopt(-3, 1 << 25)    # M_MMAP_THRESHOLD: blocks up to 32 MiB from the heap


@contextmanager
def cpu_training():
    """Settings for many small steps on a CPU. Denormal floats read as zero inside: a confident head's tiny
    probabilities (below 1.2e-38) would otherwise make every CPU matmul that touches them several times
    slower (5x seen on a d = 4096 head), and values that small change no result; the default (off) is
    restored on the way out. And freed memory is kept (keep_freed_memory)."""
    keep_freed_memory()
    torch.set_flush_denormal(True)
    try:
        yield
    finally:
        torch.set_flush_denormal(False)


@cpu_training()
def train_heads(x: torch.Tensor, y: torch.Tensor, kind: str, classes: int, lrs: list[float], seeds: list[int],
                batch_size: int, epochs: int, weight_decay: float, reg: str = "none", gamma: float = 0.01,
                lam: float = 0.15, progress: Reporter | None = None) -> torch.nn.Module:
    """Train len(seeds) × len(lrs) heads at once (model index = seed index × len(lrs) + lr index). A seed's
    learning rates see the same batches and δ, so each batch is gathered once and shared (heads.inputs)."""
    n, d = x.shape
    head = make_head(kind, d, classes, [sd for sd in seeds for _ in lrs]).to(x.device)
    lr = torch.tensor([v for _ in seeds for v in lrs], device=x.device)
    opt_ = AdamW(list(head.parameters()), lr, weight_decay)
    deltas = Perturbations(seeds, d, gamma, x.device)
    regulariser = make_regulariser(reg)
    steps_per_epoch = math.ceil(n / batch_size)
    total, step = steps_per_epoch * epochs, 0
    for epoch in range(epochs):
        order = torch.stack([torch.randperm(n, generator=torch.Generator().manual_seed(sd * 1_000_003 + epoch))
                             for sd in seeds]).to(x.device)
        for start in range(0, n, batch_size):
            idx = order[:, start:start + batch_size]                            # [seeds, B]
            t, yb = x[idx], y[idx].repeat_interleave(len(lrs), 0)
            if not regulariser.perturbed:
                regulariser.objective(head, t, yb, t, lam).backward()
            else:   # δ per seed; LGM on a linear or MLP head adds its closed-form gradient itself
                offset = deltas.next(idx.shape[1])
                if not regulariser.add_gradient(head, t, offset, yb, lam):
                    regulariser.objective(head, t, yb, t - offset, lam).backward()
            opt_.step(0.5 * (1 + math.cos(math.pi * step / total)))
            step += 1
            if progress is not None:
                progress.advance(1)
    return head


@torch.no_grad()
def diverged(head: torch.nn.Module, untrained: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Which stacked models diverged, [M]: a non-finite weight, or a training loss above the same model's before
    training (`untrained`: the head as make_head built it, same seeds): the optimiser made it worse, so its
    accuracy, near chance, means nothing and must not be reported as a result."""
    broken = torch.stack([~torch.isfinite(p).flatten(1).all(1) for p in head.parameters()]).any(0)
    after, before = mean_loss(head, x, y), mean_loss(untrained, x, y)
    return broken | ~torch.isfinite(after) | (after > before)


@torch.no_grad()
def mean_loss(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Mean cross-entropy of each stacked model on (x, y), shape [M]."""
    total = 0
    for i in range(0, len(y), chunk):
        logits = head(x[i:i + chunk])                                          # [M, n, C]
        total = total + torch.nn.functional.cross_entropy(
            logits.transpose(1, 2), y[i:i + chunk].expand(logits.shape[0], -1), reduction="none").sum(1)
    return total / len(y)


@torch.no_grad()
def accuracy(head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """Accuracy of each stacked model, shape [M]."""
    correct = 0
    for i in range(0, len(y), chunk):
        correct = correct + (head(x[i:i + chunk]).argmax(-1) == y[i:i + chunk]).sum(1)
    return correct.float() / len(y)


@torch.no_grad()
def predict_plane(head, t0: torch.Tensor, u: torch.Tensor, v: torch.Tensor, radius: float, n: int) -> np.ndarray:
    """The predicted class over t0 + a·v + b·u on an n × n grid, |a|, |b| ≤ radius (rows: v)."""
    a = torch.linspace(-radius, radius, n, device=t0.device)
    grid = t0 + a.view(-1, 1, 1) * v + a.view(1, -1, 1) * u        # rows: v, columns: u
    return head(grid.reshape(n * n, -1)).argmax(-1).view(n, n).cpu().numpy()
