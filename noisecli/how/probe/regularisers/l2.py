"""Output-consistency comparator (the paper's §4.1 and Figure 6(b); not a row of its Table 5): L_reg = the batch mean of ‖g(t) − g(t̂)‖₂ over
logits, matching outputs rather than gradients."""

from __future__ import annotations

import torch

from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.regularisers.base import Regulariser


@REGULARISERS.register("l2", "ablation: batch mean of ‖g(t) − g(t + γδ)‖₂ over logits (§4.1, Figure 6(b))")
class L2(Regulariser):
    def terms(self, head, t, y, t_hat):
        b = t.shape[1]
        z = head(torch.cat([t, t_hat], 1))
        return (z[:, :b] - z[:, b:]).norm(dim=-1).mean(-1), z[:, :b]

    def reference(self, head, t, y, t_hat):
        z1, z2 = head(t), head(t_hat)
        z1, z2 = (z if z.dim() == 3 else z[None] for z in (z1, z2))
        return (z1 - z2).norm(dim=-1).mean(-1)
