"""The report's findings: one small function per claim of the paper (what.py, why.py, how.py), each over
the shared `Evidence` and returning a `Finding` judged by the one rule in base.py, whose docstring states
the rules. A new finding is one function added to FINDINGS, with its cases in tests/test_findings.py."""

from __future__ import annotations

from pathlib import Path

from noisecli.paper.evidence import Evidence
from noisecli.paper.findings.base import STATUSES, Finding, _rise_status, judge, worst
from noisecli.paper.findings.how import gaussian_downstream, lgm_gain, table4
from noisecli.paper.findings.what import (
    gaussian_vs_random,
    loss_gap_trend,
    loss_on_noise,
    loss_rise,
    multilingual,
    other_corpora,
    table9,
)
from noisecli.paper.findings.why import k_large, proposition1

FINDINGS = [loss_rise, loss_gap_trend, loss_on_noise, gaussian_vs_random, other_corpora, k_large, proposition1,
            multilingual, gaussian_downstream, lgm_gain, table9, table4]
__all__ = ["FINDINGS", "STATUSES", "Finding", "findings", "judge", "worst", "_rise_status", *[f.__name__ for f in FINDINGS]]


def findings(out: Path) -> tuple[list[Finding], Evidence]:
    """Every finding the stage outputs under `out` support, in the report's order; past the gate only."""
    e = Evidence(Path(out))
    items = [f for f in (fn(e) for fn in FINDINGS) if f is not None]
    if e.gate() is not None:
        for f in items:
            if f.gated:
                f.status = "not decidable"
    return items, e
