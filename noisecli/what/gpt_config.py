"""GPT-2's configuration and the presets `pretrain` offers (torch-free, so --help lists them fast)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from noisecli.core.errors import InputError


@dataclass
class GPTConfig:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024      # context length in tokens
    vocab_size: int = 50304     # GPT-2's 50257 padded up to a multiple of 64
    bias: bool = True           # biases in Linear and LayerNorm layers, as GPT-2
    dropout: float = 0.0        # the paper pre-trains without dropout

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PRESETS = {
    "gpt2-124m": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "gpt2-774m": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024),
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),   # CPU
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),    # CPU, tests
}


def make_preset(cls: type, presets: dict, name: str, **overrides):
    """`cls` from the preset `name`, with the overrides that are not None; checks the heads divide the width."""
    if name not in presets:
        raise InputError(f"unknown preset '{name}' (choose from {', '.join(presets)})")
    cfg = cls(**{**presets[name], **{k: v for k, v in overrides.items() if v is not None}})
    if cfg.n_embd % cfg.n_head:
        raise InputError(f"n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head}")
    return cfg


def preset(name: str, **overrides) -> GPTConfig:
    return make_preset(GPTConfig, PRESETS, name, **overrides)
