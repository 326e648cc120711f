"""Training stacked heads (how/probe/train_heads.py): the vectorised AdamW against torch's, a stacked grid
against models trained alone, and the CPU memory setting it relies on."""

import platform
import subprocess
import sys

import pytest
import torch

from noisecli.how.probe.heads import make_head
from noisecli.how.probe.train_heads import AdamW, train_heads


def test_vectorised_adamw_is_torch_adamw():
    x = torch.randn(32, 10)
    heads = [make_head("linear", 10, 3, [0]) for _ in range(2)]
    ours = AdamW(list(heads[0].parameters()), torch.tensor([3e-3]), 0.1)
    ref = torch.optim.AdamW(heads[1].parameters(), lr=3e-3, weight_decay=0.1)
    for step in range(6):
        for h in heads:
            (h(x).pow(2).mean() + h(x).mean()).backward()
        ours.step(1.0)
        ref.step()
        ref.zero_grad()
    for a, b in zip(heads[0].parameters(), heads[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="a glibc setting")
def test_probe_training_reuses_freed_memory_instead_of_faulting_in_fresh_pages():
    """A step's MB-sized temporaries, freed together. glibc's default maps blocks over 128 KiB afresh (it
    raises that threshold as it goes, by a history that varies from run to run, so the test pins it), and
    each step page-faults them in again; after keep_freed_memory (which probe training applies) none do."""
    script = ("import ctypes, resource, sys, torch\n"
              "from noisecli.how.probe.train_heads import keep_freed_memory\n"
              "ctypes.CDLL(None).mallopt(-3, 128 << 10)\n"                   # M_MMAP_THRESHOLD, its default
              "if sys.argv[1] == 'keep': keep_freed_memory()\n"
              "def step(): [torch.ones(1 << 20) for _ in range(3)]\n"      # three 4 MiB temporaries
              "for _ in range(5): step()\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
              "for _ in range(20): step()\n"
              "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {mode: int(subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                                       check=True).stdout) for mode in ("default", "keep")}
    # at least one fault per temporary per step by default (1,024 with 4 KiB pages), none at all after
    assert faults["default"] >= 20 * 3 and faults["keep"] < 20, faults


@pytest.mark.parametrize("kind,classes,reg", [("mlp", 3, "none"), ("mlp", 3, "lgm"), ("linear", 40, "lgm"),
                                               ("linear", 2, "lgm")])
def test_a_stacked_grid_trains_each_model_as_if_alone(kind, classes, reg):
    g = torch.Generator().manual_seed(1)   # linear with 40 classes: the Gram form; with 2, lgm._binary
    x, y = torch.randn(60, 12, generator=g), torch.randint(0, classes, (60,), generator=g)
    grid = train_heads(x, y, kind, classes, [1e-3, 5e-3], [0, 1], 8, 2, 0.01, reg, 0.05, 0.5)
    alone = train_heads(x, y, kind, classes, [5e-3], [1], 8, 2, 0.01, reg, 0.05, 0.5)
    for a, b in zip(grid.parameters(), alone.parameters()):
        assert torch.allclose(a[3], b[0], atol=1e-6)   # model index = seed index × lrs + lr index
    first = next(grid.parameters())
    assert not torch.allclose(first[0], first[3])
