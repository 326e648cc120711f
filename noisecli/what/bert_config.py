"""BERT's configuration and presets for `pretrain --arch bert` (torch-free, so --help lists them fast).

The vocabulary is GPT-2's, so BERT trains on the same prepared token files as GPT-2 (the paper's Table 9
pre-trains BERT-base on the same noisy data): ids 0..50256 are GPT-2's, MASK_ID = 50257 is the one token
added for masked-language modelling, and the embedding is padded to 50304 (a multiple of 64, as GPT-2's).
Our choice: the paper does not say which tokenizer its BERT used; sharing GPT-2's keeps the data, the
noise and its ids identical between the two models. There are no segment pairs (one token type) and no
next-sentence prediction, as in RoBERTa.
"""

from __future__ import annotations

from dataclasses import dataclass

from noisecli.what.gpt_config import GPTConfig, make_preset

MASK_ID = 50257


@dataclass
class BertModelConfig(GPTConfig):
    """GPT-2's fields: layers, heads, width, context (BERT's position embeddings: 512), vocabulary (50257 +
    [MASK], padded to 50304), biases, and dropout (hidden and attention; BERT's own recipe uses 0.1, our
    default 0 matches the GPT-2 runs, and --dropout sets it)."""
    block_size: int = 512


BERT_PRESETS = {
    "bert-base": dict(n_layer=12, n_head=12, n_embd=768, block_size=512),    # the paper's Table 9
    "bert-large": dict(n_layer=24, n_head=16, n_embd=1024, block_size=512),
    "bert-tiny": dict(n_layer=2, n_head=2, n_embd=128, block_size=128),      # CPU, tests
}


def bert_preset(name: str, **overrides) -> BertModelConfig:
    return make_preset(BertModelConfig, BERT_PRESETS, name, **overrides)
