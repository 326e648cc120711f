"""The base of probe heads, and the batched algebra they share.

A head holds M independent models stacked along a first axis (one per seed or learning rate of a grid),
so a whole grid trains in one batched matmul: `head(t)` maps features [S, B, d], each batch shared by
M/S consecutive models (see `inputs`; [B, d] is shared by all), to logits [M, B, C]. Each head also
writes its batch-mean cross-entropy gradient in closed form as factors: for every parameter,
grad = Uᵀ V per model (U [M, B, out], V [M, B, in]; V = ones for a bias). That is what Local Gradient
Matching (lgm.py) needs without second-order autograd.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


def uniform_init(shape: tuple, bound: float, generators: list[torch.Generator], dtype: torch.dtype) -> torch.Tensor:
    """nn.Linear's default init U(-1/√fan_in, 1/√fan_in), one generator per model."""
    return torch.stack([(torch.rand(shape[1:], generator=g, dtype=dtype) * 2 - 1) * bound for g in generators])


def inputs(t: torch.Tensor, models: int) -> torch.Tensor:
    """Features as [S, B, d] where S divides M: each input batch is shared by M/S consecutive models
    (a 2-D [B, d] by all of them). A grid's learning rates for one seed see the same batches, so they
    share one input and the products below run once per input, not once per model."""
    t = t.unsqueeze(0) if t.dim() == 2 else t
    if models % t.shape[0]:
        raise ValueError(f"{t.shape[0]} input batches cannot be shared evenly by {models} models")
    return t


def per_model(t: torch.Tensor, models: int) -> torch.Tensor:
    """Features as [M, B, d], one batch per model (a view when all models share one)."""
    t = inputs(t, models)
    if t.shape[0] == 1:
        return t.expand(models, -1, -1)
    return t.repeat_interleave(models // t.shape[0], 0)


def grouped_bmm(w: torch.Tensor, rhs: torch.Tensor) -> torch.Tensor:
    """w_m · rhs per model: w [M, out, n], rhs [S, n, p] with each rhs shared by M/S consecutive models
    (see `inputs`) -> [M, out, p]. The models sharing an rhs go through one bmm as one [(M/S)·out, n]
    matrix. (With one rhs per model no views are made: they cost a few µs each on a ~1 ms probe step.)"""
    m, s = w.shape[0], rhs.shape[0]
    if m == s:
        return torch.bmm(w, rhs)
    return torch.bmm(w.view(s, -1, w.shape[-1]), rhs).view(m, -1, rhs.shape[-1])


def affine(t: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """t Wᵀ + b per model: [S, B, in] x [M, out, in] -> [M, B, out] (see `inputs`). Written as (W tᵀ)ᵀ,
    which MKL runs 2-4x faster than t Wᵀ for the small batches and class counts of probing."""
    return grouped_bmm(weight, t.transpose(1, 2)).transpose(1, 2) + bias.unsqueeze(1)


def ce_dlogits(logits: torch.Tensor, y: torch.Tensor, batch: int | None) -> torch.Tensor:
    """d(batch-mean CE)/d logits = (softmax − onehot) / B, per model (B = `batch`, default all rows)."""
    p = torch.softmax(logits, dim=-1)
    return (p - F.one_hot(y.expand(logits.shape[:2]), logits.shape[-1]).to(p.dtype)) / (batch or logits.shape[1])


class Head(nn.Module):
    """M stacked models (one per seed or learning rate): features [S, B, d] or [B, d] -> logits [M, B, C].
    `grad_factors(t, y, batch)` gives (logits, [(U, V) per parameter]) with each parameter's batch-mean
    CE gradient = Uᵀ V per model, in the order of `factor_parameters()`."""

    name: str = ""
    summary: str = ""

    def __init__(self, dim: int, classes: int, seeds: list[int], dtype: torch.dtype | None = None):
        super().__init__()
        self.models = len(seeds)

    def grad_factors(self, t: torch.Tensor, y: torch.Tensor, batch: int | None = None) -> tuple[torch.Tensor, list]:
        raise NotImplementedError

    def factor_parameters(self) -> list[nn.Parameter]:
        """The parameters in the order `grad_factors` gives their factors."""
        return list(self.parameters())


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Batch-mean cross-entropy of each model, summed over models (each model gets its own gradient)."""
    m, b, c = logits.shape
    y = y.expand(m, b) if y.dim() == 1 else y
    return F.cross_entropy(logits.reshape(m * b, c), y.reshape(m * b), reduction="sum") / b
