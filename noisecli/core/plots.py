"""Figures. Each function writes one figure as PNG and PDF (same name) with matplotlib's non-interactive
backend; every figure has a title, axis units and a legend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from noisecli.what.noise import NOISE_IDS  # noqa: E402
from noisecli.what.tokenizer import VOCAB_SIZE  # noqa: E402
from noisecli.what.tokens import token_counts  # noqa: E402


def _save(fig, path: Path) -> None:
    """PNG (for the report) and PDF (for papers) side by side."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


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
    _save(fig, out)


def _lines(ax, rows: list[dict], key: str, label_of) -> None:
    for label in sorted({label_of(r) for r in rows}):
        pts = sorted((r["iter"], r[key]) for r in rows if label_of(r) == label and r.get(key) is not None)
        if pts:
            ax.plot(*zip(*pts), marker="o", ms=3, label=label)


def ntp_figures(rows: list[dict], base_rows: list[dict], out: Path) -> list[str]:
    """The paper's Figures 2(a-c), 3(a) and 4 from eval-ntp rows. Returns the file names written."""
    def run_label(r):
        return f"{r['run']} (α={r['alpha']}, {r['dist']})"

    written = []
    datasets = list(dict.fromkeys(r["dataset"] for r in rows))
    clean = next((d for d in datasets if d.endswith("/val")), datasets[0])
    noise_sets = [d for d in datasets if d.endswith("/noise")]
    figures = [("fig2a_loss_vs_iter.png", [clean], "loss", "next-token loss on clean validation data (nats)", True,
                "Figure 2(a): loss on clean data"),
               ("fig2b_diff_same_iter.png", [clean], "diff_same_iter", "loss − clean baseline (nats)", False,
                "Figure 2(b): difference to the clean run at the same iteration"),
               ("fig2c_diff_calibrated.png", [clean], "diff_calibrated", "loss − clean baseline (nats)", False,
                "Figure 2(c): difference at the same number of clean tokens seen"),
               ("fig3a_loss_on_noise.png", noise_sets, "loss", "next-token loss on the run's own noise (nats)", False,
                "Figure 3(a): loss on the noise")]
    for name, sets, key, ylabel, with_base, title in figures:
        sub = [r for r in rows if r["dataset"] in sets and (not name.startswith("fig3a") or _own_noise(r))]
        if not any(r.get(key) is not None for r in sub):
            continue
        fig, ax = plt.subplots(figsize=(7, 4.5))
        _lines(ax, sub, key, run_label)
        if with_base:
            _lines(ax, [r for r in base_rows if r["dataset"] in sets], key, lambda r: f"{r['run']} (baseline)")
        if name.startswith("fig3a"):
            ax.axhline(np.log(NOISE_IDS), color="gray", ls="--", lw=1, label=f"ln {NOISE_IDS} (entropy of uniform noise)")
        if key.startswith("diff"):
            ax.axhline(0, color="gray", lw=0.8, label="no difference")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("iteration (optimizer steps)")
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=7)
        _save(fig, out / name)
        written.append(name)
    dists = sorted({str(r["dist"]) for r in rows})
    if len(dists) > 1:  # Figure 3(b)/(c): the same curves, one colour per noise distribution
        fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
        for ax, sets, title in ((axes[0], noise_sets, "(b) loss on the run's own noise"),
                                (axes[1], [clean], "(c) loss on clean validation data")):
            for color, dist in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], dists):
                for run in sorted({r["run"] for r in rows if str(r["dist"]) == dist}):
                    pts = sorted((r["iter"], r["loss"]) for r in rows
                                 if r["run"] == run and r["dataset"] in sets and (sets == [clean] or _own_noise(r)))
                    if pts:
                        ax.plot(*zip(*pts), marker="o", ms=3, color=color, label=f"{dist}: {run}")
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("iteration (optimizer steps)")
            ax.set_ylabel("next-token loss (nats)")
            ax.legend(fontsize=7)
        fig.suptitle("Figure 3(b, c): by noise distribution", fontsize=10)
        _save(fig, out / "fig3bc_by_distribution.png")
        written.append("fig3bc_by_distribution.png")
    last = {}
    for r in rows + base_rows:  # each run's newest iteration
        last[r["run"]] = max(last.get(r["run"], 0), r["iter"])
    final = [r for r in rows + base_rows if r["iter"] == last[r["run"]]]
    runs = list(dict.fromkeys(r["run"] for r in final))
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(runs), 1)
    for i, run in enumerate(runs):
        vals = [next((r["loss"] for r in final if r["run"] == run and r["dataset"] == d), np.nan) for d in datasets]
        ax.bar(np.arange(len(datasets)) + i * width, vals, width, label=run)
    ax.set_xticks(np.arange(len(datasets)) + width * (len(runs) - 1) / 2, datasets, rotation=20, fontsize=7)
    finite = [v for r in final for v in [r["loss"]] if np.isfinite(v)]
    if finite:   # bars start near the smallest loss, so that the differences between runs show
        lo, hi = min(finite), max(finite)
        pad = max(0.05 * (hi - lo), 0.01)
        ax.set_ylim(lo - 3 * pad, hi + pad)
    ax.set_title("Figure 4: loss on each corpus at the last iteration", fontsize=10)
    ax.set_ylabel("next-token loss (nats)")
    ax.legend(fontsize=7)
    _save(fig, out / "fig4_datasets.png")
    return written + ["fig4_datasets.png"]


