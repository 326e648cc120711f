"""Gradient-norm ablation (the paper's Table 5): L_reg = ‖E∇θℓ(g(t), y)‖₂, the clean gradient's norm."""

from __future__ import annotations

from noisecli.how.lgm import ce_gradients, factor_inner, safe_sqrt
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.regularisers.base import Regulariser


@REGULARISERS.register("gradnorm", "ablation: the norm of the clean gradient, ‖E∇θℓ(g(t), y)‖₂ (Table 5)")
class GradNorm(Regulariser):
    perturbed = False

    def terms(self, head, t, y, t_hat):
        z, f1 = head.grad_factors(t, y)
        return safe_sqrt(sum(factor_inner(f, f) for f in f1)), z

    def reference(self, head, t, y, t_hat):
        return safe_sqrt(ce_gradients(head, t, y).pow(2).sum(1))
