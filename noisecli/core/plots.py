"""Figures: `save` (PNG and PDF side by side, matplotlib's non-interactive backend) and the figures of Why
and How (f(ε), k, decision regions). Every figure has a title, axis units and a legend. The figures of What
(token histograms, the NTP losses) are in what/figures.py."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, path: Path) -> None:
    """PNG (for the report) and PDF (for papers) side by side."""
    path = Path(path)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    fig.savefig(path.with_suffix(".pdf"))
    plt.close(fig)


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
    save(fig, out)


def k_curve(rows: list[dict], out: Path) -> None:
    """k per iteration (the paper's Figure 7(a)); undefined points are left out."""
    pts = [(r["iter"], r["k"]) for r in rows if r.get("k") is not None]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if pts:
        ax.plot(*zip(*pts), marker="o")
    ax.set_xlabel("iteration (optimizer steps)")
    ax.set_ylabel("k (dimensionless)")
    ax.set_title("Figure 7(a): k = ε / (ε/k) from the clean and the noisy run", fontsize=9)
    save(fig, out)


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
    save(fig, out)
