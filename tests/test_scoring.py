"""Exact scoring of a model on a token file (what/scoring.py) against a plain loop."""

import numpy as np
import torch
import torch.nn.functional as F

from noisecli.what.models.gpt import GPT, GPTConfig
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
    from noisecli.what.architectures import architecture
    from noisecli.what.scoring import window_losses
    tokens = np.arange(17 * 3 + 5, dtype=np.uint16)
    got = architecture("gpt").scored_tokens(tokens, 16)
    assert len(got) == len(tokens) - 4 and 0 not in got and 17 not in got and 51 not in got and 52 in got
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)).eval()
    assert window_losses(model, tokens)[1].sum() == len(got)


def test_bert_is_scored_by_its_masked_lm_loss_with_fixed_masks():
    from noisecli.what.architectures.bert import BertModelConfig
    from noisecli.what.masking import evaluation_keys, mask_window
    from noisecli.what.models.bert import BERT
    from noisecli.what.scoring import MLM_SEED, window_losses
    torch.manual_seed(0)
    model = BERT(BertModelConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)).eval()
    tokens = np.random.default_rng(0).integers(0, 50257, 16 * 5 + 7)
    sums, counts = window_losses(model, tokens, batch_size=2)
    assert len(sums) == 6                                       # five full windows of 16 tokens and a short one
    for j, start in enumerate(range(0, len(tokens), 16)):       # a plain loop, full logits from transformers
        x, y = mask_window(tokens[start:start + 16], np.random.default_rng(
            np.random.SeedSequence([*evaluation_keys(MLM_SEED), j])))
        with torch.no_grad():
            logits = model.mlm(input_ids=torch.from_numpy(x)[None]).logits[0]
        picked = torch.from_numpy(y) != -100
        want = F.cross_entropy(logits[picked].double(), torch.from_numpy(y)[picked], reduction="sum").item()
        assert counts[j] == int(picked.sum()) and abs(sums[j] - want) < 1e-4 * max(1.0, abs(want))
    from noisecli.what.architectures import architecture
    assert len(architecture("bert").scored_tokens(tokens, 16)) == counts.sum()    # the baseline's tokens are the scored ones
    again = window_losses(model, tokens, batch_size=4)           # the masks do not depend on the batching
    assert np.allclose(again[0], sums, rtol=1e-5) and np.array_equal(again[1], counts)
