"""Benchmark one full fine-tuning step (forward, backward, AdamW) of `noisecli finetune` with each
regulariser, alone and with LGM, against plain fine-tuning measured side by side in the same run: the
same encoder, batch and thread count, methods interleaved round by round so that drift on a noisy
machine hits them all alike. Reported: the median step time over --repeats rounds, and its ratio to
plain fine-tuning's median (the issue's goal: LGM adds at most 1.3x).

    python bench/finetune.py [--model hf:sentence-transformers/all-MiniLM-L6-v2] [--batch 16] [--tokens 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import torch


def main() -> None:
    from noisecli.how.finetune.command import load_encoder
    from noisecli.how.finetune.model import FineTuneModel, Objective
    from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS, make_finetune_regulariser
    from noisecli.training.steps import make_optimizer, train_step

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="hf:sentence-transformers/all-MiniLM-L6-v2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    device = torch.device(args.device)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{cpu}, {os.cpu_count()} cores"
    print(f"machine: {name}; torch {torch.__version__}, {torch.get_num_threads()} threads; {args.model}, "
          f"batch {args.batch} x {args.tokens} tokens; median of {args.repeats} rounds")
    encoder, _ = load_encoder(args.model)
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (args.batch, args.tokens), generator=g),
             "attention_mask": torch.ones(args.batch, args.tokens, dtype=torch.long),
             "labels": torch.randint(0, 2, (args.batch,), generator=g)}
    batch = {k: v.to(device) for k, v in batch.items()}
    methods = [(r, lgm) for r in FINETUNE_REGULARISERS.names() for lgm in (False, True)]
    setups = {}
    for reg_name, lgm in methods:
        torch.manual_seed(0)
        model = FineTuneModel(encoder, 2).to(device).train()   # one shared encoder: the weights' values do not matter
        reg = make_finetune_regulariser(reg_name)
        reg.setup(model)
        model.objective = Objective(reg, lgm)
        setups[(reg_name, lgm)] = (model, make_optimizer(model, 1e-9, 0.0, (0.9, 0.999), device), reg)
    times: dict = {m: [] for m in methods}
    for round_ in range(args.repeats + 1):
        for m in methods:
            model, opt, reg = setups[m]
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            train_step(model, opt, [batch], 1, 1.0, device, torch.float32, lambda mod, b: mod(b))
            reg.after_step(model)
            if device.type == "cuda":
                torch.cuda.synchronize()
            if round_ > 0:   # the first round warms up
                times[m].append(time.perf_counter() - t0)
    plain = statistics.median(times[("none", False)])
    print(f"{'method':<12} {'step (ms)':>10} {'vs plain':>9}   {'+LGM (ms)':>10} {'vs plain':>9} {'LGM adds':>9}")
    for r in FINETUNE_REGULARISERS.names():
        a, b = statistics.median(times[(r, False)]), statistics.median(times[(r, True)])
        print(f"{r:<12} {a * 1e3:>10.1f} {a / plain:>8.2f}x   {b * 1e3:>10.1f} {b / plain:>8.2f}x {b / a:>8.2f}x")


if __name__ == "__main__":
    main()
