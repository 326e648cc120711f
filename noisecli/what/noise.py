"""The noise distributions Pⁿ mixed into the training data (the paper's §3 and Figure 8).

A `NoiseSource` hands out noise tokens with `draw(n)`, deterministically from its seed:
  uniform   every id in [0, 50256) equally likely (EOT is never drawn)
  random    the paper's spiky noise (Figure 8(b)): uniform base weight 1, ids 0..1000 weight 3,
            plus 100 ids drawn at random (from the seed) with weight 50; probabilities = weights / sum
  gaussian  round(N(mean, std)); draws outside [0, 50256) are redrawn (a truncated Gaussian)
  tokens    consecutive tokens of another prepared dataset's train.bin (`--noise-from`), from a seeded
            random offset, wrapping around at the end (e.g. French text as Pⁿ, the paper's §3.5)
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what.tokenizer import EOT

NOISE_IDS = EOT  # noise ids lie in [0, 50256): every token but <|endoftext|>
DISTRIBUTIONS = ("uniform", "random", "gaussian")
RANDOM_SPIKES = 100        # how many ids get a boosted frequency in the `random` distribution
RANDOM_SPIKE_WEIGHT = 50.0
RANDOM_LOW_IDS = 1001      # ids 0..1000 ...
RANDOM_LOW_WEIGHT = 3.0    # ... are this many times as frequent as the rest
DRAW_CHUNK = 1 << 20


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def random_distribution(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities over [0, 50256) of the `random` noise, and its boosted ("spike") ids."""
    spikes = np.sort(_rng(seed, 7).choice(NOISE_IDS, size=RANDOM_SPIKES, replace=False))
    weights = np.ones(NOISE_IDS)
    weights[:RANDOM_LOW_IDS] = RANDOM_LOW_WEIGHT
    weights[spikes] = RANDOM_SPIKE_WEIGHT
    return weights / weights.sum(), spikes


class NoiseSource:
    """Draws noise tokens. `capacity` is how many it can give (None: unlimited)."""

    capacity: int | None = None

    def __init__(self, dist: str, seed: int, mean: float = 25128.0, std: float = 500.0):
        if dist not in DISTRIBUTIONS:
            raise InputError(f"unknown noise distribution '{dist}' (choose from {', '.join(DISTRIBUTIONS)})")
        self.dist, self.seed, self.mean, self.std = dist, seed, mean, std
        self.pos = 0  # tokens handed out so far
        self._cached: tuple[int, np.ndarray | None] = (-1, None)  # the chunk `draw` is reading
        self.params: dict = {"dist": dist, "support": [0, NOISE_IDS - 1]}
        if dist == "random":
            self.probs, spikes = random_distribution(seed)
            # Sampled exactly as a mixture: uniform over all ids (weight 1 each), uniform over the low
            # ids (extra weight 2 each), and the spikes (the rest of their weight, 47 or 49 each).
            low_extra = RANDOM_LOW_IDS * (RANDOM_LOW_WEIGHT - 1)
            spike_extra = RANDOM_SPIKE_WEIGHT - 1 - (RANDOM_LOW_WEIGHT - 1) * (spikes < RANDOM_LOW_IDS)
            self.spikes, self.spike_cdf = spikes, np.cumsum(spike_extra) / spike_extra.sum()
            self.mix_cdf = np.cumsum([NOISE_IDS, low_extra, spike_extra.sum()]) / (
                NOISE_IDS + low_extra + spike_extra.sum())
            self.params.update(
                base_weight=1.0, low_ids=[0, RANDOM_LOW_IDS - 1], low_weight=RANDOM_LOW_WEIGHT,
                n_spikes=RANDOM_SPIKES, spike_weight=RANDOM_SPIKE_WEIGHT, spike_ids=spikes.tolist(),
                spike_mass=float(self.probs[spikes].sum()),
                low_ids_mass=float(self.probs[:RANDOM_LOW_IDS].sum()))
        elif dist == "gaussian":
            if not std > 0:
                raise InputError(f"--std must be > 0, got {std}")
            inside = 0.5 * (math.erf((NOISE_IDS - 0.5 - mean) / (std * math.sqrt(2)))
                            - math.erf((-0.5 - mean) / (std * math.sqrt(2))))
            if inside < 1e-3:
                raise InputError(f"Gaussian noise with mean {mean} and std {std} falls almost "
                                 f"entirely outside [0, {NOISE_IDS})")
            self.params.update(mean=mean, std=std, rounding="nearest integer",
                               out_of_range="redrawn (truncated Gaussian)")

    def chunk(self, j: int) -> np.ndarray:
        """Tokens [j·C, (j+1)·C) of the noise stream (C = DRAW_CHUNK), from a generator of their own:
        chunks can be drawn in any order, in parallel, and always give the same stream."""
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 2, j]))
        n = DRAW_CHUNK
        if self.dist == "uniform":
            out = rng.integers(0, NOISE_IDS, size=n)
        elif self.dist == "random":
            component = np.searchsorted(self.mix_cdf, rng.random(n), side="right")
            out = rng.integers(0, NOISE_IDS, size=n)
            low = component == 1
            out[low] = rng.integers(0, RANDOM_LOW_IDS, size=int(low.sum()))
            spike = component >= 2
            which = np.searchsorted(self.spike_cdf, rng.random(int(spike.sum())), side="right")
            out[spike] = self.spikes[np.minimum(which, len(self.spikes) - 1)]
        else:
            out = np.rint(rng.normal(self.mean, self.std, n))
            bad = (out < 0) | (out >= NOISE_IDS)
            while bad.any():
                out[bad] = np.rint(rng.normal(self.mean, self.std, int(bad.sum())))
                bad = (out < 0) | (out >= NOISE_IDS)
        return out.astype(np.uint16)

    def draw(self, n: int) -> np.ndarray:
        """The next `n` noise tokens as uint16."""
        parts, end = [], self.pos + n
        while self.pos < end:
            j, offset = divmod(self.pos, DRAW_CHUNK)
            take = min(DRAW_CHUNK - offset, end - self.pos)
            if self._cached[0] != j:
                self._cached = (j, self.chunk(j))
            parts.append(self._cached[1][offset:offset + take])
            self.pos += take
        return np.concatenate(parts) if parts else np.empty(0, np.uint16)


