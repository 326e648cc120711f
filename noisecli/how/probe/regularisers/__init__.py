"""The probe's training regularisers, one file each, registered in REGULARISERS: `none` (plain CE),
`lgm` (Local Gradient Matching, the paper's Eq. 4-6) and the ablations of its Table 5 (`gradnorm`,
`cosine`, `l2`). Each gives L = L_ce + λ·L_reg for stacked heads; a new one is one `Regulariser`
subclass in one new file here, and the contract tests (tests/test_regularisers.py) check its fast form
against its plain float64 definition by double backprop, for every registered head.
"""

from __future__ import annotations

from noisecli.core.registry import Registry

REGULARISERS = Registry("regulariser", __name__)


def make_regulariser(name: str):
    return REGULARISERS.get(name)()
