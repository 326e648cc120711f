"""The paper's "Why": Proposition 1, the f(ε) curve, k from checkpoints, and Lemma 1 on real data.

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
from pathlib import Path

from noisecli.core.errors import InputError, warn
from noisecli.core.manifest import check_output, read_manifest, sha256_file, write_text
from noisecli.core.options import opt
from noisecli.core.progress import Reporter
from noisecli.what.noise import NOISE_IDS


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


# ---------------------------------------------------------------------------------------------------
# The `noisecli theory ...` commands: each returns a JSON-ready dict; the CLI prints it as a table or,
# with --json, as JSON; --out writes it (and a CSV or PNG where there is one).


def _probabilities(pc, pn, loss_clean, loss_noise) -> tuple[float, float]:
    if (pc is None) == (loss_clean is None) or (pn is None) == (loss_noise is None):
        raise InputError("give the clean and noise probabilities (--pc, --pn) or losses "
                         "(--loss-clean, --loss-noise), one of each")
    return (pc if pc is not None else probability(loss_clean)), (pn if pn is not None else probability(loss_noise))


@dataclass
class Prop1Config:
    alpha: float = opt(0.1, "Noise proportion α in (0, 1).")
    pc: float | None = opt(None, "Probability p_c the model gives the clean data's next tokens (0, 1].")
    pn: float | None = opt(None, "Probability p_n the model gives the noise's next tokens (0, 1].")
    loss_clean: float | None = opt(None, "Instead of --pc: the loss on clean data (p_c = e^−L).")
    loss_noise: float | None = opt(None, "Instead of --pn: the loss on the noise (p_n = e^−L).")
    k: float = opt(1.0, "Ratio k: moving ε of mass off clean tokens raises p_n by ε/k (finite, > 0; "
                   "conclusion (3) also needs k above a bound that depends on α, p_c and p_n).")
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Also write the result to this JSON file.")


def run_prop1(cfg: Prop1Config) -> dict:
    if cfg.out is not None:
        check_output(cfg.out, file=True)
    pc, pn = _probabilities(cfg.pc, cfg.pn, cfg.loss_clean, cfg.loss_noise)
    return proposition1(cfg.alpha, pc, pn, cfg.k).as_dict()


@dataclass
class CurveConfig(Prop1Config):
    out: Path | None = opt(None, "CSV file to write, columns epsilon,f (required).")
    figure: Path | None = opt(None, "PNG file: f(ε) with η, 2η and 3η marked (Figures 7(b) and 9). (Elsewhere "
                              "--plot is a switch that draws a stage's figures into its --out.)")
    points: int = opt(400, "Number of ε values over (0, p_c).")


def run_curve(cfg: CurveConfig) -> dict:
    if cfg.out is None:
        raise InputError("--out FILE.csv is required")
    p = run_prop1(cfg)
    pts = curve(cfg.alpha, p["p_c"], p["p_n"], cfg.k, cfg.points)
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    write_text(cfg.out, "epsilon,f\n" + "".join(f"{e!r},{v!r}\n" for e, v in pts))
    if cfg.figure:
        from noisecli.core.plots import f_curve
        f_curve(pts, p, Path(cfg.figure))
    best = max(pts, key=lambda t: t[1])
    return {**p, "points": len(pts), "argmax_on_grid": best[0], "max_f": best[1], "csv": str(cfg.out),
            "figure": str(cfg.figure) if cfg.figure else None}


@dataclass
class KConfig:
    clean: Path | None = opt(None, "The clean run (α = 0): h*.")
    noisy: Path | None = opt(None, "The noisy run: h. Its dataset gives the clean validation set and the noise.")
    max_tokens: int | None = opt(200_000, "Score at most this many tokens of each file.")
    device: str = opt("auto", "cpu, cuda or auto.")
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Folder for k.json, k.csv and k.png (Figure 7(a)).")


def paired_losses(clean: Path, noisy: Path, max_tokens: int | None, device: str,
                  last_only: bool = False) -> list[dict]:
    """L_c and L_n of the clean and the noisy run's checkpoints at their common iterations (or only the
    newest common one)."""
    from noisecli.training import checkpoint
    from noisecli.training.distributed import pick_device
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.tokens import open_tokens
    if clean is None or noisy is None:
        raise InputError("give both --clean RUN and --noisy RUN")
    runs = {}
    for name, run in (("clean", Path(clean)), ("noisy", Path(noisy))):
        ckpts = checkpoint.list_checkpoints(run)
        if not ckpts:
            raise InputError(f"{run} is not a run folder with checkpoints")
        runs[name] = dict(ckpts)
    common = sorted(set(runs["clean"]) & set(runs["noisy"]))
    if not common:
        raise InputError("the two runs have no checkpoint at a common iteration")
    common = common[-1:] if last_only else common
    data = Path(read_manifest(Path(noisy) / "run.json", ("data",))["data"])
    files = {"c": open_tokens(data / "val.bin"), "n": open_tokens(data / "noise.bin")}
    files = {k: v[:max_tokens] if max_tokens else v for k, v in files.items()}
    dev = pick_device(device)
    rows = []
    with Reporter("score checkpoints", total=len(common) * 2 * sum(map(len, files.values())),
                  unit="tokens") as progress:
        for it in common:
            row = {"iter": it}
            for name in ("clean", "noisy"):
                model, _ = checkpoint.load_checkpoint(runs[name][it], dev)
                for which, tokens in files.items():
                    row[f"L{which}_{name}"] = token_file_loss(model, tokens, 8, dev, progress=progress)[0]
            rows.append(row)
    return rows


def run_k(cfg: KConfig) -> dict:
    if cfg.out is not None:
        check_output(cfg.out)
    result = k_table(paired_losses(cfg.clean, cfg.noisy, cfg.max_tokens, cfg.device))
    if cfg.out:
        write_k(result, Path(cfg.out))
    return result


def k_table(rows: list[dict]) -> dict:
    """k per row of losses (Lc_clean, Lc_noisy, Ln_noisy, Ln_clean), as `theory k` reports it."""
    for r in rows:
        k, e, ek = k_from_losses(r["Lc_clean"], r["Lc_noisy"], r["Ln_noisy"], r["Ln_clean"])
        r.update(k=k, epsilon=e, epsilon_over_k=ek,
                 note=None if k is not None else "undefined: the noisy model is no better on the noise")
    return {"rows": rows, "formula": "k = ε / (ε/k), ε = e^(−L_c(h*)) − e^(−L_c(h)), "
                                     "ε/k = e^(−L_n(h)) − e^(−L_n(h*)) (Appendix B.3)"}


def write_k(result: dict, out: Path) -> None:
    """k.json, k.csv and k.png (Figure 7(a)) in folder `out`."""
    from noisecli.core.plots import k_curve
    from noisecli.core.tables import write_table
    out.mkdir(parents=True, exist_ok=True)
    write_table(out / "k", result["rows"], result)
    k_curve(result["rows"], out / "k.png")


@dataclass
class Lemma1Config:
    checkpoint: Path | None = opt(None, "A checkpoint or run folder (its newest checkpoint).")
    data: Path | None = opt(None, "The prepared dataset (placement append) whose training tokens to use.")
    max_tokens: int | None = opt(200_000, "Score a segment of at most twice this many tokens around the "
                                 "clean/noise boundary of train.bin.")
    device: str = opt("auto", "cpu, cuda or auto.")
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Also write the result to this JSON file.")


def run_lemma1(cfg: Lemma1Config) -> dict:
    """L(Pᵐ) = α·L(Pⁿ) + (1−α)·L(Pᶜ) measured on train.bin: the clean part, the noise part, and the
    mixture sampled in the same proportion (the same number of windows from each part, weighted)."""
    if cfg.out is not None:
        check_output(cfg.out, file=True)
    from noisecli.training import checkpoint
    from noisecli.training.distributed import pick_device
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.tokens import open_tokens, read_meta
    if cfg.checkpoint is None or cfg.data is None:
        raise InputError("give --checkpoint and --data")
    meta = read_meta(cfg.data)
    if meta.get("placement") != "append" or not meta["tokens"]["noise"]:
        raise InputError("lemma1 needs a dataset with noise appended (prepare --alpha A --placement append)")
    dev = pick_device(cfg.device)
    model, info = checkpoint.load_checkpoint(cfg.checkpoint, dev)
    if info.get("data_meta_sha256") not in (None, sha256_file(Path(cfg.data) / "meta.json")):
        warn(f"the checkpoint was trained on other data than {cfg.data} (its meta.json hash differs): Lemma 1 "
             "then mixes losses of tokens the model did not train on")
    train = open_tokens(Path(cfg.data) / "train.bin")
    n_clean, n_noise, alpha = meta["tokens"]["clean_train"], meta["tokens"]["noise"], meta["alpha_actual"]
    # a segment of train.bin around the clean/noise boundary with noise in proportion α: its clean part,
    # its noise part and the whole segment (the mixture) are each scored exactly
    size = min(len(train), 2 * cfg.max_tokens) if cfg.max_tokens else len(train)
    m_noise = min(round(alpha * size), n_noise)
    m_clean = min(size - m_noise, n_clean)
    lc, nc = token_file_loss(model, train[n_clean - m_clean:n_clean], 8, dev)
    ln, nn_ = token_file_loss(model, train[n_clean:n_clean + m_noise], 8, dev)
    lm, nm = token_file_loss(model, train[n_clean - m_clean:n_clean + m_noise], 8, dev)
    a_seg = m_noise / (m_clean + m_noise)
    predicted = a_seg * ln + (1 - a_seg) * lc
    return {"checkpoint": str(checkpoint.resolve(cfg.checkpoint)), "iter": info["iter"], "alpha": alpha,
            "alpha_in_segment": a_seg, "L_mixture": lm, "L_clean": lc, "L_noise": ln,
            "alpha_L_noise_plus_rest": predicted, "gap": lm - predicted,
            "tokens": {"clean": nc, "noise": nn_, "mixture": nm},
            "why_inexact": "windows that straddle the clean/noise boundary see a context of one kind and "
                           "predict tokens of the other; and each window's first token is not scored, so "
                           "the parts are weighted by scored tokens, not exactly by α"}


@dataclass
class PredictConfig:
    clean: Path | None = opt(None, "The clean run (α = 0).")
    alpha: float = opt(0.1, "Noise proportion α of the run to predict, in (0, 1).")
    noisy: Path | None = opt(None, "A noisy run, to set the measured rise (and k, p_n from its noise) beside "
                             "the prediction.")
    k: float | None = opt(None, "k (default: estimated from --noisy at the newest common iteration, else 1; an undefined "
                               "estimate gives no prediction).")
    max_tokens: int | None = opt(200_000, "Score at most this many tokens of each file.")
    device: str = opt("auto", "cpu, cuda or auto.")
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Also write the result to this JSON file.")


def run_predict(cfg: PredictConfig) -> dict:
    """Proposition 1's bound on the clean-loss rise of a run with noise α, from the clean run's losses:
    p_c = e^(−L_c), p_n = e^(−L_n) on the noisy run's noise (uniform noise, p_n = 1/50256, without
    --noisy); next to the measured rise L_c(noisy) − L_c(clean) when --noisy is given."""
    if cfg.out is not None:
        check_output(cfg.out, file=True)
    from noisecli.training import checkpoint
    from noisecli.training.distributed import pick_device
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.tokens import open_tokens
    if cfg.clean is None:
        raise InputError("--clean RUN is required")
    if not 0 < cfg.alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {cfg.alpha}")
    if cfg.noisy is not None:
        row = paired_losses(cfg.clean, cfg.noisy, cfg.max_tokens, cfg.device, last_only=True)[-1]
        return predict_from_losses(row, cfg.alpha, cfg.k)
    model, info = checkpoint.load_checkpoint(cfg.clean, pick_device(cfg.device))
    data = Path(read_manifest(Path(cfg.clean) / "run.json", ("data",))["data"])
    tokens = open_tokens(data / "val.bin")
    lc = token_file_loss(model, tokens[:cfg.max_tokens] if cfg.max_tokens else tokens, 8,
                         pick_device(cfg.device))[0]
    result = {"alpha": cfg.alpha, "iter": info["iter"], "measured_rise": None,
              "p_n_note": f"p_n = 1/{NOISE_IDS}: uniform noise assumed, whatever the noise (give --noisy RUN for "
                          "its own noise's p_n)"}
    return _predicted(result, cfg.alpha, lc, 1 / NOISE_IDS, cfg.k or 1.0)


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
    return _predicted(result, alpha, row["Lc_clean"], probability(row["Ln_clean"]), k)


def _predicted(result: dict, alpha: float, lc: float, pn: float, k: float) -> dict:
    p = proposition1(alpha, probability(lc), pn, k)
    result.update(k=k, p_c=p.p_c, p_n=p.p_n, eta=p.eta, regime=p.regime, clean_loss=lc,
                  k_min_for_3=p.k_min_for_3, bound_multiplier=p.bound_multiplier,
                  conclusions=p.as_dict()["conclusions"],
                  predicted_rise_at_eta=(p.clean_loss_at_eta - lc) if p.clean_loss_at_eta is not None else None,
                  predicted_rise_bound=(p.clean_loss_bound - lc) if p.clean_loss_bound is not None else None,
                  conclusion=p.conclusion)
    return result
