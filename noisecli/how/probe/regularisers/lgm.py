"""Local Gradient Matching (the paper's Eq. 4 and 6): L_gm = ‖E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y)‖₂. On the
linear and MLP heads it takes the closed forms of how/lgm.py (no autograd graph); on any other head, or
when the features are trained, the factor form through first-order autograd."""

from __future__ import annotations

from noisecli.how.lgm import (
    FUSED,
    add_fused_gradient,
    ce_gradients,
    factor_difference,
    factor_inner,
    features_trained,
    fused_lgm,
    safe_sqrt,
)
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.regularisers.base import Regulariser


def _closed_form(head, t, t_hat) -> bool:
    return isinstance(head, FUSED) and not features_trained(t, t_hat)


@REGULARISERS.register("lgm", "Local Gradient Matching: ‖E∇θℓ(g(t), y) − E∇θℓ(g(t + γδ), y)‖₂ (the paper's Eq. 4)")
class LGM(Regulariser):
    def terms(self, head, t, y, t_hat):
        z, f1, f2 = self.gradients_at_both(head, t, y, t_hat)
        return safe_sqrt(sum(factor_inner(d, d) for d in factor_difference(f1, f2))), z

    def penalty(self, head, t, y, t_hat):
        return fused_lgm(head, t, y, t_hat) if _closed_form(head, t, t_hat) else super().penalty(head, t, y, t_hat)

    def objective(self, head, t, y, t_hat, lam):
        if _closed_form(head, t, t_hat):
            return fused_lgm(head, t, y, t_hat, lam, 1.0)
        return super().objective(head, t, y, t_hat, lam)

    def add_gradient(self, head, t, offset, y, lam):
        if not isinstance(head, FUSED):
            return False
        add_fused_gradient(head, t, offset, y, lam)
        return True

    def reference(self, head, t, y, t_hat):
        return safe_sqrt((ce_gradients(head, t, y) - ce_gradients(head, t_hat, y)).pow(2).sum(1))

