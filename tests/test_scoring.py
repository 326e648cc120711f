"""Exact scoring of a model on a token file (what/scoring.py) against a plain loop."""

import numpy as np
import torch
import torch.nn.functional as F

from noisecli.what.gpt import GPT, GPTConfig
from noisecli.what.scoring import token_file_loss


def test_exact_loss_matches_a_plain_loop():
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)).eval()
    tokens = np.random.default_rng(0).integers(0, 50257, size=16 * 5 + 7 + 9).astype(np.uint16)  # partial last window
    loss, count = token_file_loss(model, tokens, batch_size=2)
    total, n = 0.0, 0
    for s in range(0, len(tokens) - 1, 17):  # windows of context + 1 tokens, not overlapping
        w = torch.from_numpy(tokens[s:s + 17].astype(np.int64))[None]
        with torch.no_grad():
            logits = model(w[:, :-1])[0]
        total += F.cross_entropy(logits[0].double(), w[0, 1:], reduction="sum").item()
        n += w.shape[1] - 1
    assert count == n == len(tokens) - 6  # one unpredicted first token per window (6 windows)
    assert abs(loss - total / n) < 1e-5


def test_predicted_tokens_are_the_scored_ones():
    """The unigram baseline of the findings is scored on exactly the tokens eval-ntp predicts."""
    from noisecli.what.scoring import predicted_tokens, window_losses
    tokens = np.arange(17 * 3 + 5, dtype=np.uint16)
    got = predicted_tokens(tokens, 17)
    assert len(got) == len(tokens) - 4 and 0 not in got and 17 not in got and 51 not in got and 52 in got
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)).eval()
    assert window_losses(model, tokens)[1].sum() == len(got)
