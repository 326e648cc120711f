"""The paper's global batch (491,520 tokens: micro-batch 16 × 30 accumulation × 1024) for --steps optimizer steps
from one initialisation and the same batches, twice through `pretrain`'s step: bf16 autocast compiled (what
`pretrain` runs on a GPU) and eager float32 as `pretrain --dtype float32` runs it on a GPU (TF32 matmuls, which
keep float32's range and a 10-bit mantissa against bf16's 7). Prints both loss curves and their
largest difference; the bf16 curve should follow the float32 one within bf16's tolerance (here: 1 % of the
loss at every step). With --json FILE writes the curves.

    python bench/gpu_curve.py [--steps 20] [--json curve.json]
"""

from __future__ import annotations

import argparse
import json
import time
from types import SimpleNamespace

import numpy as np
import torch

from noisecli.training.steps import make_optimizer, train_step
from noisecli.what.architectures import architecture
from noisecli.what.architectures.gpt import preset
from noisecli.what.models.gpt import GPT

TOLERANCE = 0.01

GPT2 = architecture("gpt")   # its batches and loss


def curve(dtype: torch.dtype, compiled: bool, steps: int, accum: int, data: np.ndarray) -> tuple[list[float], float]:
    dev = torch.device("cuda")
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True   # as pretrain sets them
    torch.manual_seed(0)
    mcfg = preset("gpt2-124m")
    model = GPT(mcfg).to(dev)
    opt = make_optimizer(model, 6e-4, 0.1, (0.9, 0.95), dev)
    run = torch.compile(model) if compiled else model
    cfg = SimpleNamespace(batch_size=16, grad_accum=accum, seed=0)
    losses, t0 = [], time.perf_counter()
    for it in range(steps):
        for g in opt.param_groups:   # the paper's warm-up shape, short: linear to 6e-4 over the steps
            g["lr"] = 6e-4 * (it + 1) / steps
        batches = (GPT2.batch(data, it, m, cfg, mcfg.block_size, dev) for m in range(accum))
        losses.append(train_step(run, opt, batches, accum, 1.0, dev, dtype, GPT2.loss).item())
    return losses, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--accum", type=int, default=30)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    data = np.random.default_rng(0).integers(0, 50257, size=50_000_000).astype(np.uint16)
    bf16, t_bf16 = curve(torch.bfloat16, True, args.steps, args.accum, data)
    fp32, t_fp32 = curve(torch.float32, False, args.steps, args.accum, data)
    rel = [abs(a - b) / b for a, b in zip(bf16, fp32)]
    result = {"steps": args.steps, "tokens_per_step": 16 * args.accum * 1024, "bf16_compiled": bf16,
              "float32_eager": fp32, "max_relative_difference": max(rel), "tolerance": TOLERANCE,
              "within_tolerance": max(rel) <= TOLERANCE, "seconds": {"bf16": round(t_bf16, 1), "float32": round(t_fp32, 1)}}
    for i, (a, b) in enumerate(zip(bf16, fp32)):
        print(f"step {i + 1:3d}  bf16 {a:.4f}  float32 {b:.4f}  rel. diff {abs(a - b) / b:.2%}")
    print(json.dumps({k: v for k, v in result.items() if k not in ("bf16_compiled", "float32_eager")}))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
