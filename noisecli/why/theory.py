"""`noisecli theory ...`: the paper's "Why" applied (§3.3, Appendix B): Proposition 1 for given numbers
(`prop1`), the f(ε) curve (`curve`), k from a clean and a noisy run's checkpoints (`k`, Appendix B.3),
Lemma 1 on a prepared dataset (`lemma1`) and the predicted clean-loss rise of a noisy run (`predict`).
Each returns a JSON-ready dict and writes its own --out; the mathematics is why/proposition.py."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


from noisecli.core.errors import InputError, warn
from noisecli.core.manifest import Record, check_output, read_manifest, sha256_file, write_json, write_text
from noisecli.core.options import device_opt, opt
from noisecli.core.progress import Reporter
from noisecli.core.stage import Stage, written
from noisecli.what.noise import NOISE_IDS
from noisecli.what.pretrain import RunManifest
from noisecli.why.proposition import curve, k_table, predict_from_losses, predicted_rise, probability, proposition1


class KRow(Record):
    iter: int
    k: float | None = None


class KTable(Record):
    """k.json (`theory k`), as `reproduce`'s findings read it back."""
    rows: list[KRow]


class ConclusionRecord(Record):
    number: str
    holds: bool


class Prediction(Record):
    """predict.json (`theory predict`), as `reproduce`'s findings read it back."""
    conclusions: list[ConclusionRecord] | None = None
    predicted_rise_bound: float | None = None


class Lemma1Result(Record):
    """lemma1.json (`theory lemma1`), as `reproduce`'s report reads it back."""
    L_mixture: float
    alpha_L_noise_plus_rest: float
    gap: float
    why_inexact: str


def _probabilities(pc, pn, loss_clean, loss_noise) -> tuple[float, float]:
    if (pc is None) == (loss_clean is None) or (pn is None) == (loss_noise is None):
        raise InputError("give the clean and noise probabilities (--pc, --pn) or losses "
                         "(--loss-clean, --loss-noise), one of each")
    return (pc if pc is not None else probability(loss_clean)), (pn if pn is not None else probability(loss_noise))


def _written(cfg, result: dict) -> dict:
    """`result`, written to --out (a JSON file) when one is given."""
    if cfg.out is not None:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(cfg.out, result)
    return result


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
    return _written(cfg, _prop1(cfg))


def _prop1(cfg: Prop1Config) -> dict:
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
    check_output(cfg.out, file=True)
    if cfg.figure is not None:   # checked before anything is written
        check_output(cfg.figure, "--figure", file=True)
        if Path(cfg.figure).suffix.lower() != ".png":
            raise InputError(f"--figure {cfg.figure}: give a .png file (a .pdf twin is written beside it)")
    p = _prop1(cfg)
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
    device: str = device_opt()
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Folder for k.json, k.csv and k.png (Figure 7(a)).")


def paired_losses(clean: Path, noisy: Path, max_tokens: int | None, device: str,
                  last_only: bool = False) -> list[dict]:
    """L_c and L_n of the clean and the noisy run's checkpoints at their common iterations (or only the
    newest common one)."""
    from noisecli.training import checkpoint
    from noisecli.training.distributed import pick_device
    from noisecli.what.architectures import load_model
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.token_files import open_tokens
    if clean is None or noisy is None:
        raise InputError("give both --clean RUN and --noisy RUN")
    if Path(clean).resolve() == Path(noisy).resolve():
        raise InputError(f"--clean and --noisy are the same run ({clean}): k compares a clean run with a noisy one")
    if (Path(clean) / "run.json").is_file():
        alpha = read_manifest(Path(clean) / "run.json", schema=RunManifest).get("alpha")
        if alpha:
            warn(f"--clean {clean} was trained with noise (α = {alpha}): k and the rise are measured against it")
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
    data = Path(read_manifest(Path(noisy) / "run.json", ("data",), RunManifest)["data"])
    files = {"c": open_tokens(data / "val.bin"), "n": open_tokens(data / "noise.bin")}
    files = {k: v[:max_tokens] if max_tokens else v for k, v in files.items()}
    dev = pick_device(device)
    rows = []
    with Reporter("score checkpoints", total=len(common) * 2 * sum(map(len, files.values())),
                  unit="tokens") as progress:
        for it in common:
            row = {"iter": it}
            for name in ("clean", "noisy"):
                model, _ = load_model(runs[name][it], dev)
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
    device: str = device_opt()
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Also write the result to this JSON file.")


def run_lemma1(cfg: Lemma1Config) -> dict:
    """L(Pᵐ) = α·L(Pⁿ) + (1−α)·L(Pᶜ) measured on train.bin: the clean part, the noise part, and the
    mixture sampled in the same proportion (the same number of windows from each part, weighted)."""
    if cfg.out is not None:
        check_output(cfg.out, file=True)
    from noisecli.training import checkpoint
    from noisecli.training.distributed import pick_device
    from noisecli.what.architectures import load_model
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.token_files import check_dataset, open_tokens, read_meta
    if cfg.checkpoint is None or cfg.data is None:
        raise InputError("give --checkpoint and --data")
    meta = read_meta(cfg.data)
    check_dataset(cfg.data, meta)
    if meta.get("placement") != "append" or not meta["tokens"]["noise"]:
        raise InputError("lemma1 needs a dataset with noise appended (prepare --alpha A --placement append)")
    dev = pick_device(cfg.device)
    model, info = load_model(cfg.checkpoint, dev)
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
    return _written(cfg, {"checkpoint": str(checkpoint.resolve(cfg.checkpoint)), "iter": info["iter"], "alpha": alpha,
            "alpha_in_segment": a_seg, "L_mixture": lm, "L_clean": lc, "L_noise": ln,
            "alpha_L_noise_plus_rest": predicted, "gap": lm - predicted,
            "tokens": {"clean": nc, "noise": nn_, "mixture": nm},
            "why_inexact": "windows that straddle the clean/noise boundary see a context of one kind and "
                           "predict tokens of the other; and each window's first token is not scored, so "
                           "the parts are weighted by scored tokens, not exactly by α"})


