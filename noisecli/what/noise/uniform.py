"""Uniform noise: every id in [0, 50256) equally likely; <|endoftext|> is never drawn (the paper's §3)."""

from __future__ import annotations

import numpy as np

from noisecli.what.noise import NOISES
from noisecli.what.noise.base import DRAW_CHUNK, NOISE_IDS, Noise


@NOISES.register("uniform", "every id in [0, 50256) equally likely (the paper's uniform noise)")
class Uniform(Noise):
    def chunk(self, j: int) -> np.ndarray:
        return self.rng(2, j).integers(0, NOISE_IDS, size=DRAW_CHUNK).astype(np.uint16)

    @classmethod
    def probabilities(cls, params: dict) -> np.ndarray:
        return np.full(NOISE_IDS, 1.0 / NOISE_IDS)
