"""Uncertainty for the findings: bootstrap intervals over scored windows, and paired comparisons over seeds.

A loss is a mean over windows of tokens (eval-ntp's `windows.safetensors`), so its uncertainty is that
of the windows: resample them with replacement (percentile bootstrap, fixed seed). Two models scored on
the same file are compared window by window (paired); scores on different files are resampled apart.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP = 2000
LEVEL = 0.95


def _means(sums: np.ndarray, counts: np.ndarray, idx: np.ndarray) -> np.ndarray:
    return sums[idx].sum(axis=1) / counts[idx].sum(axis=1)


def _interval(values: np.ndarray) -> tuple[float, float]:
    lo, hi = np.quantile(values, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
    return float(lo), float(hi)


def loss_interval(w: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """Mean loss of windows w = [n, 2] (summed NLL, tokens) and its 95 % bootstrap interval."""
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(w), size=(BOOTSTRAP, len(w)))
    return float(w[:, 0].sum() / w[:, 1].sum()), *_interval(_means(w[:, 0], w[:, 1], idx))


def paired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """loss(a) − loss(b) for two models scored on the same windows, with a 95 % paired bootstrap interval."""
    if a.shape != b.shape or not np.array_equal(a[:, 1], b[:, 1]):
        raise ValueError("paired windows must be the same windows")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    diffs = _means(a[:, 0], a[:, 1], idx) - _means(b[:, 0], a[:, 1], idx)
    return float((a[:, 0].sum() - b[:, 0].sum()) / a[:, 1].sum()), *_interval(diffs)


def unpaired_difference(a: np.ndarray, b: np.ndarray, seed: int = 0) -> tuple[float, float, float]:
    """loss(a) − loss(b) for scores on different files, windows resampled independently."""
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    ib = rng.integers(0, len(b), size=(BOOTSTRAP, len(b)))
    diffs = _means(a[:, 0], a[:, 1], ia) - _means(b[:, 0], b[:, 1], ib)
    return float(a[:, 0].sum() / a[:, 1].sum() - b[:, 0].sum() / b[:, 1].sum()), *_interval(diffs)


def paired_seeds(gains: list[float]) -> dict:
    """Mean ± standard error of per-seed paired gains (same seed: same initialisation and batches),
    and wins / ties / losses."""
    g = np.asarray(gains, dtype=np.float64)
    se = float(g.std(ddof=1) / math.sqrt(len(g))) if len(g) > 1 else None
    return {"mean": float(g.mean()), "se": se, "n": int(len(g)), "wins": int((g > 0).sum()),
            "ties": int((g == 0).sum()), "losses": int((g < 0).sum())}


def unigram_cross_entropy(train_counts: np.ndarray, val_counts: np.ndarray) -> float:
    """Cross-entropy (nats) of the validation tokens under add-one smoothed training token frequencies
    (both given as per-id counts): what a model that learned token frequencies and nothing about context
    would score."""
    p = (np.asarray(train_counts, np.float64) + 1.0) / (np.sum(train_counts) + len(train_counts))
    v = np.asarray(val_counts, np.float64)
    return float(-(v * np.log(p)).sum() / v.sum())


def paired_contrast(terms: list[tuple[float, np.ndarray]], seed: int = 0) -> tuple[float, float, float]:
    """Σ cᵢ·loss(wᵢ) for window arrays scored on the same windows (the same token counts), with its 95 %
    paired bootstrap interval: e.g. a gap's change between two checkpoints,
    (noisy − clean) at the last minus (noisy − clean) at the first."""
    counts = terms[0][1][:, 1]
    if any(w.shape != terms[0][1].shape or not np.array_equal(w[:, 1], counts) for _, w in terms):
        raise ValueError("a paired contrast needs the same windows in every term")
    sums = sum(c * w[:, 0] for c, w in terms)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(counts), size=(BOOTSTRAP, len(counts)))
    return float(sums.sum() / counts.sum()), *_interval(_means(sums, counts, idx))


def t_quantile(dof: int) -> float:
    """The two-sided 95 % quantile of Student's t with `dof` degrees of freedom (12.71 at 1, 4.30 at 2)."""
    from scipy.stats import t
    return float(t.ppf((1 + LEVEL) / 2, dof))


def seed_half_width(spread: float, dof: int, n_a: int, n_b: int) -> float:
    """Half-width of the 95 % t-interval of a difference of two means over training seeds, mean(a) − mean(b)
    with n_a and n_b seeds, given the seed-to-seed standard deviation `spread` (estimated with `dof` degrees
    of freedom, from the clean configuration's seeds): t · s · √(1/n_a + 1/n_b)."""
    return t_quantile(dof) * spread * math.sqrt(1 / n_a + 1 / n_b)


def combine(value: float, lo: float, hi: float, seed_hw: float) -> tuple[float, float]:
    """A 95 % interval for `value` that holds both the scored windows' uncertainty (bootstrap [lo, hi]) and
    the training seeds' (± seed_hw): the two half-widths added in quadrature, as for independent errors."""
    down, up = value - lo, hi - value
    return value - math.hypot(down, seed_hw), value + math.hypot(up, seed_hw)


def paired_resamples(ws: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """[BOOTSTRAP, len(ws)]: the mean loss of each window array over the same resampled windows (arrays
    scored on the same windows), for intervals of any function of several losses."""
    n = len(ws[0])
    idx = np.random.default_rng(seed).integers(0, n, size=(BOOTSTRAP, n))
    return np.stack([_means(w[:, 0], w[:, 1], idx) for w in ws], 1)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of bootstrap replicates (finite ones)."""
    return _interval(values[np.isfinite(values)])
