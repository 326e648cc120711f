"""Scoring a language model on a token file, exactly: the mean loss over every token it predicts.

For a GPT the tokens are cut into non-overlapping windows of context+1 tokens: within a window each token
is predicted from the ones before it, and the first token of each window (which would be predicted from
nothing) is excluded. Each architecture says how (what/architectures/). Not a random-batch estimate; the
count of predicted tokens comes with the loss.
"""

from __future__ import annotations

import numpy as np
import torch

from noisecli.core.progress import Reporter
from noisecli.training.steps import autocast
from noisecli.what.architectures import architecture
from noisecli.what.architectures.base import Architecture

MLM_SEED = 0   # the seed of fixed masks (BERT's) in scoring: the same for every checkpoint


@torch.inference_mode()
def window_losses(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, progress: Reporter | None = None,
                  arch: Architecture | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL and predicted-token count of every window of `tokens` (float64, int64 arrays): the
    units a bootstrap over scored windows resamples. The model's architecture (`arch`, by default the
    one it names) says how windows are cut and what is predicted: a BERT is scored by its masked-LM loss,
    on windows of `block_size` tokens each with the fixed mask of its index (masking.py, seed MLM_SEED),
    the loss taken at the masked positions, which are what the count counts."""
    device = torch.device(device)
    arch = arch or architecture(model.arch)
    span = arch.window(model.config.block_size)
    n_full = len(tokens) // span
    sums, counts, done = [], [], 0

    def score(windows: np.ndarray) -> None:
        nonlocal done
        x, y = arch.inputs(windows.astype(np.int64), MLM_SEED, range(done, done + len(windows)))
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (x, y))
        with autocast(device, dtype):
            _, loss = model(x, y, reduction="none")
        sums.append(arch.sum_per_window(loss, y).cpu().numpy())
        counts.append((y != -100).sum(dim=1).cpu().numpy().astype(np.int64))
        done += len(windows)
        if progress is not None:
            progress.advance(windows.size)

    for i in range(0, n_full, batch_size):
        score(np.stack([tokens[j * span:(j + 1) * span] for j in range(i, min(i + batch_size, n_full))]))
    if len(tokens) - n_full * span >= 2:  # the short last window
        score(np.asarray(tokens[n_full * span:])[None])
    return (np.concatenate(sums), np.concatenate(counts)) if sums else (np.zeros(0), np.zeros(0, np.int64))


def token_file_loss(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float32, progress: Reporter | None = None,
                    arch: Architecture | None = None) -> tuple[float, int]:
    """Exact mean NLL over every predictable token of `tokens`; returns (loss, predicted tokens)."""
    sums, counts = window_losses(model, tokens, batch_size, device, dtype, progress, arch)
    return float(sums.sum() / counts.sum()), int(counts.sum())


@torch.inference_mode()
def token_losses(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> np.ndarray:
    """Each token's NLL under a causal LM, the tokens cut into windows as `window_losses` cuts them; NaN for
    each window's first token, which is predicted from nothing (what `noisecli scan --model` reads)."""
    device = torch.device(device)
    span = model.config.block_size + 1
    out = np.full(len(tokens), np.nan)
    n_full = len(tokens) // span
    groups = [list(range(i, min(i + batch_size, n_full))) for i in range(0, n_full, batch_size)]
    if len(tokens) - n_full * span >= 2:
        groups.append([n_full])                                   # the short last window, alone
    for group in groups:
        w = np.stack([np.asarray(tokens[j * span:(j + 1) * span], np.int64) for j in group])
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (w[:, :-1], w[:, 1:]))
        with autocast(device, dtype):
            _, loss = model(x, y, reduction="none")
        for j, row in zip(group, loss.view(len(group), -1).double().cpu().numpy()):
            out[j * span + 1:j * span + 1 + len(row)] = row
    return out