def f_curve(points: list[tuple[float, float]], prop: dict, out: Path) -> None:
    """f(ε) with η, 2η and 3η marked (the paper's Figures 7(b) and 9)."""
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(*zip(*points), color="tab:blue")
    ax.axhline(0, color="gray", lw=0.8)
    for m, style in ((1, "-"), (2, "--"), (3, ":")):
        if 0 < m * prop["eta"] < prop["p_c"]:
            ax.axvline(m * prop["eta"], color="tab:red", ls=style, lw=1, label=f"{m}η" if m > 1 else "η")
    ax.set_xlabel("ε (probability mass moved from clean to noise tokens)")
    ax.set_ylabel("f(ε) (nats; > 0: the mixed loss falls)")
    ax.set_title(f"Figure 7(b)/9: f(ε), α={prop['alpha']:g}, k={prop['k']:g}, p_c={prop['p_c']:.3g}, p_n={prop['p_n']:.3g}", fontsize=9)
    ax.legend(fontsize=8)
    _save(fig, out)


def k_curve(rows: list[dict], out: Path) -> None:
    """k per iteration (the paper's Figure 7(a)); undefined points are left out."""
    pts = [(r["iter"], r["k"]) for r in rows if r.get("k") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if pts:
        ax.plot(*zip(*pts), marker="o")
    ax.set_xlabel("iteration (optimizer steps)")
    ax.set_ylabel("k (dimensionless)")
    ax.set_title("Figure 7(a): k = ε / (ε/k) from the clean and the noisy run", fontsize=9)
    _save(fig, out)


def decision_regions(result: dict, feats, head: str, out: Path) -> None:
    """The paper's Figure 6: a head's predicted class on a random 2-D plane around one test sample."""
    maps = result["maps"]
    classes = feats.classes  # the same colour for a class in every panel
    fig, axes = plt.subplots(1, len(maps), figsize=(4 * len(maps), 4))
    r = result["radius"]
    from matplotlib.colors import ListedColormap
    palette = plt.get_cmap("tab20").colors
    cmap = ListedColormap([palette[(2 * i) % 20 + (2 * i) // 20 % 2] for i in range(max(classes, 2))])
    for ax, (reg, m) in zip(axes, maps.items()):
        ax.imshow(m, origin="lower", extent=(-r, r, -r, r), cmap=cmap, vmin=-0.5, vmax=max(classes, 2) - 0.5,
                  interpolation="nearest")
        ax.plot(0, 0, "k*", markersize=12)
        ax.set_title({"none": "no regulariser", "l2": "L2", "lgm": "LGM"}.get(reg, reg))
        ax.set_xlabel("direction u (× ‖t‖)")
    axes[0].set_ylabel("direction v (× ‖t‖)")
    fig.suptitle(f"{feats.backbone} on {feats.task}, {head} head: decision regions around test sample "
                 f"{result['sample']} (label {result['label']})", fontsize=9)
    _save(fig, out)
