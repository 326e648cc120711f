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

MLM_SEED = 0   # the seed of the fixed masks BERT checkpoints are scored with (the same for every checkpoint)


@torch.inference_mode()
def window_losses(model, tokens: np.ndarray, batch_size: int = 8, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32, progress: Reporter | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL and predicted-token count of every window of `tokens` (float64, int64 arrays): the
    units a bootstrap over scored windows resamples. A BERT (`arch` "bert") is scored by its masked-LM
    loss instead: windows of `block_size` tokens, each with the fixed mask of its index (masking.py,
    seed MLM_SEED), the loss taken at the masked positions, which are what the count counts."""
    device = torch.device(device)
    mlm = getattr(model, "arch", "gpt") == "bert"
    span = model.config.block_size + (0 if mlm else 1)
    n_full = len(tokens) // span
    sums, counts, done = [], [], 0

    def score(windows: np.ndarray) -> None:
        nonlocal done
        windows = windows.astype(np.int64)
        if mlm:
            from noisecli.what.masking import evaluation_keys, mask_windows
            x, y = mask_windows(windows, evaluation_keys(MLM_SEED), range(done, done + len(windows)))
        else:
            x, y = windows[:, :-1], windows[:, 1:]
        x, y = (torch.from_numpy(np.ascontiguousarray(a)).to(device) for a in (x, y))
        with autocast(device, dtype):
            _, loss = model(x, y, reduction="none")
        if mlm:   # one loss per masked position, in row order: add them up per window
            picked = y != -100
            per_window = torch.zeros(len(y), dtype=torch.float64, device=loss.device)
            per_window.index_add_(0, torch.nonzero(picked)[:, 0], loss.double())
            counts.append(picked.sum(dim=1).cpu().numpy().astype(np.int64))
        else:
            per_window = loss.view(len(y), -1).double().sum(dim=1)
            counts.append(np.full(len(y), y.shape[1], np.int64))
        sums.append(per_window.cpu().numpy())
        done += len(windows)
        if progress is not None:
            progress.advance(windows.size)

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


def mlm_scored_tokens(tokens: np.ndarray, block: int) -> np.ndarray:
    """The tokens `window_losses` scores for a BERT, in order: in each window of `block` tokens, those its
    fixed mask selects (so a baseline is scored on exactly the tokens the model was)."""
    from noisecli.what.masking import evaluation_keys, mask_window
    tokens, out = np.asarray(tokens), []
    for j, start in enumerate(range(0, len(tokens), block)):
        window = tokens[start:start + block]
        if len(window) < 2:
            break
        labels = mask_window(window, np.random.default_rng(np.random.SeedSequence([*evaluation_keys(MLM_SEED), j])))[1]
        out.append(labels[labels != -100])
    return np.concatenate(out) if out else np.zeros(0, np.int64)


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
