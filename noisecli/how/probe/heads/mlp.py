"""The MLP probe head: two layers, hidden width = feature dimension, ReLU (the paper's §4)."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.heads.base import Head, affine, ce_dlogits, inputs, per_model, uniform_init


@HEADS.register("mlp", "two layers, hidden width = feature dimension, ReLU: W₂ relu(W₁ t + b₁) + b₂")
class MLPHead(Head):
    def __init__(self, dim: int, classes: int, seeds: list[int], dtype: torch.dtype | None = None,
                 hidden: int | None = None):
        super().__init__(dim, classes, seeds, dtype)
        dtype, hidden = dtype or torch.float32, hidden or dim
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        b1, b2 = 1 / math.sqrt(dim), 1 / math.sqrt(hidden)
        m = len(seeds)
        self.w1 = nn.Parameter(uniform_init((m, hidden, dim), b1, gens, dtype))
        self.b1 = nn.Parameter(uniform_init((m, hidden), b1, gens, dtype))
        self.w2 = nn.Parameter(uniform_init((m, classes, hidden), b2, gens, dtype))
        self.b2 = nn.Parameter(uniform_init((m, classes), b2, gens, dtype))

    def _hidden(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = affine(t, self.w1, self.b1)
        return pre, torch.relu(pre)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        h = self._hidden(inputs(t, self.models))[1]
        return affine(h, self.w2, self.b2)

    def grad_factors(self, t: torch.Tensor, y: torch.Tensor, batch: int | None = None) -> tuple[torch.Tensor, list]:
        t = per_model(t, self.models)
        pre, h = self._hidden(t)
        logits = affine(h, self.w2, self.b2)
        dz = ce_dlogits(logits, y, batch)
        dh = torch.bmm(dz, self.w2) * (pre > 0).to(dz.dtype)
        ones = torch.ones_like(dz[..., :1])
        return logits, [(dz, h), (dz, ones), (dh, t), (dh, ones)]

    def factor_parameters(self) -> list[nn.Parameter]:
        return [self.w2, self.b2, self.w1, self.b1]
