"""The figures of What: the paper's Figure 8 (token histograms of a prepared dataset) and Figures 2(a-c),
3(a), 3(b, c) and 4 from eval-ntp's rows. Each is written as PNG and PDF by core.plots.save."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisecli.core.plots import plt, save
from noisecli.what.noise import NOISE_IDS
from noisecli.what.token_files import token_counts
from noisecli.what.tokenizer import VOCAB_SIZE


def _own_noise(r: dict) -> bool:
    """A run's loss on the noise is read on its own noise only (no run against another run's noise)."""
    return r.get("own_noise", r["dataset"] == f"{r['run']}/noise")


def token_histograms(train: Path, noise: Path, out: Path, title: str = "", bin_width: int = 100) -> None:
    """The paper's Figure 8: token frequency over token id, clean training data above, noise below.
    Clean counts are train counts minus noise counts, so this works for any placement."""
    noise_counts = token_counts(noise)
    clean_counts = token_counts(train) - noise_counts
    edges = np.arange(0, VOCAB_SIZE + bin_width, bin_width)
    fig, axes = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    for ax, counts, label, color in ((axes[0], clean_counts, "clean data", "tab:blue"),
                                     (axes[1], noise_counts, "noise", "tab:red")):
        total = max(int(counts.sum()), 1)
        binned = np.add.reduceat(counts, edges[:-1]) / total
        ax.bar(edges[:-1], binned, width=bin_width, align="edge", color=color)
        ax.set_yscale("log")
        ax.set_ylabel(f"frequency per {bin_width} ids")
        ax.set_title(f"{label}: {total:,} tokens", fontsize=10)
    axes[1].set_xlabel("token id")
    fig.suptitle(title)
    save(fig, out)


NOISE_WORDS = {"uniform": "uniform noise", "random": "random (spiky) noise", "gaussian": "Gaussian noise",
               "tokens": "text of another corpus"}


def _is_clean(r: dict) -> bool:
    return not r.get("alpha")


def _label(r: dict) -> str:
    """A legend label a reader understands: "5 % Gaussian noise", "20 % text of another corpus (french-0.2)"."""
    if _is_clean(r):
        return "clean"
    words = NOISE_WORDS.get(str(r.get("dist")), str(r.get("dist")))
    named = r.get("dist") in ("uniform", "random", "gaussian")
    return f"{100 * r['alpha']:g} % {words}" + ("" if named else f" ({r['run']})")


def _colors(runs: list[str]) -> dict[str, tuple]:
    """One colour per noisy run, the same in every figure (tab10, then tab20's light shades)."""
    palette = list(plt.get_cmap("tab10").colors) + list(plt.get_cmap("tab20").colors[1::2])
    return {run: palette[i % len(palette)] for i, run in enumerate(sorted(runs))}


def _lines(ax, rows: list[dict], key: str, colors: dict) -> None:
    for run in sorted({r["run"] for r in rows if not _is_clean(r)}):
        pts = sorted((r["iter"], r[key]) for r in rows if r["run"] == run and r.get(key) is not None)
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, color=colors[run],
                    label=_label(next(r for r in rows if r["run"] == run)))


def _clean_band(ax, rows: list[dict], key: str) -> None:
    """The clean seeds: their mean as a line and their range as a band."""
    clean = [r for r in rows if _is_clean(r) and r.get(key) is not None]
    seeds = sorted({r["run"] for r in clean})
    its = sorted({r["iter"] for r in clean})
    if not its:
        return
    vals = [[r[key] for r in clean if r["iter"] == it] for it in its]
    label = f"clean ({len(seeds)} seed{'s' if len(seeds) > 1 else ''}" + (": mean and range)" if len(seeds) > 1 else ")")
    ax.plot(its, [np.mean(v) for v in vals], color="black", lw=1.2, marker="s", ms=3, label=label)
    if len(seeds) > 1:
        ax.fill_between(its, [min(v) for v in vals], [max(v) for v in vals], color="gray", alpha=0.3, lw=0)