@dataclass
class PredictConfig:
    clean: Path | None = opt(None, "The clean run (α = 0).")
    alpha: float = opt(0.1, "Noise proportion α of the run to predict, in (0, 1).")
    noisy: Path | None = opt(None, "A noisy run, to set the measured rise (and k, p_n from its noise) beside "
                             "the prediction.")
    k: float | None = opt(None, "k (default: estimated from --noisy at the newest common iteration, else 1; an undefined "
                               "estimate gives no prediction).")
    max_tokens: int | None = opt(200_000, "Score at most this many tokens of each file.")
    device: str = device_opt()
    json: bool = opt(False, "Print JSON on stdout instead of a table.")
    out: Path | None = opt(None, "Also write the result to this JSON file.")


def run_predict(cfg: PredictConfig) -> dict:
    """Proposition 1's bound on the clean-loss rise of a run with noise α, from the clean run's losses:
    p_c = e^(−L_c), p_n = e^(−L_n) on the noisy run's noise (uniform noise, p_n = 1/50256, without
    --noisy); next to the measured rise L_c(noisy) − L_c(clean) when --noisy is given."""
    if cfg.out is not None:
        check_output(cfg.out, file=True)
    from noisecli.training.distributed import pick_device
    from noisecli.what.architectures import load_model
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.token_files import open_tokens
    if cfg.clean is None:
        raise InputError("--clean RUN is required")
    if not 0 < cfg.alpha < 1:
        raise InputError(f"--alpha must be in (0, 1), got {cfg.alpha}")
    if cfg.noisy is not None:
        row = paired_losses(cfg.clean, cfg.noisy, cfg.max_tokens, cfg.device, last_only=True)[-1]
        return _written(cfg, predict_from_losses(row, cfg.alpha, cfg.k))
    model, info = load_model(cfg.clean, pick_device(cfg.device))
    data = Path(read_manifest(Path(cfg.clean) / "run.json", ("data",), RunManifest)["data"])
    tokens = open_tokens(data / "val.bin")
    lc = token_file_loss(model, tokens[:cfg.max_tokens] if cfg.max_tokens else tokens, 8,
                         pick_device(cfg.device))[0]
    result = {"alpha": cfg.alpha, "iter": info["iter"], "measured_rise": None,
              "p_n_note": f"p_n = 1/{NOISE_IDS}: uniform noise assumed, whatever the noise (give --noisy RUN for "
                          "its own noise's p_n)"}
    return _written(cfg, predicted_rise(result, cfg.alpha, lc, 1 / NOISE_IDS, cfg.k or 1.0))


def print_result(result: dict, title: str) -> None:
    from rich.table import Table

    from noisecli.core.tables import console
    """A theory result as a two-column table, or its rows as a table."""
    if "rows" in result:
        rows = result["rows"]
        table = Table(title=title)
        for col in rows[0] if rows else []:
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(*(f"{v:.5g}" if isinstance(v, float) else str(v) for v in r.values()))
        console.print(table)
        for key, value in result.items():
            if key != "rows":
                console.print(f"{key}: {value}")
        return
    table = Table(title=title, show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    for key, value in result.items():
        if key not in ("conclusion", "conclusions", "k_rows"):
            table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    console.print(table)
    for c in result.get("conclusions") or []:   # Proposition 1: a conclusion only where its conditions hold
        console.print(f"({c['number']}) {c['statement']}  [dim]conditions: {c['conditions']}[/dim]" if c["holds"]
                      else f"({c['number']}) not concluded: its conditions fail ({c['conditions']})", soft_wrap=True)
    if "conclusion" in result and not result.get("conclusions"):
        console.print(result["conclusion"])


def _shown(title: str):
    def show(cfg, result: dict) -> None:
        if cfg.json:
            import json
            print(json.dumps(result, indent=2))
        else:
            print_result(result, title)
    return show


PROP1_STAGE = Stage("theory prop1", Prop1Config, run_prop1, "η = αp_c − (1−α)k·p_n, the threshold kp_n/(p_c + kp_n), which "
          "conclusion applies, and the clean loss.", show=_shown("Proposition 1"))
CURVE_STAGE = Stage("theory curve", CurveConfig, run_curve, "f(ε) = (1−α)log((p_c−ε)/p_c) + α log((p_n+ε/k)/p_n) over (0, p_c) as "
          "CSV, with a plot.", show=_shown("f(ε)"))
K_STAGE = Stage("theory k", KConfig, run_k, "k per common iteration of a clean and a noisy run, from their losses "
          "(Appendix B.3).", done=written("k.json"),
          show=_shown("k per iteration"))
LEMMA1_STAGE = Stage("theory lemma1", Lemma1Config, run_lemma1, "Check L(Pᵐ) = αL(Pⁿ) + (1−α)L(Pᶜ) on a prepared dataset's "
          "training tokens.", done=lambda cfg: cfg.out is not None and Path(cfg.out).is_file(), show=_shown("Lemma 1"))
PREDICT_STAGE = Stage("theory predict", PredictConfig, run_predict, "Proposition 1's bound on a noisy run's clean-loss rise, "
          "beside the measured rise.", show=_shown("predicted loss rise"))
STAGES = [PROP1_STAGE, CURVE_STAGE, K_STAGE, LEMMA1_STAGE, PREDICT_STAGE]
