"""The paper's "Why": Proposition 1, the f(ε) curve, k from checkpoints, and Lemma 1 on real data.

Setting (the paper's §4): a model trained on the mixture Pᵐ = (1−α)·Pᶜ + α·Pⁿ assigns probability p_c
to the clean data's next tokens and p_n to the noise's. Moving probability mass ε from clean to noise
lowers p_c by ε and raises p_n by ε/k (k ≥ 1 when the noise is spread over many tokens). The change of
the mixed log-likelihood is

    f(ε) = (1−α)·log((p_c−ε)/p_c) + α·log((p_n+ε/k)/p_n),      maximised at ε = η = α·p_c − (1−α)·k·p_n.

Proposition 1: (1) if α ≤ k·p_n/(p_c + k·p_n) (η ≤ 0) the optimum on Pᵐ is the clean optimum;
(2) otherwise any 0 < ε < η lowers the mixed loss, so the optimum moves to ε* = η > 0; (3) ε ≥ 3η cannot
be optimal when α < 1/3, nor ε ≥ 2η when α > 1/2. The clean loss then rises from −log p_c to at most
−log(p_c − m·η) (m = 3 or 2), and to −log(p_c − η) at the optimum of f.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from noisecli.errors import InputError


def _check(alpha: float, pc: float, pn: float, k: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    for name, p in (("p_c", pc), ("p_n", pn)):
        if not 0 < p <= 1:
            raise InputError(f"{name} must be in (0, 1], got {p}")
    if not k > 0:
        raise InputError(f"--k must be > 0, got {k}")


def probability(loss: float) -> float:
    """Per-token probability that corresponds to a cross-entropy loss: p = exp(−L)."""
    if not loss >= 0:
        raise InputError(f"a loss must be >= 0, got {loss}")
    return math.exp(-loss)


def eta(alpha: float, pc: float, pn: float, k: float) -> float:
    return alpha * pc - (1 - alpha) * k * pn


def threshold(pc: float, pn: float, k: float) -> float:
    return k * pn / (pc + k * pn)


def f(eps: float, alpha: float, pc: float, pn: float, k: float) -> float:
    """Gain in mixed log-likelihood from moving ε of probability from clean to noise tokens."""
    return (1 - alpha) * math.log((pc - eps) / pc) + alpha * math.log((pn + eps / k) / pn)


def bound_multiplier(alpha: float) -> int | None:
    """m such that ε ≥ m·η cannot be optimal (Proposition 1 (3)); None where it says nothing."""
    return 3 if alpha < 1 / 3 else 2 if alpha > 1 / 2 else None


def _clean_loss(pc: float, eps: float) -> float | None:
    return -math.log(pc - eps) if pc - eps > 0 else None


@dataclass
class Prop1:
    alpha: float
    p_c: float
    p_n: float
    k: float
    eta: float
    threshold: float
    regime: int                 # 1: unaffected, 2: shifted by at most the bound
    conclusion: str
    bound_multiplier: int | None
    clean_loss: float           # −log p_c
    clean_loss_at_eta: float | None
    clean_loss_bound: float | None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def proposition1(alpha: float, pc: float, pn: float, k: float) -> Prop1:
    _check(alpha, pc, pn, k)
    e, th, m = eta(alpha, pc, pn, k), threshold(pc, pn, k), bound_multiplier(alpha)
    if alpha <= th:
        regime, text = 1, (f"(1) α = {alpha:g} ≤ threshold {th:.4g}: η = {e:.4g} ≤ 0, the optimum on the "
                           "mixture is the clean optimum; the noise does not change the clean loss.")
        at_eta = bound = -math.log(pc)
    else:
        at_eta = _clean_loss(pc, e)
        bound = _clean_loss(pc, m * e) if m else None
        regime = 2
        text = (f"(2) α = {alpha:g} > threshold {th:.4g}: η = {e:.4g} > 0, any 0 < ε < η lowers the mixed "
                f"loss, so the optimum moves mass ε* = η from clean to noise tokens; ")
        text += (f"(3) since α {'< 1/3' if m == 3 else '> 1/2'}, ε ≥ {m}η cannot be optimal, so the clean "
                 f"loss rises at most from {-math.log(pc):.4f} to "
                 f"{bound:.4f}." if m and bound is not None else
                 "(3) gives no bound for 1/3 ≤ α ≤ 1/2." if not m else
                 f"(3) ε ≥ {m}η cannot be optimal, but {m}η ≥ p_c: no finite bound on the clean loss.")
    return Prop1(alpha, pc, pn, k, e, th, regime, text, m, -math.log(pc), at_eta, bound)


def curve(alpha: float, pc: float, pn: float, k: float, points: int = 400) -> list[tuple[float, float]]:
    """f(ε) on a grid over (0, p_c)."""
    _check(alpha, pc, pn, k)
    return [(eps, f(eps, alpha, pc, pn, k)) for eps in (pc * i / (points + 1) for i in range(1, points + 1))]


def k_from_losses(clean_on_clean: float, noisy_on_clean: float, noisy_on_noise: float,
                  clean_on_noise: float) -> tuple[float | None, float, float]:
    """Appendix B.3: ε = e^(−L_c(h*)) − e^(−L_c(h)), ε/k = e^(−L_n(h)) − e^(−L_n(h*)); k = ε / (ε/k).
    h* is the clean model, h the noisy one. k is None (undefined) when the noisy model is no better on
    the noise (ε/k ≤ 0). Returns (k, ε, ε/k)."""
    e = math.exp(-clean_on_clean) - math.exp(-noisy_on_clean)
    e_over_k = math.exp(-noisy_on_noise) - math.exp(-clean_on_noise)
    return (e / e_over_k if e_over_k > 0 else None), e, e_over_k
