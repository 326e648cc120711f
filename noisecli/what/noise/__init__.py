"""The noise distributions Pⁿ mixed into the training data (the paper's §3 and Figure 8), one file each:

    uniform   every id in [0, 50256) equally likely                      the paper's "uniform"
    random    the paper's spiky noise (Figure 8(b))                       the paper's "random"
    gaussian  round(N(mean, std)), truncated to [0, 50256)                the paper's Gaussian, μ=25128 σ=500
    tokens    another prepared dataset's tokens (--noise-from)            the paper's §3.5 (other languages)
    mojibake  UTF-8 text decoded as CP1252 and re-tokenized               the introduction's "decoding errors"

A new distribution is one class in one new file here, registered with `@NOISES.register`; `prepare`'s
--dist choices, its help and the contract tests (tests/test_noise.py) pick it up from the registry.
"""

from __future__ import annotations

import numpy as np

from noisecli.core.registry import Registry
from noisecli.what.noise.base import DRAW_CHUNK, NOISE_IDS, Noise, NoiseOptions

NOISES = Registry("noise distribution", __name__)

__all__ = ["DRAW_CHUNK", "NOISES", "NOISE_IDS", "Noise", "NoiseOptions", "entropy", "make_noise", "probabilities"]


def make_noise(dist: str, seed: int, options: NoiseOptions | None = None) -> Noise:
    """The noise source registered as `dist` (an unknown name is the user's error)."""
    return NOISES.get(dist)(seed, options or NoiseOptions())


def probabilities(params: dict) -> np.ndarray | None:
    """The exact probability of every id under the noise that `params` (meta.json's "noise") describes,
    from the distribution itself, not from a sample; None where there is no closed form."""
    dist = params.get("dist")
    return NOISES.get(dist).probabilities(params) if dist in NOISES.names() else None


def entropy(params: dict) -> float | None:
    """The exact entropy (nats) of the noise: the lowest mean loss any model can reach on i.i.d. draws
    from it. ln 50256 for uniform noise; None where there is no closed form."""
    p = probabilities(params)
    if p is None:
        return None
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())
