"""`noisecli.core.stats` and the findings' decision rules, on constructed windows with known answers."""

import numpy as np
import pytest

from noisecli.core import stats


def _windows(losses, tokens=128):
    losses = np.asarray(losses, dtype=np.float64)
    return np.column_stack([losses * tokens, np.full(len(losses), tokens, np.float64)])


def test_paired_difference_sees_a_shift_that_unpaired_resampling_hides():
    rng = np.random.default_rng(0)
    base = rng.normal(5.0, 0.5, 400)               # windows differ a lot from each other ...
    a, b = _windows(base + 0.01), _windows(base)   # ... but one model is 0.01 worse on every one
    d, lo, hi = stats.paired_difference(a, b)
    assert d == pytest.approx(0.01) and lo == pytest.approx(0.01) and hi == pytest.approx(0.01)
    d2, lo2, hi2 = stats.unpaired_difference(a, b)
    assert d2 == pytest.approx(0.01) and lo2 < 0 < hi2   # inside the spread of the windows
    with pytest.raises(ValueError):
        stats.paired_difference(a[:-1], b)


def test_loss_interval_covers_the_mean():
    w = _windows(np.random.default_rng(1).normal(3.0, 0.2, 200))
    m, lo, hi = stats.loss_interval(w)
    assert lo < m < hi and hi - lo < 0.1


def test_paired_seeds_counts_and_standard_error():
    s = stats.paired_seeds([1.0, -1.0, 0.0, 2.0])
    assert (s["wins"], s["ties"], s["losses"]) == (2, 1, 1) and s["mean"] == pytest.approx(0.5)
    assert s["se"] == pytest.approx(np.std([1, -1, 0, 2], ddof=1) / 2)


def test_unigram_cross_entropy_by_hand():
    # train counts + 1 over a vocabulary of 3: [3, 1, 2] / 6; val tokens 0, 2
    ce = stats.unigram_cross_entropy(np.bincount([0, 0, 2], minlength=3), np.bincount([0, 2], minlength=3))
    assert ce == pytest.approx(-(np.log(3 / 6) + np.log(2 / 6)) / 2)


