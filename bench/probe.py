"""Probe training speed: one step of plain CE, LGM by double backprop and noisecli's LGM, and the whole
paper grid on 8,500 × 768 features, in one run.

    python bench/probe.py [--repeats 9] [--skip-grid]

Step: a single head (B = 32), forward + backward + AdamW, for d ∈ {768, 4096}, C ∈ {2, 100}; medians of
interleaved repeats, ratios as medians of within-repeat ratios. Each step starts from the batch t and, for
the two LGM steps, the drawn γδ, and makes what it needs from them (t̂ = t + γδ for double backprop;
noisecli's takes t and t − t̂ = −γδ as they are and writes its gradient in closed form, as
probe.train_heads does). The linear steps' matrix products and the AdamW update are also timed alone.
Grid: lr {3e-4, 6e-4} × batch {8, 12, 16, 32} × 5 seeds × 10 epochs (the paper's NLU grid) on
8,500 × 768 features, linear head, plain and with LGM, through `noisecli.how.probe.command.fit`; the baseline is
the same training done the usual way (torch.optim.AdamW, one model at a time), timed on one of the 40
runs and multiplied by the steps of all of them.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from noisecli.how.lgm import add_fused_gradient, lgm_loss_double_backprop
from noisecli.how.probe.command import Features, ProbeConfig, fit
from noisecli.how.probe.heads import cross_entropy, make_head
from noisecli.how.probe.train_heads import AdamW, keep_freed_memory


def step_times(kind: str, d: int, c: int, repeats: int, b: int = 32) -> dict[str, list[float]]:
    torch.manual_seed(0)
    head = make_head(kind, d, c, [0])
    opt = AdamW(list(head.parameters()), torch.tensor([1e-3]), 0.01)
    x, y = torch.randn(b, d), torch.randint(0, c, (b,))
    offset = -0.01 * torch.randn_like(x)            # t − t̂ = −γδ, drawn beforehand as probe.train_heads does

    def plain():
        cross_entropy(head(x), y).backward()

    def double_backprop():
        x_hat = x - offset
        (cross_entropy(head(x), y) + 0.15 * lgm_loss_double_backprop(head, x, y, x_hat)).backward()

    def noisecli():                                  # probe.train_heads' LGM step
        add_fused_gradient(head, x, offset, y, 0.15)

    steps = {"plain": plain, "double backprop": double_backprop, "noisecli LGM": noisecli}
    n = 3 if (kind, d) == ("mlp", 4096) else 30
    times: dict[str, list[float]] = {k: [] for k in steps}
    for _ in range(repeats):
        for name, gradient in steps.items():
            for _ in range(2):
                gradient()
                opt.step(1.0)
            t = time.perf_counter()
            for _ in range(n):
                gradient()
                opt.step(1.0)
            times[name].append((time.perf_counter() - t) / n)
    return times


def products_floor(d: int, c: int, repeats: int, b: int = 32) -> tuple[float, float, float]:
    """Medians (s) of a linear step's matrix products alone: plain's two (W tᵀ, G t), noisecli LGM's (over
    Y = [t; u], u = t − t̂: W Yᵀ, the norm's, G Y; stacked into one tensor where lgm._linear takes the Gram
    form, else over t and u apart, and two-class heads with one row, as lgm._binary does), and of the
    AdamW update. With the plain step's time, (LGM products + AdamW) / plain step bounds from below what
    LGM/plain could reach if everything else in the LGM step were free."""
    rows = 1 if c == 2 else c
    w, t, off, ys = torch.randn(1, rows, d), torch.randn(1, b, d), torch.randn(1, b, d), torch.randn(1, 2 * b, d)
    g, cf, cf_half = torch.randn(1, rows, b), torch.randn(1, rows, 2 * b), torch.randn(1, rows, b)
    gram = b * (d + rows) < rows * d
    head = make_head("linear", d, c, [0])
    opt = AdamW(list(head.parameters()), torch.tensor([1e-3]), 0.01)

    def plain():
        torch.bmm(w, t.mT), torch.bmm(g, t)

    def lgm():
        if gram:
            torch.bmm(w, ys.mT), torch.bmm(cf, torch.bmm(ys, ys.mT)), torch.bmm(cf, ys)
        else:
            v = torch.bmm(cf_half, t) + torch.bmm(cf_half, off)
            for half in (t, off):
                torch.bmm(w, half.mT), torch.bmm(v, half.mT), torch.bmm(cf_half, half)

    def adamw():
        for p in head.parameters():
            p.grad = torch.ones_like(p)
        opt.step(1.0)

    times: dict = {f: [] for f in (plain, lgm, adamw)}
    for _ in range(repeats):
        for f in times:
            t0 = time.perf_counter()
            for _ in range(20):
                f()
            times[f].append((time.perf_counter() - t0) / 20)
    return tuple(statistics.median(times[f]) for f in (plain, lgm, adamw))


def naive_run_seconds(x, y, classes, lr, bs, epochs, lgm: bool) -> float:
    """One grid run the usual way: nn.Linear, torch.optim.AdamW, a DataLoader-style shuffled loop."""
    torch.manual_seed(0)
    head = torch.nn.Linear(x.shape[1], classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * math.ceil(len(y) / bs))
    t = time.perf_counter()
    for _ in range(epochs):
        for idx in torch.randperm(len(y)).split(bs):
            loss = F.cross_entropy(head(x[idx]), y[idx])
            if lgm:
                params = list(head.parameters())
                xh = x[idx] + 0.01 * torch.randn_like(x[idx])
                g1 = torch.autograd.grad(loss, params, create_graph=True)
                g2 = torch.autograd.grad(F.cross_entropy(head(xh), y[idx]), params, create_graph=True)
                loss = loss + 0.15 * torch.cat([(a - b).flatten() for a, b in zip(g1, g2)]).norm()
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - t


def grid(n: int = 8500, d: int = 768, classes: int = 2) -> None:
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(d, classes, generator=g)
    feats = {}
    for split, size in (("train", n), ("val", n // 10), ("test", n // 4)):
        x = torch.randn(size, d, generator=g)
        feats[split] = (x, (x @ teacher + 2 * torch.randn(size, classes, generator=g)).argmax(1))
    f = Features("synthetic", "synthetic", "synthetic", classes, feats)
    cfg = ProbeConfig(features=[], seeds=5)
    for reg in ("none", "lgm"):
        t = time.perf_counter()
        row = fit(f, "linear", reg, cfg, torch.device("cpu"))["row"]
        ours = time.perf_counter() - t
        one = naive_run_seconds(*feats["train"], classes, 3e-4, 16, 1, reg == "lgm")   # 1 epoch, batch 16
        steps_all = sum(math.ceil(n / bs) for bs in (8, 12, 16, 32)) * 2 * 5 * 10
        naive = one / math.ceil(n / 16) * steps_all
        print(f"paper grid, linear head, {'LGM' if reg == 'lgm' else 'plain CE'}: noisecli {ours:.1f} s "
              f"(40 runs, {steps_all:,} steps; test acc {row['test_acc']:.1f} ± {row['test_std']:.1f}); "
              f"one-model-at-a-time loop ≈ {naive:.1f} s (extrapolated from one epoch); {naive / ours:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--skip-grid", action="store_true")
    args = ap.parse_args()
    # as noisecli's probe training runs (probe.cpu_training: freed memory kept, denormals flushed); the step
    # timings train one head on one batch over and over, so its probabilities soon underflow into denormals
    keep_freed_memory()
    torch.set_flush_denormal(True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print("times: medians over repeats; ratios: medians of the ratios within each repeat (the three steps of a")
    print("repeat run back to back, so a change in machine speed between repeats cancels out)")
    print("head    d     C    plain ms  double-backprop ms  noisecli-LGM ms  LGM/plain  double/plain")
    floors: list = []
    for kind in ("linear", "mlp"):
        for d in (768, 4096):
            for c in (2, 100):
                t = step_times(kind, d, c, args.repeats)
                p, dbl, ours = (statistics.median(t[k]) * 1e3 for k in ("plain", "double backprop", "noisecli LGM"))
                ratio = {k: statistics.median(a / b for a, b in zip(t[k], t["plain"]))
                         for k in ("double backprop", "noisecli LGM")}
                print(f"{kind:6s} {d:5d} {c:4d} {p:10.3f} {dbl:19.3f} {ours:16.3f} {ratio['noisecli LGM']:10.2f}x "
                      f"{ratio['double backprop']:12.2f}x", flush=True)
                if kind == "linear":
                    floors.append((d, c, p, *products_floor(d, c, args.repeats)))
        if kind == "linear":
            print("linear steps' matrix products alone (ms): plain's, LGM's, the AdamW update; the floor is "
                  "(LGM products + AdamW) / plain step")
            for d, c, p, pp, lp, ad in floors:
                print(f"  d {d:5d} C {c:4d}: plain {pp * 1e3:.3f}, LGM {lp * 1e3:.3f}, AdamW {ad * 1e3:.3f}; "
                      f"floor {(lp + ad) * 1e3 / p:.2f}x", flush=True)
    if not args.skip_grid:
        grid()


if __name__ == "__main__":
    main()
