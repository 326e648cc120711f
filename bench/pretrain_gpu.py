"""GPU training throughput and MFU of a preset (default gpt2-124m, context 1024, bf16) through the exact step
`pretrain` runs (training/steps.train_step: accumulation, clipping, fused AdamW), one lever at a time:

    --compile none|default|max-autotune-no-cudagraphs|reduce-overhead   (reduce-overhead: CUDA graphs)
    --batch-size 16|32|64 with --grad-accum (default: the paper's 491,520 tokens per step, rounded up)
    --sdpa auto|flash|cudnn|efficient|math     scaled_dot_product_attention's kernel
    --no-fused-adamw                           AdamW's foreach path instead of the fused kernel

MFU counts 6N + attention FLOPs per token (GPT.flops_per_token, as nanoGPT and llm.c do), against the dense
bf16 spec peak (989 TFLOP/s for H100 and H200) and against an 8192³ bf16 matmul measured in the same process.
With --json FILE one row is appended: preset, configuration, tokens_per_s, mfu_spec_peak, mfu_measured_peak
(fractions), peak memory, device, torch version, date.

    python bench/pretrain_gpu.py [--preset gpt2-124m] [--steps 3] [--warmup 2] [--json rows.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import time
from types import SimpleNamespace

import numpy as np
import torch

from noisecli.training.steps import make_optimizer, matmul_peak, peak_flops, train_step
from noisecli.what.architectures import architecture
from noisecli.what.architectures.gpt import preset
from noisecli.what.models.gpt import GPT

PAPER_TOKENS_PER_STEP = 491_520     # the global batch: 480 sequences of 1024 tokens

GPT2 = architecture("gpt")   # its batches and loss


def sdpa_context(kind: str):
    if kind == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel
    return sdpa_kernel({"flash": SDPBackend.FLASH_ATTENTION, "cudnn": SDPBackend.CUDNN_ATTENTION,
                        "efficient": SDPBackend.EFFICIENT_ATTENTION, "math": SDPBackend.MATH}[kind])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="gpt2-124m")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--grad-accum", type=int, default=None)
    ap.add_argument("--steps", type=int, default=3, help="timed optimizer steps")
    ap.add_argument("--warmup", type=int, default=2, help="untimed steps first (compilation happens here)")
    ap.add_argument("--compile", default="default",
                    choices=["none", "default", "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune"])
    ap.add_argument("--sdpa", default="auto", choices=["auto", "flash", "cudnn", "efficient", "math"])
    ap.add_argument("--no-fused-adamw", action="store_true")
    ap.add_argument("--json", default=None, help="append the row to this JSONL file")
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = peak_flops(dev, torch.bfloat16)
    measured = matmul_peak(torch.bfloat16, dev, n=8192, repeats=10)
    torch.manual_seed(0)
    mcfg = preset(args.preset)
    accum = args.grad_accum or math.ceil(PAPER_TOKENS_PER_STEP / (args.batch_size * mcfg.block_size))
    model = GPT(mcfg).to(dev)
    opt = make_optimizer(model, 6e-4, 0.1, (0.9, 0.95), dev)
    if args.no_fused_adamw:
        groups = [{"params": g["params"], "weight_decay": g["weight_decay"]} for g in opt.param_groups]
        opt = torch.optim.AdamW(groups, lr=6e-4, betas=(0.9, 0.95), fused=False, foreach=True)
    step_model = model if args.compile == "none" else torch.compile(
        model, mode=None if args.compile == "default" else args.compile)
    data = np.random.default_rng(0).integers(0, 50257, size=20_000_000).astype(np.uint16)
    cfg = SimpleNamespace(batch_size=args.batch_size, grad_accum=accum, seed=0)

    def step(it: int) -> torch.Tensor:
        batches = [GPT2.batch(data, it, m, cfg, mcfg.block_size, dev) for m in range(accum)]
        return train_step(step_model, opt, batches, accum, 1.0, dev, torch.bfloat16, GPT2.loss)
    with sdpa_context(args.sdpa):
        t0 = time.perf_counter()
        for it in range(args.warmup):
            step(it)
        torch.cuda.synchronize()
        warm = time.perf_counter() - t0
        torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        for it in range(args.warmup, args.warmup + args.steps):
            loss = step(it)
        torch.cuda.synchronize()
        dt = time.perf_counter() - t0
    tps = args.steps * accum * args.batch_size * mcfg.block_size / dt
    fpt = model.flops_per_token()
    config = (f"compile={args.compile}, micro-batch {args.batch_size} x {accum} accumulation, sdpa={args.sdpa}, "
              f"adamw={'foreach' if args.no_fused_adamw else 'fused'}, bf16")
    row = {"preset": args.preset, "configuration": config, "tokens_per_s": round(tps),
           "mfu_spec_peak": round(tps * fpt / peak, 4) if peak else None,
           "mfu_measured_peak": round(tps * fpt / measured, 4), "peak_memory_gib": round(
               torch.cuda.max_memory_allocated() / 2**30, 2), "step_s": round(dt / args.steps, 3),
           "warmup_s": round(warm, 1), "last_loss": round(loss.item(), 4), "device": torch.cuda.get_device_name(dev),
           "spec_peak_tflops": (peak or 0) / 1e12, "measured_peak_tflops": round(measured / 1e12),
           "torch": torch.__version__, "date": datetime.date.today().isoformat()}
    print(json.dumps(row))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
