"""L²-SP (Li et al. 2018, "Explicit inductive bias for transfer learning", Eq. 4):

    Ω(w) = α/2 · ‖w_S − w_S⁰‖² + β/2 · ‖w_S̄‖²

w_S: the encoder's weights, pulled towards their pre-trained values w_S⁰ (the starting point); w_S̄: the
new task head's, decayed towards 0. Li et al. replace weight decay by Ω, so `finetune` turns AdamW's
weight decay off for this method. Defaults: α = 0.1, β = 0.01, Li et al.'s main setting (the paper cites
Hua et al. 2021 for its numbers and gives none)."""

from __future__ import annotations

from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.finetune.regularisers.base import FinetuneRegulariser


@FINETUNE_REGULARISERS.register("l2sp", "L²-SP: α/2‖w − w⁰‖² to the pre-trained encoder + β/2‖w_head‖² "
                                "(Li et al. 2018); options alpha=0.1, beta=0.01")
class L2SP(FinetuneRegulariser):
    defaults = {"alpha": 0.1, "beta": 0.01}
    replaces_weight_decay = True

    def setup(self, model):   # on resume the anchor is rebuilt from the pre-trained source, not saved
        self.anchor = {n: p.detach().clone() for n, p in model.encoder.named_parameters()}

    def penalty(self, model, batch, clean):
        sp = sum((p - self.anchor[n]).pow(2).sum() for n, p in model.encoder.named_parameters())
        new = sum(p.pow(2).sum() for p in model.head.parameters())
        return self.alpha / 2 * sp + self.beta / 2 * new


