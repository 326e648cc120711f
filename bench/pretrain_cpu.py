"""CPU training throughput of the `tiny` preset (micro-batch 16, accumulation 1, context 128) with the
exact step `pretrain` runs, and the machine's matmul peak (fp32, bf16) measured in the same run.

    python bench/pretrain_cpu.py [--iters 20] [--warmup 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from types import SimpleNamespace

import numpy as np
import torch

from noisecli.training.steps import make_optimizer, matmul_peak, train_step
from noisecli.what.architectures import architecture
from noisecli.what.architectures.gpt import preset
from noisecli.what.models.gpt import GPT

GPT2 = architecture("gpt")   # its batches and loss


def tokens_per_s(dtype: torch.dtype, iters: int, warmup: int, compile: bool, fused: bool = True) -> float:
    torch.manual_seed(0)
    GPT.fused_loss = fused
    mcfg = preset("tiny")
    model = GPT(mcfg)
    opt = make_optimizer(model, 6e-4, 0.1, (0.9, 0.95), torch.device("cpu"))
    if not fused:  # nanoGPT fuses AdamW only on CUDA: its CPU step uses the foreach implementation
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in opt.param_groups]
        opt = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=False)
        assert not opt.param_groups[0]["fused"]
    step_model = torch.compile(model) if compile else model
    data = np.random.default_rng(0).integers(0, 50257, size=2_000_000).astype(np.uint16)
    cfg = SimpleNamespace(batch_size=16, grad_accum=1, seed=0)
    dev = torch.device("cpu")
    for it in range(warmup):
        train_step(step_model, opt, [GPT2.batch(data, it, 0, cfg, mcfg.block_size, dev)], 1, 1.0, dev, dtype, GPT2.loss)
    t = time.perf_counter()
    for it in range(iters):
        train_step(step_model, opt, [GPT2.batch(data, it, 0, cfg, mcfg.block_size, dev)], 1, 1.0, dev, dtype, GPT2.loss)
    return iters * 16 * mcfg.block_size / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--iters", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--no-bf16", action="store_true", help="skip the bf16-autocast row (slow on CPUs without bf16)")
    args = ap.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"threads {torch.get_num_threads()}")
    cpu = torch.device("cpu")
    peaks = {name: statistics.median(matmul_peak(dt, cpu, n=1024, repeats=5) for _ in range(3))
             for name, dt in (("float32", torch.float32), ("bfloat16", torch.bfloat16))}
    flops_per_token = GPT(preset("tiny")).flops_per_token()
    print(f"matmul peak (1024^3): fp32 {peaks['float32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bfloat16'] / 1e9:.0f} GFLOP/s")
    print(f"tiny: {flops_per_token / 1e6:.1f} MFLOP per token (6N + attention)")
    print(f"micro-batch 16 x context 128, accumulation 1; medians of {args.repeats} runs of {args.iters} iterations")
    print("| step | tokens/s (median, ratio to baseline) | achieved GFLOP/s | fraction of fp32 peak | fraction of bf16 peak |")
    print("|---|---|---|---|---|")
    rows = (("baseline: nanoGPT-style step (full logits, foreach AdamW), float32", torch.float32, False),
            ("noisecli step (chunked LM-head loss, fused AdamW), float32", torch.float32, True),
            ("noisecli step, bfloat16 autocast", torch.bfloat16, True))[:2 if args.no_bf16 else 3]
    results = {name: [] for name, _, _ in rows}
    for _ in range(args.repeats):  # interleaved, so drift in machine speed hits every row alike
        for name, dt, fused in rows:
            results[name].append(tokens_per_s(dt, args.iters, args.warmup, args.compile, fused))
    base = statistics.median(results[rows[0][0]])
    for name, _, _ in rows:
        tps = statistics.median(results[name])
        achieved = tps * flops_per_token
        print(f"| {name}{' (compiled)' if args.compile else ''} | {tps:,.0f} ({tps / base:.2f}x) | "
              f"{achieved / 1e9:.0f} | {achieved / peaks['float32']:.0%} | {achieved / peaks['bfloat16']:.0%} |")


if __name__ == "__main__":
    main()
