"""Figures. Each function writes one PNG with matplotlib's non-interactive backend."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from noisecli.shards import DTYPE  # noqa: E402
from noisecli.tokenizer import VOCAB_SIZE  # noqa: E402


def token_counts(path: Path, chunk: int = 1 << 24) -> np.ndarray:
    tokens = np.memmap(path, dtype=DTYPE, mode="r") if Path(path).stat().st_size else np.empty(0, DTYPE)
    counts = np.zeros(VOCAB_SIZE, np.int64)
    for i in range(0, len(tokens), chunk):
        counts += np.bincount(tokens[i:i + chunk], minlength=VOCAB_SIZE)
    return counts


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
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
