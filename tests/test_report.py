"""The report's verdict rules (paper/report.py): the paper's criteria applied with their uncertainty."""

import pytest

from noisecli.paper import report


@pytest.mark.parametrize("lo, hi, noise, expected", [
    (-0.001, 0.002, False, "within noise"),      # the interval holds 0
    (0.001, 0.002, True, "within noise"),        # smaller than the seed-to-seed difference
    (0.001, 0.004, False, "agrees"),             # at most α/10 = 0.5 % of a 1-nat loss
    (0.006, 0.009, False, "disagrees"),          # clearly above α/10
    (0.004, 0.007, False, "not decidable"),      # the interval straddles α/10
    (-0.009, -0.006, False, "disagrees"),        # clearly better than clean: not the paper's claim
])
def test_rise_rule_is_the_papers_alpha_over_ten(lo, hi, noise, expected):
    r = {"alpha": 0.05, "rise": (lo + hi) / 2, "lo": lo, "hi": hi, "relative": (lo + hi) / 2,
         "rel_lo": lo, "rel_hi": hi, "within_noise": noise or lo <= 0 <= hi}
    assert report._rise_status(r) == expected


def test_the_worst_status_wins():
    assert report._worst(["agrees", "within noise"]) == "within noise"
    assert report._worst(["agrees", "disagrees", "not decidable"]) == "disagrees"
    assert report._worst([]) == "not decidable"
