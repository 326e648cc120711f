"""Plain full fine-tuning: the task loss alone."""

from __future__ import annotations

from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.finetune.regularisers.base import FinetuneRegulariser


@FINETUNE_REGULARISERS.register("none", "plain full fine-tuning: the task loss alone")
class NoFinetunePenalty(FinetuneRegulariser):
    pass
