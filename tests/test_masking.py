"""BERT's masking (what/masking.py): the 15 % / 80-10-10 recipe, and masks that depend only on (seed,
iteration, window index), so resumed and multi-process runs mask identically."""

import numpy as np

from noisecli.what.architectures.bert import MASK_ID
from noisecli.what.masking import evaluation_keys, mask_window, mask_windows, training_keys
from noisecli.what.tokenizer import encode
from tests.conftest import wiki_docs


def test_the_recipe_15_percent_then_80_10_10():
    tokens = np.concatenate([encode(d) for d in wiki_docs("en", 400)]).astype(np.int64)[:200_000]
    inputs, labels = mask_window(tokens, np.random.default_rng(0))
    selected = labels != -100
    assert abs(selected.mean() - 0.15) < 0.003
    assert np.array_equal(labels[selected], tokens[selected])        # the label is the original token
    assert np.array_equal(inputs[~selected], tokens[~selected])      # unselected tokens are untouched
    masked, kept = inputs[selected] == MASK_ID, inputs[selected] == tokens[selected]
    replaced = ~masked & ~kept
    assert abs(masked.mean() - 0.8) < 0.01 and abs(replaced.mean() - 0.1) < 0.01
    assert abs(kept.mean() - 0.1) < 0.01                             # (a random draw equal to the token: rare)
    assert inputs.max() <= MASK_ID and (inputs[selected][replaced] < MASK_ID).all()


def test_a_windows_mask_depends_only_on_seed_iteration_and_index():
    g = np.random.default_rng(1)
    windows = g.integers(0, 50257, (6, 64))
    a = mask_windows(windows, training_keys(7, 3), range(6))
    b = mask_windows(windows[2:4], training_keys(7, 3), range(2, 4))   # another process's share
    assert np.array_equal(a[0][2:4], b[0]) and np.array_equal(a[1][2:4], b[1])
    assert not np.array_equal(a[1], mask_windows(windows, training_keys(7, 4), range(6))[1])   # next iteration
    assert not np.array_equal(a[1], mask_windows(windows, training_keys(8, 3), range(6))[1])   # another seed
    assert training_keys(7, 3) != evaluation_keys(7)
