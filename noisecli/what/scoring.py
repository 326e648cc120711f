"""Scoring a language model on a token file, exactly: the mean next-token loss over every token.

The tokens are cut into non-overlapping windows of context+1 tokens: within a window each token is
predicted from the ones before it, and the first token of each window (which would be predicted from
nothing) is excluded. Not a random-batch estimate; the count of predicted tokens comes with the loss.
"""

from __future__ import annotations

import numpy as np
import torch

from noisecli.core.progress import Reporter
from noisecli.training.steps import autocast


@torch.inference_mode()
def window_losses(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, progress: Reporter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL and predicted-token count of every window of `tokens` (float64, int64 arrays): the
    units a bootstrap over scored windows resamples."""
    device = torch.device(device)
    span = model.config.block_size + 1
    n_full = len(tokens) // span
    sums, counts = [], []

    def score(windows: np.ndarray) -> None:
        w = torch.from_numpy(windows.astype(np.int64)).to(device)
        with autocast(device, dtype):
            _, loss = model(w[:, :-1], w[:, 1:], reduction="none")
        sums.append(loss.view(w.shape[0], -1).double().sum(dim=1).cpu().numpy())
        counts.append(np.full(w.shape[0], w.shape[1] - 1, np.int64))
        if progress is not None:
            progress.advance(w.numel())

    for i in range(0, n_full, batch_size):
        score(np.stack([tokens[j * span:(j + 1) * span] for j in range(i, min(i + batch_size, n_full))]))
    if len(tokens) - n_full * span >= 2:  # the short last window
        score(np.asarray(tokens[n_full * span:])[None])
    return (np.concatenate(sums), np.concatenate(counts)) if sums else (np.zeros(0), np.zeros(0, np.int64))


def predicted_tokens(tokens: np.ndarray, span: int) -> np.ndarray:
    """The tokens `window_losses` predicts, in order: every token but each window's first (the windows are
    non-overlapping, `span` = context + 1 tokens long, the last one shorter), so a baseline such as the
    unigram cross-entropy can be scored on exactly the same tokens as a model."""
    tokens = np.asarray(tokens)
    return tokens[np.arange(len(tokens)) % span != 0]


def token_file_loss(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, progress: Reporter | None = None) -> tuple[float, int]:
    """Exact mean NLL over every predictable token of `tokens`; returns (loss, predicted tokens)."""
    sums, counts = window_losses(model, tokens, batch_size, device, dtype, progress)
    return float(sums.sum() / counts.sum()), int(counts.sum())
