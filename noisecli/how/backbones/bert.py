"""`bert:RUN_OR_CHECKPOINT`: our own BERT (pre-trained by `pretrain --arch bert`, e.g. Table 9's runs) as a
frozen feature extractor: GPT-2's tokens, padding masked out of the attention, the mean of the last layer's
hidden states (it has no [CLS] token, and its last token sees no more than any other)."""

from __future__ import annotations

import torch

from noisecli.how.backbones import BACKBONES
from noisecli.how.backbones.gpt import GPTBackbone


@BACKBONES.register("bert", "`bert:RUN_OR_CHECKPOINT`: our BERT checkpoints (`pretrain --arch bert`), mean of the "
                            "last layer's hidden states")
class BertBackbone(GPTBackbone):
    example = "{runs}/bert-clean"
    arch, default_pool, pools = "bert", "mean", ("mean",)

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model.forward_features(batch["input_ids"], batch["attention_mask"])