class TokenFileNoise(NoiseSource):
    """Noise taken from another prepared (clean) dataset's training tokens."""

    def __init__(self, folder: Path, seed: int):
        from noisecli.what.tokens import open_tokens, read_meta
        meta = read_meta(folder)
        if meta.get("alpha", 0) != 0:
            raise InputError(f"--noise-from {folder}: that dataset already holds noise "
                             f"(alpha={meta['alpha']}); prepare it with --alpha 0")
        self.tokens = open_tokens(folder / "train.bin")
        self.capacity = len(self.tokens)
        self.pos = int(_rng(seed, 3).integers(0, self.capacity))
        self.dist, self.seed = "tokens", seed
        self.params = {"dist": "tokens", "from": str(folder.resolve()), "from_source": meta.get("source"),
                       "from_train_sha256": meta.get("sha256", {}).get("train.bin"), "start": self.pos,
                       "how": "consecutive tokens from a seeded random start, wrapping around"}

    def draw(self, n: int) -> np.ndarray:
        idx = (self.pos + np.arange(n, dtype=np.int64)) % self.capacity
        self.pos = int((self.pos + n) % self.capacity)
        return np.asarray(self.tokens[idx], dtype=np.uint16)


def probabilities(params: dict) -> np.ndarray | None:
    """The exact probability of every id in [0, 50256) under the noise described by `params` (a
    `NoiseSource.params`, as meta.json records it), computed from the distribution itself, not from a
    sample; None for noise taken from another corpus, which has no closed form.
      uniform   1/50256 each
      random    the weights (base 1, ids 0..1000 ×3, the recorded spike ids ×50), normalised
      gaussian  round(N(μ, σ)) redrawn outside [0, 50256): P(i) ∝ Φ((i+½−μ)/σ) − Φ((i−½−μ)/σ)"""
    dist = params.get("dist")
    if dist == "uniform":
        return np.full(NOISE_IDS, 1.0 / NOISE_IDS)
    if dist == "random":
        w = np.full(NOISE_IDS, float(params.get("base_weight", 1.0)))
        lo, hi = params.get("low_ids", [0, RANDOM_LOW_IDS - 1])
        w[lo:hi + 1] = params.get("low_weight", RANDOM_LOW_WEIGHT)
        w[np.asarray(params["spike_ids"], dtype=np.int64)] = params.get("spike_weight", RANDOM_SPIKE_WEIGHT)
        return w / w.sum()
    if dist == "gaussian":
        from scipy.special import ndtr
        mean, std = float(params["mean"]), float(params["std"])
        edges = (np.arange(NOISE_IDS + 1) - 0.5 - mean) / std
        # the mass of each unit interval, from whichever tail keeps it accurate
        mass = np.where(edges[1:] <= 0, ndtr(edges[1:]) - ndtr(edges[:-1]), ndtr(-edges[:-1]) - ndtr(-edges[1:]))
        return mass / mass.sum()
    return None


def entropy(params: dict) -> float | None:
    """The exact entropy (nats) of the noise distribution: the lowest mean loss any model can reach on
    i.i.d. draws from it. ln 50256 for uniform noise; None where there is no closed form."""
    p = probabilities(params)
    if p is None:
        return None
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def noise_source(dist: str, seed: int, mean: float, std: float, noise_from: Path | None) -> NoiseSource:
    if noise_from is not None:
        return TokenFileNoise(Path(noise_from), seed)
    return NoiseSource(dist, seed, mean, std)
