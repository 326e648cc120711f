"""What a scan writes: scan.json (α̂ per kind, and with --model what the noise would cost that model by
Proposition 1), examples.md (the most and the least confident flagged spans, escaped, to
check the detector by eye) and scores.png (the distribution of scores with the threshold)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, StrictInt

from noisecli.core.manifest import Record, provenance, write_json, write_text
from noisecli.scan.detect import KINDS
from noisecli.scan.tally import BINS, WINDOW, Tally, threshold


class Interval(BaseModel):
    value: float
    lo: float
    hi: float


class KindShare(Record):
    tokens: StrictInt
    documents: StrictInt
    share_of_tokens: Interval
    share_of_documents: Interval


class ScanResult(Record):
    """scan.json, as `reproduce`'s report reads it back."""
    documents: StrictInt
    tokens: StrictInt
    shares: dict[str, KindShare]


def write_results(folder: Path, tally: Tally, settings: dict, seconds: float) -> dict:
    """scan.json, examples.md and scores.png of a tally."""
    shares = tally.shares()
    result = {**provenance(), **settings, "documents": tally.documents, "tokens": tally.tokens,
              "undecodable_documents": tally.undecodable,
              "shares": shares, "interval": "95 % Poisson bootstrap over documents (400 replicates)",
              "threshold_nats_per_token": threshold(), "seconds": round(seconds, 1),
              "tokens_per_s": round(tally.tokens / seconds) if seconds else None}
    config = settings["config"]
    if config.get("model"):
        result["cost"] = cost(tally, shares["random noise (all kinds)"]["share_of_tokens"]["value"], config["k"],
                              config["model"])
    write_json(folder / "scan.json", result)
    most, least = tally.examples()
    write_text(folder / "examples.md", examples_markdown(most, least, shares))
    scores_figure(tally, folder / "scores.png")
    return result


def cost(tally: Tally, alpha: float, k: float | None, model: str) -> dict:
    """What the flagged noise would do to the model, by Proposition 1 (§3.3): p_c and p_n from the model's
    loss on the clean and on the flagged random-noise tokens, at α = α̂. Each conclusion only where its
    conditions hold; without k, what k conclusion (3) would need."""
    import math

    from noisecli.why.proposition import k_needed, proposition1, threshold
    (lc_sum, lc_n), (ln_sum, ln_n) = tally.lm["clean"], tally.lm["noise"]
    alpha = float(alpha)
    out = {"model": model, "alpha_hat": alpha, "k": k, "clean_tokens_scored": lc_n, "noise_tokens_scored": ln_n}
    if not lc_n or not ln_n or not 0 < alpha < 1:
        out["conclusion"] = "no conclusion: " + ("no random noise was flagged" if not ln_n or alpha <= 0 else
                                                 "no clean token was scored")
        return out
    loss_c, loss_n = float(lc_sum / lc_n), float(ln_sum / ln_n)
    pc, pn = math.exp(-loss_c), math.exp(-loss_n)
    need = k_needed(alpha, pc, pn)
    out.update(loss_clean=loss_c, loss_noise=loss_n, p_c=pc, p_n=pn, k_min_for_3=need[1] if need else None)
    if k is None:
        out["conclusion"] = (
            f"no conclusion without k (--k; `theory k` measures it from a clean and a noisy run). At α̂ = {alpha:.4f}, "
            f"p_c = {pc:.4g}, p_n = {pn:.4g}: conclusion (1) (no rise) holds only if α̂ ≤ kp_n/(p_c + kp_n), which "
            f"needs k ≥ {alpha * pc / ((1 - alpha) * pn):.4g}; " + (
                f"(3) bounds the rise only if k > {need[1]:.4g}." if need else "(3) says nothing for 1/3 ≤ α ≤ 1/2."))
        return out
    p = proposition1(alpha, pc, pn, k)
    out.update(prediction=p.as_dict(), threshold=threshold(pc, pn, k), conclusion=p.conclusion,
               predicted_rise_bound=(p.clean_loss_bound - p.clean_loss) if p.clean_loss_bound is not None else None)
    return out


def _escaped(text: str) -> str:
    """A span's text on one line, control and unusual characters as escapes, inside a code span."""
    shown = "".join(ch if ch.isprintable() and ch != "`" else ch.encode("unicode_escape").decode("ascii")
                    for ch in text)
    return f"`{shown}`"


def examples_markdown(most: list[dict], least: list[dict], shares: dict) -> str:
    lines = ["# Flagged spans, to check by eye", "",
             "Score: the span's mean evidence for noise against the corpus's language, in nats per token "
             f"(log(1/50257) − log p_text(t)); a {WINDOW}-token span needs about {threshold():.2f} to be flagged.", "",
             "| kind | share of tokens (95 % interval) | tokens | documents |", "|---|---|---|---|"]
    for kind, s in shares.items():
        t = s["share_of_tokens"]
        lines.append(f"| {kind} | {100 * t['value']:.3f} % [{100 * t['lo']:.3f}, {100 * t['hi']:.3f}] | {s['tokens']:,} "
                     f"| {s['documents']:,} |")
    for title, spans in (("The most confident random-noise spans", most), ("The least confident random-noise spans", least)):
        lines += ["", f"## {title}", ""]
        if not spans:
            lines.append("(none flagged)")
        for s in spans:
            lines.append(f"- document {s['document']}, tokens {s['start']}–{s['end']} ({s['kind']}, score "
                         f"{s['score']:+.2f}): {_escaped(s['text'])}")
    return "\n".join(lines) + "\n"


def scores_figure(tally: Tally, out: Path) -> None:
    from matplotlib.figure import Figure        # no pyplot: nothing global, no GUI backend
    centres = (BINS[:-1] + BINS[1:]) / 2
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    total = max(int(tally.window_hist.sum()), 1)
    ax.step(centres, tally.window_hist / total, where="mid", color="black", label=f"every {WINDOW}-token window")
    for i, kind in enumerate(KINDS):
        h = tally.span_hist[i]
        if h.sum():
            ax.step(centres, h / max(int(h.sum()), 1), where="mid", label=f"flagged {kind} spans ({int(h.sum()):,})")
    ax.axvline(threshold(), color="tab:red", ls="--", label=f"threshold for a {WINDOW}-token span")
    ax.set_yscale("log")
    ax.set_xlabel("mean evidence for noise, nats per token")
    ax.set_ylabel("fraction of windows / of spans")
    ax.set_title(f"noisecli scan: score distribution ({tally.documents:,} documents, {tally.tokens:,} tokens)",
                 fontsize=10)
    ax.legend(fontsize=7)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.92, bottom=0.12)   # fixed margins: tight_layout costs 0.1 s
    fig.savefig(out, dpi=110)