def ntp_figures(rows: list[dict], base_rows: list[dict], out: Path) -> list[str]:
    """The paper's Figures 2(a-c), 3(a), 3(b, c) and 4 from eval-ntp rows: every noisy run its own colour,
    the clean seeds as a band (their range) around their mean. Returns the file names written."""
    written = []
    base_rows = [{"diff_same_iter": 0.0, "diff_calibrated": 0.0, **r} for r in base_rows]   # itself: no difference
    both = rows + base_rows
    colors = _colors(sorted({r["run"] for r in both if not _is_clean(r)}))
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    clean = next((d for d in datasets if d.endswith("/val")), datasets[0])
    noise_sets = [d for d in datasets if d.endswith("/noise")]
    figures = [("fig2a_loss_vs_iter.png", [clean], "loss", "next-token loss on clean validation data (nats)",
                "Figure 2(a): loss on clean data"),
               ("fig2b_diff_same_iter.png", [clean], "diff_same_iter", "loss − clean run's loss (nats)",
                "Figure 2(b): difference to the clean run at the same iteration"),
               ("fig2c_diff_calibrated.png", [clean], "diff_calibrated", "loss − clean run's loss (nats)",
                "Figure 2(c): difference at the same number of clean tokens seen"),
               ("fig3a_loss_on_noise.png", noise_sets, "loss", "next-token loss on the run's own noise (nats)",
                "Figure 3(a): loss on the noise")]
    for name, sets, key, ylabel, title in figures:
        sub = [r for r in both if r["dataset"] in sets and (not name.startswith("fig3a") or _own_noise(r))]
        if not any(r.get(key) is not None for r in sub if not _is_clean(r)):
            continue
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        if not name.startswith("fig3a"):
            _clean_band(ax, sub, key)
        _lines(ax, sub, key, colors)
        if name.startswith("fig3a"):
            ax.axhline(np.log(NOISE_IDS), color="gray", ls="--", lw=1, label=f"ln {NOISE_IDS} (entropy of uniform noise)")
        if key.startswith("diff"):
            ax.axhline(0, color="gray", lw=0.8)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration (optimizer steps)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        save(fig, out / name)
        written.append(name)
    paper = [r for r in rows if str(r.get("dist")) in ("gaussian", "random", "uniform") and r.get("alpha") == 0.05]
    paper_pair = {str(r["dist"]) for r in paper} >= {"gaussian", "random"}
    comparators = paper if paper_pair else [r for r in rows if not _is_clean(r)]
    if comparators and (paper_pair or len({str(r.get("dist")) for r in both}) > 1):   # Figure 3(b, c)
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, sets, title in ((axes[0], noise_sets, "(b) loss on the run's own noise"),
                                (axes[1], [clean], "(c) loss on clean validation data")):
            sub = [r for r in comparators if r["dataset"] in sets and (sets == [clean] or _own_noise(r))]
            if sets == [clean]:
                _clean_band(ax, [r for r in both if r["dataset"] == clean], "loss")
            _lines(ax, sub, "loss", colors)
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("iteration (optimizer steps)")
            ax.set_ylabel("next-token loss (nats)")
            ax.legend(fontsize=7)
        fig.suptitle("Figure 3(b, c): 5 % Gaussian against 5 % random noise (the paper's comparison; uniform: ours)"
                     if paper_pair else "Figure 3(b, c): by noise distribution", fontsize=10)
        save(fig, out / "fig3bc_by_distribution.png")
        written.append("fig3bc_by_distribution.png")
    return written + [_datasets_figure(both, datasets, colors, out)]


def _datasets_figure(both: list[dict], datasets: list[str], colors: dict, out: Path) -> str:
    """Figure 4: each run's loss on each corpus at its last iteration; the clean seeds as one bar (their mean)
    with their range as an error bar."""
    last = {}
    for r in both:
        last[r["run"]] = max(last.get(r["run"], 0), r["iter"])
    final = [r for r in both if r["iter"] == last[r["run"]]]
    groups = [("clean", [r for r in final if _is_clean(r)], "black")] + [
        (run, [r for r in final if r["run"] == run], colors[run]) for run in sorted({r["run"] for r in final
                                                                                   if not _is_clean(r)})]
    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    width = 0.8 / len(groups)
    for i, (run, rs, color) in enumerate(groups):
        per = [[r["loss"] for r in rs if r["dataset"] == d] for d in datasets]
        vals = [np.mean(v) if v else np.nan for v in per]
        err = np.array([[m - min(v), max(v) - m] if v else [0, 0] for m, v in zip(vals, per)]).T
        label = (f"clean ({len({r['run'] for r in rs})} seeds: mean, range)" if run == "clean" else _label(rs[0]))
        ax.bar(np.arange(len(datasets)) + i * width, vals, width, color=color, label=label,
               yerr=err if run == "clean" else None, capsize=2)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(groups) - 1) / 2, datasets, rotation=20, fontsize=7)
    finite = [r["loss"] for r in final if np.isfinite(r["loss"])]
    if finite:   # bars start near the smallest loss, so that the differences between runs show
        lo, hi = min(finite), max(finite)
        pad = max(0.05 * (hi - lo), 0.01)
        ax.set_ylim(lo - 3 * pad, hi + pad)
    ax.set_title("Figure 4: loss on each corpus at the last iteration", fontsize=10)
    ax.set_ylabel("next-token loss (nats)")
    ax.legend(fontsize=7)
    save(fig, out / "fig4_datasets.png")
    return "fig4_datasets.png"
