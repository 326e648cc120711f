"""The linear probe head: logits = W t + b per stacked model."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.heads.base import Head, affine, ce_dlogits, inputs, per_model, uniform_init


@HEADS.register("linear", "one linear layer: logits = W t + b")
class LinearHead(Head):
    def __init__(self, dim: int, classes: int, seeds: list[int], dtype: torch.dtype | None = None):
        super().__init__(dim, classes, seeds, dtype)
        dtype = dtype or torch.float32
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        b = 1 / math.sqrt(dim)
        self.weight = nn.Parameter(uniform_init((len(seeds), classes, dim), b, gens, dtype))
        self.bias = nn.Parameter(uniform_init((len(seeds), classes), b, gens, dtype))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return affine(inputs(t, self.models), self.weight, self.bias)

    def grad_factors(self, t: torch.Tensor, y: torch.Tensor, batch: int | None = None) -> tuple[torch.Tensor, list]:
        """(logits, factors): one forward pass, and grad = Σ over rows of Uᵀ V per parameter, the mean
        taken over `batch` rows (stacked t and t̂ give each half's gradient from one pass)."""
        t = per_model(t, self.models)
        logits = self(t)
        dz = ce_dlogits(logits, y, batch)
        return logits, [(dz, t), (dz, torch.ones_like(dz[..., :1]))]
