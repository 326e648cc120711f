"""Frozen feature extractors, one file per kind, registered in BACKBONES and named `KIND:NAME`:

    gpt:RUN_OR_CHECKPOINT   our GPT-2 checkpoints: hidden state after the final LayerNorm
    hf:PATH_OR_ID           transformers models: causal LMs (also a .gguf file), encoders (BERT, ...)
    timm:NAME               timm vision models (pretrained when online, or --weights FILE|random)

All share one interface (base.Backbone: prepare, collate, forward_features, forward_head). A new kind is
one subclass in one new file here; the contract tests (tests/test_backbones.py) load its `example`.
"""

from __future__ import annotations

from dataclasses import dataclass

from noisecli.core.errors import InputError
from noisecli.core.registry import Registry

BACKBONES = Registry("backbone", __name__)
POOLS = ("auto", "last", "mean", "cls")


@dataclass
class BackboneOptions:
    """The extract options a backbone reads (each reads the ones it needs)."""
    pool: str = "auto"
    max_length: int = 512
    weights: str | None = None
    seed: int = 0
    device: str = "cpu"


def load_backbone(spec: str, pool: str = "auto", max_length: int = 512, weights: str | None = None,
                  seed: int = 0, device="cpu"):
    """A backbone from its spec `KIND:NAME` (gpt:..., hf:..., timm:...)."""
    kind, _, name = spec.partition(":")
    if pool not in POOLS:
        raise InputError(f"--pool must be one of {', '.join(POOLS)}, not '{pool}'")
    if not name or kind not in BACKBONES.names():
        raise InputError(f"unknown backbone '{spec}' (use KIND:NAME with KIND one of {', '.join(BACKBONES.names())})")
    return BACKBONES.get(kind)(name, BackboneOptions(pool, max_length, weights, seed, str(device)))
