"""Gaussian noise: round(N(mean, std)), draws outside [0, 50256) redrawn (a truncated Gaussian). The
paper's setting is μ = 25128, σ = 500 (§3.2)."""

from __future__ import annotations

import math

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what.noise import NOISES
from noisecli.what.noise.base import DRAW_CHUNK, NOISE_IDS, Noise, NoiseOptions


@NOISES.register("gaussian",
                 "round(N(--mean, --std)) over ids, out-of-range draws redrawn (the paper: μ=25128, σ=500)")
class Gaussian(Noise):
    def __init__(self, seed: int, options: NoiseOptions):
        super().__init__(seed, options)
        self.mean, self.std = float(options.mean), float(options.std)
        if not (math.isfinite(self.mean) and math.isfinite(self.std)):
            raise InputError(f"--mean and --std must be finite, got {options.mean} and {options.std}")
        if not self.std > 0:
            raise InputError(f"--std must be > 0, got {options.std}")
        inside = 0.5 * (math.erf((NOISE_IDS - 0.5 - self.mean) / (self.std * math.sqrt(2)))
                        - math.erf((-0.5 - self.mean) / (self.std * math.sqrt(2))))
        if inside < 1e-3:
            raise InputError(f"Gaussian noise with mean {self.mean} and std {self.std} falls almost "
                             f"entirely outside [0, {NOISE_IDS})")
        self.params.update(mean=self.mean, std=self.std, rounding="nearest integer",
                           out_of_range="redrawn (truncated Gaussian)")

    def chunk(self, j: int) -> np.ndarray:
        rng = self.rng(2, j)
        out = np.rint(rng.normal(self.mean, self.std, DRAW_CHUNK))
        bad = (out < 0) | (out >= NOISE_IDS)
        while bad.any():
            out[bad] = np.rint(rng.normal(self.mean, self.std, int(bad.sum())))
            bad = (out < 0) | (out >= NOISE_IDS)
        return out.astype(np.uint16)

    @classmethod
    def probabilities(cls, params: dict) -> np.ndarray:
        """P(i) ∝ Φ((i+½−μ)/σ) − Φ((i−½−μ)/σ) over [0, 50256)."""
        from scipy.special import ndtr
        mean, std = float(params["mean"]), float(params["std"])
        edges = (np.arange(NOISE_IDS + 1) - 0.5 - mean) / std
        # the mass of each unit interval, from whichever tail keeps it accurate
        mass = np.where(edges[1:] <= 0, ndtr(edges[1:]) - ndtr(edges[:-1]), ndtr(-edges[:-1]) - ndtr(-edges[1:]))
        return mass / mass.sum()
