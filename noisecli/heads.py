"""Probe heads on frozen features: `linear` and `mlp` (two layers, hidden width = feature dimension, ReLU).

A head holds M independent models stacked along a first axis (one per seed or learning rate of a grid),
so a whole grid trains in one batched matmul: `head(t)` maps features [M, B, d] (or [B, d] for M = 1) to
logits [M, B, C]. Each head also writes its batch-mean cross-entropy gradient in closed form as
factors: for every parameter, grad = Uᵀ V per model (U [M, B, out], V [M, B, in]; V = ones for a bias).
That is what Local Gradient Matching (lgm.py) needs without second-order autograd.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

HEADS = ("linear", "mlp")


def _uniform(shape: tuple, bound: float, generators: list[torch.Generator], dtype: torch.dtype) -> torch.Tensor:
    """nn.Linear's default init U(-1/√fan_in, 1/√fan_in), one generator per model."""
    return torch.stack([(torch.rand(shape[1:], generator=g, dtype=dtype) * 2 - 1) * bound for g in generators])


def _batched(t: torch.Tensor, models: int) -> torch.Tensor:
    """Features [B, d] are shared by all models: view them as [M, B, d]."""
    return t.unsqueeze(0).expand(models, *t.shape) if t.dim() == 2 else t


def _dlogits(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """d(batch-mean CE)/d logits = (softmax − onehot) / B, per model."""
    p = torch.softmax(logits, dim=-1)
    return (p - F.one_hot(y.expand(logits.shape[:2]), logits.shape[-1]).to(p.dtype)) / logits.shape[1]


class LinearHead(nn.Module):
    def __init__(self, dim: int, classes: int, seeds: list[int], dtype: torch.dtype = torch.float32):
        super().__init__()
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        self.models, b = len(seeds), 1 / math.sqrt(dim)
        self.weight = nn.Parameter(_uniform((len(seeds), classes, dim), b, gens, dtype))
        self.bias = nn.Parameter(_uniform((len(seeds), classes), b, gens, dtype))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), _batched(t, self.models), self.weight.transpose(1, 2))

    def grad_factors(self, t: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        t = _batched(t, self.models)
        dz = _dlogits(self(t), y)
        return [(dz, t), (dz, torch.ones_like(dz[..., :1]))]


class MLPHead(nn.Module):
    def __init__(self, dim: int, classes: int, seeds: list[int], dtype: torch.dtype = torch.float32,
                 hidden: int | None = None):
        super().__init__()
        hidden = hidden or dim
        self.models = len(seeds)
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        b1, b2 = 1 / math.sqrt(dim), 1 / math.sqrt(hidden)
        m = len(seeds)
        self.w1 = nn.Parameter(_uniform((m, hidden, dim), b1, gens, dtype))
        self.b1 = nn.Parameter(_uniform((m, hidden), b1, gens, dtype))
        self.w2 = nn.Parameter(_uniform((m, classes, hidden), b2, gens, dtype))
        self.b2 = nn.Parameter(_uniform((m, classes), b2, gens, dtype))

    def _hidden(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = torch.baddbmm(self.b1.unsqueeze(1), t, self.w1.transpose(1, 2))
        return pre, torch.relu(pre)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = self._hidden(_batched(t, self.models))[1]
        return torch.baddbmm(self.b2.unsqueeze(1), h, self.w2.transpose(1, 2))

    def grad_factors(self, t: torch.Tensor, y: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        t = _batched(t, self.models)
        pre, h = self._hidden(t)
        dz = _dlogits(torch.baddbmm(self.b2.unsqueeze(1), h, self.w2.transpose(1, 2)), y)
        dh = torch.bmm(dz, self.w2) * (pre > 0).to(dz.dtype)
        ones = torch.ones_like(dz[..., :1])
        return [(dz, h), (dz, ones), (dh, t), (dh, ones)]


def make_head(kind: str, dim: int, classes: int, seeds: list[int], dtype: torch.dtype = torch.float32) -> nn.Module:
    if kind == "linear":
        return LinearHead(dim, classes, seeds, dtype)
    if kind == "mlp":
        return MLPHead(dim, classes, seeds, dtype)
    raise ValueError(f"unknown head '{kind}' (choose from {', '.join(HEADS)})")


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch-mean cross-entropy of each model, summed over models (each model gets its own gradient)."""
    m, b, c = logits.shape
    y = y.expand(m, b) if y.dim() == 1 else y
    return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="sum") / b
