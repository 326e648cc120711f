"""Probe heads on frozen features, one file each (`linear`, `mlp`), registered in HEADS.

Every head holds M independent models stacked along a first axis (a whole grid of seeds and learning
rates trains in one batched matmul) and writes its batch-mean CE gradient in closed form as factors
(`grad_factors`), which Local Gradient Matching uses (how/lgm.py). A new head is one `Head` subclass
in one new file here; the contract tests (tests/test_heads.py) run on every registered head.
"""

from __future__ import annotations

from noisecli.core.registry import Registry

HEADS = Registry("head", __name__)


def make_head(kind: str, dim: int, classes: int, seeds: list[int], dtype=None):
    """M = len(seeds) stacked heads of kind `kind` (an unknown kind is the user's error)."""
    return HEADS.get(kind)(dim, classes, seeds, dtype)
