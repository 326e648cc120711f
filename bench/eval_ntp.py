"""Forward-only scoring speed of `eval-ntp` against the training step of the same preset, in one run.

    python bench/eval_ntp.py [--preset tiny] [--tokens 200000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch

from bench.pretrain_cpu import tokens_per_s as train_tokens_per_s
from noisecli.what.architectures.gpt import preset
from noisecli.what.models.gpt import GPT
from noisecli.what.scoring import token_file_loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--tokens", type=int, default=200_000)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}")
    torch.manual_seed(0)
    model = GPT(preset(args.preset)).eval()
    tokens = np.random.default_rng(0).integers(0, 50257, size=args.tokens).astype(np.uint16)
    evals, trains = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        _, count = token_file_loss(model, tokens, args.batch_size)
        evals.append(len(tokens) / (time.perf_counter() - t))
        trains.append(train_tokens_per_s(torch.float32, iters=8, warmup=2, compile=False))
    e, tr = statistics.median(evals), statistics.median(trains)
    print(f"{args.preset}, float32, batch {args.batch_size}: eval-ntp {e:,.0f} tokens/s, training step "
          f"{tr:,.0f} tokens/s (micro-batch 16); ratio {e / tr:.2f}x (medians of {args.repeats})")


if __name__ == "__main__":
    main()
