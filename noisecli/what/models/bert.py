"""BERT for masked-language modelling under noise (the paper's Table 9, Appendix D.5): transformers'
`BertForMaskedLM`, built from a config (no download), on GPT-2's vocabulary plus [MASK] (what/architectures/bert.py).

`forward(inputs, labels)` has GPT's interface, (logits, loss), so the training loop and `Architecture.loss` take
either model; the loss is the mean cross-entropy over the masked positions only (labels ≠ -100), and
the LM head runs on those positions alone (15 % of the tokens), not on all of them.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisecli.what.architectures.base import IGNORE
from noisecli.what.architectures.bert import BertModelConfig


class BERT(nn.Module):
    arch = "bert"       # its architecture (what/architectures/bert.py), as checkpoints name it

    def __init__(self, cfg: BertModelConfig):
        super().__init__()
        from transformers import BertConfig, BertForMaskedLM
        self.config = cfg
        self.mlm = BertForMaskedLM(BertConfig(
            vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, num_hidden_layers=cfg.n_layer,
            num_attention_heads=cfg.n_head, intermediate_size=4 * cfg.n_embd,
            max_position_embeddings=cfg.block_size, type_vocab_size=1, hidden_act="gelu",
            hidden_dropout_prob=cfg.dropout, attention_probs_dropout_prob=cfg.dropout,
            pad_token_id=cfg.vocab_size - 1))   # a padding id that no token uses (GPT-2's 0 is "!")

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, d: dict) -> "BERT":
        return cls(BertModelConfig.from_dict(d))

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.mlm.bert.embeddings.position_embeddings.weight.numel() if non_embedding else n

    def forward_features(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Hidden states of the last layer, [B, T, n_embd] (`attention_mask`: 0 at padding, which no token
        then attends to)."""
        return self.mlm.bert(input_ids=idx, attention_mask=attention_mask).last_hidden_state

    def forward(self, idx: torch.Tensor, labels: torch.Tensor | None = None,
                reduction: str = "mean") -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits at the masked positions [N, vocab] and their cross-entropy (float32); with no labels,
        logits at every position [B, T, vocab] and no loss."""
        hidden = self.forward_features(idx)
        if labels is None:
            return self.mlm.cls(hidden), None
        picked = labels != IGNORE
        logits = self.mlm.cls(hidden[picked])
        return logits, F.cross_entropy(logits.float(), labels[picked], reduction=reduction)

    def flops_per_token(self) -> float:
        """Training FLOPs per token as for GPT (6N + attention); the LM head runs on the masked 15 % only,
        which this counts in full, so MFU is a lower bound."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * c.block_size
