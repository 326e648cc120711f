"""What a person reads of a scan: examples.md (the most and the least confident flagged spans, escaped, to
check the detector by eye) and scores.png (the distribution of scores with the threshold)."""

from __future__ import annotations

from pathlib import Path

from noisecli.scan.detect import KINDS
from noisecli.scan.tally import BINS, WINDOW, Tally, threshold


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
