"""Cosine ablation (the paper's Table 5): L_reg = 1 − cos(E∇θℓ(g(t), y), E∇θℓ(g(t̂), y)), the gradients'
direction matched, not their difference."""

from __future__ import annotations

import torch

from noisecli.how.lgm import ce_gradients, factor_inner, safe_sqrt
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.regularisers.base import Regulariser


@REGULARISERS.register("cosine", "ablation: 1 − cos of the gradients at t and at t + γδ (Table 5)")
class Cosine(Regulariser):
    def terms(self, head, t, y, t_hat):
        z, f1, f2 = self.gradients_at_both(head, t, y, t_hat)
        dot = sum(factor_inner(a, c) for a, c in zip(f1, f2))
        norms = safe_sqrt(sum(factor_inner(a, a) for a in f1)) * safe_sqrt(sum(factor_inner(c, c) for c in f2))
        return 1 - dot / norms.clamp_min(torch.finfo(norms.dtype).tiny), z

    def reference(self, head, t, y, t_hat):
        g1, g2 = ce_gradients(head, t, y), ce_gradients(head, t_hat, y)
        return 1 - (g1 * g2).sum(1) / (g1.norm(dim=1) * g2.norm(dim=1))
