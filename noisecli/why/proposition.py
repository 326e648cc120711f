"""The paper's "Why" as mathematics: Proposition 1, f(ε), k from losses, and the predicted loss rise (the
commands that apply them to runs and data are why/theory.py).

Setting (the paper's §3.3, Proposition 1; proofs in Appendix B): a model trained on the mixture Pᵐ = (1−α)·Pᶜ + α·Pⁿ assigns probability p_c
to the clean data's next tokens and p_n to the noise's. Moving probability mass ε from clean to noise
lowers p_c by ε and raises p_n by ε/k (k ≥ 1 when the noise is spread over many tokens). The change of
the mixed log-likelihood is

    f(ε) = (1−α)·log((p_c−ε)/p_c) + α·log((p_n+ε/k)/p_n),      maximised at ε = η = α·p_c − (1−α)·k·p_n.

Proposition 1 (§3.3, proof in Appendix B.2), each conclusion with its own conditions:
  (1) α ≤ k·p_n/(p_c + k·p_n) (η ≤ 0): the optimum on Pᵐ is the clean optimum;
  (2) α > k·p_n/(p_c + k·p_n) (η > 0): any 0 < ε < η lowers the mixed loss, so the optimum moves;
  (3) α < 1/3 and k > α(1−3α)p_c/((1−α)(2−3α)p_n): ε ≥ 3η cannot be optimal; α > max(threshold, 1/2) and
      k > (2α−1)p_c/(2(1−α)p_n): ε ≥ 2η cannot be optimal. The clean loss then rises at most from −log p_c
      to −log(p_c − m·η). Where these conditions on k fail, (3) gives no bound, and none is reported.
k must be finite and > 0; k ≤ 0 (the noisy model no better on the noise) is reported as undefined.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from noisecli.core.errors import InputError


def _check(alpha: float, pc: float, pn: float, k: float) -> None:
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {alpha}")
    for name, p in (("p_c", pc), ("p_n", pn)):
        if not 0 < p <= 1:
            raise InputError(f"{name} must be in (0, 1], got {p}")
    if not (k > 0 and math.isfinite(k)):
        raise InputError(f"--k must be a finite number > 0, got {k} (k ≤ 0 means k is undefined: the noisy "
                         "model is no better on the noise, and Proposition 1 does not apply)")


def probability(loss: float) -> float:
    """Per-token probability that corresponds to a cross-entropy loss: p = exp(−L)."""
    if not (loss >= 0 and math.isfinite(loss)):
        raise InputError(f"a loss must be a finite number >= 0, got {loss}")
    return math.exp(-loss)


def eta(alpha: float, pc: float, pn: float, k: float) -> float:
    return alpha * pc - (1 - alpha) * k * pn


def threshold(pc: float, pn: float, k: float) -> float:
    return k * pn / (pc + k * pn)


def f(eps: float, alpha: float, pc: float, pn: float, k: float) -> float:
    """Gain in mixed log-likelihood from moving ε of probability from clean to noise tokens (Eq. 17)."""
    return (1 - alpha) * math.log((pc - eps) / pc) + alpha * math.log((pn + eps / k) / pn)


def k_needed(alpha: float, pc: float, pn: float) -> tuple[int, float] | None:
    """Conclusion (3)'s condition on k, as (m, k_min): ε ≥ m·η cannot be optimal when k > k_min.
    α < 1/3: m = 3, k_min = α(1−3α)p_c / ((1−α)(2−3α)p_n); α > 1/2: m = 2, k_min = (2α−1)p_c / (2(1−α)p_n)
    (Proposition 1 (3), proof in Appendix B.2). None for 1/3 ≤ α ≤ 1/2, where (3) says nothing."""
    if alpha < 1 / 3:
        return 3, alpha * (1 - 3 * alpha) * pc / ((1 - alpha) * (2 - 3 * alpha) * pn)
    if alpha > 1 / 2:
        return 2, (2 * alpha - 1) * pc / (2 * (1 - alpha) * pn)
    return None


def _clean_loss(pc: float, eps: float) -> float | None:
    return -math.log(pc - eps) if pc - eps > 0 else None


@dataclass
class Conclusion:
    """One of Proposition 1's conclusions: its conditions, whether they hold here, and what follows."""
    number: str                 # "1", "2" or "3"
    conditions: str             # the paper's conditions, with the numbers put in
    holds: bool                 # all conditions hold
    statement: str | None       # what follows (None when the conditions fail: nothing is concluded)


@dataclass
class Prop1:
    alpha: float
    p_c: float
    p_n: float
    k: float
    eta: float
    threshold: float
    regime: int                 # 1: η ≤ 0, conclusion (1); 2: η > 0, conclusion (2)
    conclusions: list[Conclusion]
    conclusion: str             # the statements of the conclusions that hold, in order
    bound_multiplier: int | None  # m of conclusion (3) where its conditions hold, else None
    k_min_for_3: float | None   # conclusion (3)'s lower bound on k (None for 1/3 ≤ α ≤ 1/2)
    f_at_m_eta: float | None    # f(m·η), < 0 where (3) holds
    clean_loss: float           # −log p_c
    clean_loss_at_eta: float | None   # −log(p_c − η) in regime 2: the clean loss at the optimum of f
    clean_loss_bound: float | None    # regime 1: −log p_c; regime 2: −log(p_c − m·η) where (3) holds

    def as_dict(self) -> dict:
        d = dict(self.__dict__)
        d["conclusions"] = [dict(c.__dict__) for c in self.conclusions]
        return d


