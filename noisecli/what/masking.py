"""BERT's masking (Devlin et al. 2019): 15 % of the tokens are selected; of those 80 % become [MASK], 10 % a
random token and 10 % stay as they are; the loss is taken at the selected positions only.

The mask of a window depends only on (seed, iteration, the window's index in the iteration's global batch):
each window has a generator of its own, so a resumed run, or the same run on more processes, masks every
token identically. Evaluation and eval-ntp use a fixed mask per window (stream 8), the same for every
checkpoint, so losses are comparable across checkpoints and runs.
"""

from __future__ import annotations

import numpy as np

from noisecli.what.architectures.base import IGNORE
from noisecli.what.architectures.bert import MASK_ID
from noisecli.what.tokenizer import VOCAB_SIZE

SELECT, AS_MASK, AS_RANDOM = 0.15, 0.8, 0.1


def mask_window(tokens: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, labels) of one window of token ids; labels are IGNORE where nothing is predicted."""
    tokens = np.asarray(tokens, dtype=np.int64)
    selected = rng.random(tokens.shape) < SELECT
    how = rng.random(tokens.shape)
    random_ids = rng.integers(0, VOCAB_SIZE, tokens.shape)
    inputs = np.where(selected & (how < AS_MASK), MASK_ID,
                      np.where(selected & (how >= AS_MASK) & (how < AS_MASK + AS_RANDOM), random_ids, tokens))
    return inputs, np.where(selected, tokens, IGNORE)


def mask_windows(windows: np.ndarray, keys: tuple[int, ...], indices) -> tuple[np.ndarray, np.ndarray]:
    """Mask each row of `windows` [B, T]: row i with the generator seeded by (*keys, indices[i])."""
    pairs = [mask_window(w, np.random.default_rng(np.random.SeedSequence([*keys, int(index)])))
             for w, index in zip(np.asarray(windows), indices)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def training_keys(seed: int, iteration: int) -> tuple[int, ...]:
    return (seed, 3, iteration)


def evaluation_keys(seed: int) -> tuple[int, ...]:
    return (seed, 8)
