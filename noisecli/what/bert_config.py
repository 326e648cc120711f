"""BERT's configuration and presets for `pretrain --arch bert` (torch-free, so --help lists them fast).

The vocabulary is GPT-2's, so BERT trains on the same prepared token files as GPT-2 (the paper's Table 9
pre-trains BERT-base on the same noisy data): ids 0..50256 are GPT-2's, MASK_ID = 50257 is the one token
added for masked-language modelling, and the embedding is padded to 50304 (a multiple of 64, as GPT-2's).
Our choice: the paper does not say which tokenizer its BERT used; sharing GPT-2's keeps the data, the
noise and its ids identical between the two models. There are no segment pairs (one token type) and no
next-sentence prediction, as in RoBERTa.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from noisecli.core.errors import InputError

MASK_ID = 50257


@dataclass
class BertModelConfig:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 512       # context length in tokens (position embeddings)
    vocab_size: int = 50304     # GPT-2's 50257 + [MASK], padded to a multiple of 64
    bias: bool = True
    dropout: float = 0.0        # hidden and attention dropout (BERT's own recipe uses 0.1; --dropout sets it)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "BertModelConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


BERT_PRESETS = {
    "bert-base": dict(n_layer=12, n_head=12, n_embd=768, block_size=512),    # the paper's Table 9
    "bert-large": dict(n_layer=24, n_head=16, n_embd=1024, block_size=512),
    "bert-tiny": dict(n_layer=2, n_head=2, n_embd=128, block_size=128),      # CPU, tests
}


def bert_preset(name: str, **overrides) -> BertModelConfig:
    if name not in BERT_PRESETS:
        raise InputError(f"unknown BERT preset '{name}' (choose from {', '.join(BERT_PRESETS)})")
    cfg = BertModelConfig(**{**BERT_PRESETS[name], **{k: v for k, v in overrides.items() if v is not None}})
    if cfg.n_embd % cfg.n_head:
        raise InputError(f"n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head}")
    return cfg
