"""No regulariser: plain cross-entropy (the baseline of every table)."""

from __future__ import annotations

import torch

from noisecli.how.probe.heads.base import cross_entropy
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.regularisers.base import Regulariser


@REGULARISERS.register("none", "plain cross-entropy, L = L_ce (the baseline)")
class NoPenalty(Regulariser):
    perturbed = False

    def terms(self, head, t, y, t_hat):
        return torch.zeros(getattr(head, "models", 1), dtype=t.dtype, device=t.device), head(t)

    def reference(self, head, t, y, t_hat):
        return torch.zeros(getattr(head, "models", 1), dtype=t.dtype, device=t.device)

    def objective(self, head, t, y, t_hat, lam):
        return cross_entropy(head(t), y)
