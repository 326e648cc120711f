"""GPU training throughput and MFU of a preset (default gpt2-124m, micro-batch 16, context 1024, bf16,
compiled) with the exact step `pretrain` runs. MFU is relative to the GPU's dense bf16 peak.

    python bench/pretrain_gpu.py [--preset gpt2-124m] [--iters 30] [--warmup 10] [--no-compile | --compile-mode M]
"""

from __future__ import annotations

import argparse
import time
from types import SimpleNamespace

import numpy as np
import torch

from noisecli.training.steps import make_optimizer, matmul_peak, peak_flops, train_step
from noisecli.what.gpt import GPT
from noisecli.what.gpt_config import preset
from noisecli.what.windows import get_batch, lm_loss


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="gpt2-124m")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--no-compile", action="store_true")
    ap.add_argument("--compile-mode", default=None,
                    help="torch.compile mode (default, reduce-overhead, max-autotune, max-autotune-no-cudagraphs)")
    args = ap.parse_args()
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    peak = peak_flops(dev, torch.bfloat16)
    measured = matmul_peak(torch.bfloat16, dev, n=8192, repeats=10)
    print(f"device: {torch.cuda.get_device_name(dev)}, torch {torch.__version__}; spec bf16 peak "
          f"{(peak or 0) / 1e12:.0f} TFLOP/s, measured 8192^3 bf16 matmul {measured / 1e12:.0f} TFLOP/s")
    torch.manual_seed(0)
    mcfg = preset(args.preset)
    model = GPT(mcfg).to(dev)
    opt = make_optimizer(model, 6e-4, 0.1, (0.9, 0.95), dev)
    step_model = model if args.no_compile else torch.compile(model, mode=args.compile_mode)
    data = np.random.default_rng(0).integers(0, 50257, size=20_000_000).astype(np.uint16)
    cfg = SimpleNamespace(batch_size=args.batch_size, grad_accum=1, seed=0)
    t0 = time.perf_counter()
    for it in range(args.warmup):
        train_step(step_model, opt, [get_batch(data, it, 0, cfg, mcfg.block_size, dev)], 1, 1.0, dev, torch.bfloat16, lm_loss)
    torch.cuda.synchronize()
    print(f"warm-up ({args.warmup} iterations, compile included): {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    for it in range(args.iters):
        loss = train_step(step_model, opt, [get_batch(data, it, 0, cfg, mcfg.block_size, dev)], 1, 1.0, dev,
                          torch.bfloat16, lm_loss)
    torch.cuda.synchronize()
    dt = time.perf_counter() - t0
    tps = args.iters * args.batch_size * mcfg.block_size / dt
    mode = "eager" if args.no_compile else f"compiled ({args.compile_mode or 'default'})"
    fpt = model.flops_per_token()
    print(f"{args.preset}: micro-batch {args.batch_size} x {mcfg.block_size}, bf16, "
          f"{mode}: {tps:,.0f} tokens/s, {dt / args.iters * 1000:.1f} ms/iter, "
          f"MFU {tps * fpt / peak:.1%} of spec peak ({tps * fpt / measured:.1%} of measured matmul peak); "
          f"last loss {loss.item():.3f}; max memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
