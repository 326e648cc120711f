"""The paper's spiky "random" noise (its Figure 8(b)): uniform base weight 1, ids 0..1000 weight 3,
and 100 ids drawn at random (from the seed) with weight 50; probabilities = weights / sum."""

from __future__ import annotations

import numpy as np

from noisecli.what.noise import NOISES
from noisecli.what.noise.base import DRAW_CHUNK, NOISE_IDS, Noise, NoiseOptions

SPIKES = 100          # how many ids get a boosted frequency
SPIKE_WEIGHT = 50.0
LOW_IDS = 1001        # ids 0..1000 ...
LOW_WEIGHT = 3.0      # ... are this many times as frequent as the rest


def spike_ids(seed: int) -> np.ndarray:
    """The boosted ids of this seed, sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    return np.sort(rng.choice(NOISE_IDS, size=SPIKES, replace=False))


@NOISES.register("random",
                 "the paper's spiky noise: weight 1 everywhere, ids 0..1000 weight 3, 100 seeded random ids "
                 "weight 50")
class Random(Noise):
    def __init__(self, seed: int, options: NoiseOptions):
        super().__init__(seed, options)
        spikes = spike_ids(seed)
        # Sampled exactly as a mixture: uniform over all ids (weight 1 each), uniform over the low ids
        # (extra weight 2 each), and the spikes (the rest of their weight, 47 or 49 each).
        low_extra = LOW_IDS * (LOW_WEIGHT - 1)
        spike_extra = SPIKE_WEIGHT - 1 - (LOW_WEIGHT - 1) * (spikes < LOW_IDS)
        self.spikes, self.spike_cdf = spikes, np.cumsum(spike_extra) / spike_extra.sum()
        self.mix_cdf = np.cumsum([NOISE_IDS, low_extra, spike_extra.sum()]) / (
            NOISE_IDS + low_extra + spike_extra.sum())
        self.params.update(base_weight=1.0, low_ids=[0, LOW_IDS - 1], low_weight=LOW_WEIGHT,
                           n_spikes=SPIKES, spike_weight=SPIKE_WEIGHT, spike_ids=spikes.tolist())
        probs = self.probabilities(self.params)
        self.params.update(spike_mass=float(probs[spikes].sum()), low_ids_mass=float(probs[:LOW_IDS].sum()))

    def chunk(self, j: int) -> np.ndarray:
        rng = self.rng(2, j)
        component = np.searchsorted(self.mix_cdf, rng.random(DRAW_CHUNK), side="right")
        out = rng.integers(0, NOISE_IDS, size=DRAW_CHUNK)
        low = component == 1
        out[low] = rng.integers(0, LOW_IDS, size=int(low.sum()))
        spike = component >= 2
        which = np.searchsorted(self.spike_cdf, rng.random(int(spike.sum())), side="right")
        out[spike] = self.spikes[np.minimum(which, len(self.spikes) - 1)]
        return out.astype(np.uint16)

    @classmethod
    def probabilities(cls, params: dict) -> np.ndarray:
        """The weights (base 1, ids 0..1000 ×3, the recorded spike ids ×50), normalised."""
        w = np.full(NOISE_IDS, float(params.get("base_weight", 1.0)))
        lo, hi = params.get("low_ids", [0, LOW_IDS - 1])
        w[lo:hi + 1] = params.get("low_weight", LOW_WEIGHT)
        w[np.asarray(params["spike_ids"], dtype=np.int64)] = params.get("spike_weight", SPIKE_WEIGHT)
        return w / w.sum()