def proposition1(alpha: float, pc: float, pn: float, k: float) -> Prop1:
    """Proposition 1 (§3.3; proof in Appendix B.2), each conclusion only where its conditions hold."""
    _check(alpha, pc, pn, k)
    e, th = eta(alpha, pc, pn, k), threshold(pc, pn, k)
    lc = -math.log(pc)
    c1 = Conclusion("1", f"α = {alpha:g} ≤ kp_n/(p_c + kp_n) = {th:.4g} (η = {e:.4g} ≤ 0)", alpha <= th, None)
    if c1.holds:
        c1.statement = ("for any 0 < ε < p_c the mixed loss does not go below the clean model's: the optimum on "
                        "the mixture is the clean optimum, and the noise does not change the clean loss.")
    c2 = Conclusion("2", f"α = {alpha:g} > kp_n/(p_c + kp_n) = {th:.4g} (η = {e:.4g} > 0)", alpha > th, None)
    at_eta = _clean_loss(pc, e) if c2.holds else None
    if c2.holds:
        c2.statement = (f"any 0 < ε < η lowers the mixed loss, so the optimum moves mass from clean to noise "
                        f"tokens; at ε = η the clean loss is {at_eta:.4f} (from {lc:.4f}).")
    need = k_needed(alpha, pc, pn)
    m = k_min = f_m = bound = None
    if need is None:
        c3 = Conclusion("3", f"α < 1/3, or α > 1/2 (here α = {alpha:g})", False, None)
    else:
        m, k_min = need
        cond = (f"α = {alpha:g} < 1/3 and k = {k:.4g} > α(1−3α)p_c/((1−α)(2−3α)p_n) = {k_min:.4g}" if m == 3 else
                f"α = {alpha:g} > max(kp_n/(p_c + kp_n), 1/2) and k = {k:.4g} > (2α−1)p_c/(2(1−α)p_n) = {k_min:.4g}")
        ok = c2.holds and k > k_min and m * e < pc
        f_m = f(m * e, alpha, pc, pn, k) if c2.holds and m * e < pc else None
        ok = ok and f_m is not None and f_m < 0   # the proof's f(mη) ≤ 0, checked on the numbers themselves
        c3 = Conclusion("3", cond + " (and η > 0)", ok, None)
        if ok:
            bound = _clean_loss(pc, m * e)
            c3.statement = (f"ε ≥ {m}η cannot be optimal (f({m}η) = {f_m:.3g} < 0), so the clean loss rises at "
                            f"most from {lc:.4f} to {bound:.4f}.")
    if c1.holds:
        bound = lc
    conclusions = [c1, c2, c3]
    text = " ".join(f"({c.number}) {c.statement}" for c in conclusions if c.holds)
    if c2.holds and not c3.holds:
        text += f" (3) does not apply: its conditions fail ({c3.conditions}); it gives no bound here."
    return Prop1(alpha, pc, pn, k, e, th, 1 if c1.holds else 2, conclusions, text,
                 m if c3.holds else None, k_min, f_m, lc, at_eta, bound)


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


def k_table(rows: list[dict]) -> dict:
    """k per row of losses (Lc_clean, Lc_noisy, Ln_noisy, Ln_clean), as `theory k` reports it."""
    for r in rows:
        k, e, ek = k_from_losses(r["Lc_clean"], r["Lc_noisy"], r["Ln_noisy"], r["Ln_clean"])
        r.update(k=k, epsilon=e, epsilon_over_k=ek,
                 note=None if k is not None else "undefined: the noisy model is no better on the noise")
    return {"rows": rows, "formula": "k = ε / (ε/k), ε = e^(−L_c(h*)) − e^(−L_c(h)), "
                                     "ε/k = e^(−L_n(h)) − e^(−L_n(h*)) (Appendix B.3)"}


def predict_from_losses(row: dict, alpha: float, k: float | None = None) -> dict:
    """Proposition 1's prediction from one row of paired losses (Lc_clean, Lc_noisy, Ln_noisy, Ln_clean)
    beside the measured rise; k is estimated from the row unless given. Where k cannot be estimated
    (undefined or not positive) nothing is predicted: k is reported as undefined."""
    k_est = k_from_losses(row["Lc_clean"], row["Lc_noisy"], row["Ln_noisy"], row["Ln_clean"])[0]
    result: dict = {"alpha": alpha, "iter": row["iter"], "measured_rise": row["Lc_noisy"] - row["Lc_clean"],
                    "k_estimated": k_est if k_est is not None and k_est > 0 else None}
    if k is None:
        if k_est is None or not k_est > 0:
            result.update(k=None, k_note="undefined: the noisy model is no better on the noise than the clean "
                          "model at this checkpoint, so Proposition 1 predicts nothing", regime=None,
                          conclusions=[], conclusion="k undefined: no prediction", clean_loss=row["Lc_clean"],
                          predicted_rise_at_eta=None, predicted_rise_bound=None)
            return result
        k = k_est
    return predicted_rise(result, alpha, row["Lc_clean"], probability(row["Ln_clean"]), k)


def predicted_rise(result: dict, alpha: float, lc: float, pn: float, k: float) -> dict:
    p = proposition1(alpha, probability(lc), pn, k)
    result.update(k=k, p_c=p.p_c, p_n=p.p_n, eta=p.eta, regime=p.regime, clean_loss=lc,
                  k_min_for_3=p.k_min_for_3, bound_multiplier=p.bound_multiplier,
                  conclusions=p.as_dict()["conclusions"],
                  predicted_rise_at_eta=(p.clean_loss_at_eta - lc) if p.clean_loss_at_eta is not None else None,
                  predicted_rise_bound=(p.clean_loss_bound - lc) if p.clean_loss_bound is not None else None,
                  conclusion=p.conclusion)
    return result
