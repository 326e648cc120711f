"""How stable is a reproduce budget across training seeds? Trains the budget's clean run at several seeds
(exactly its `pretrain` config, two at a time on one thread each, as `reproduce` does) and scores each final
checkpoint on the first --eval-tokens clean validation tokens, as eval-ntp does for the findings: the
losses, their spread (max − min and sample std), and each seed's margin to the unigram cross-entropy of
the same tokens (the findings' gate asks ≥ 1 nat for every seed).

    python bench/seeds.py [--budget small] [--seeds 1337,1338,1339] [--lr 4e-3] [--warmup 50] [--iters 900]
                          [--out results/bench-seeds]

Overrides (--lr, --min-lr, --warmup, --iters) try another setting; the run folders are kept, so a rerun
with the same settings resumes or reuses them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def main() -> None:
    from noisecli.core import stats
    from noisecli.paper.reproduce import BUDGETS, ReproduceConfig, _pretrain_together, budget_scale
    from noisecli.what.architectures import architecture, load_model
    from noisecli.what.prepare import PrepareConfig, prepare
    from noisecli.what.pretrain import PretrainConfig
    from noisecli.what.scoring import token_file_loss
    from noisecli.what.token_files import token_counts

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", default="small")
    ap.add_argument("--seeds", default="1337,1338,1339")
    ap.add_argument("--lr", type=float)
    ap.add_argument("--min-lr", type=float)
    ap.add_argument("--warmup", type=int)
    ap.add_argument("--iters", type=int)
    ap.add_argument("--eval-tokens", type=int)
    ap.add_argument("--out", type=Path, default=Path("results/bench-seeds"))
    args = ap.parse_args()
    b = BUDGETS[args.budget]
    scale = budget_scale(ReproduceConfig(out=args.out, budget=args.budget, device="cpu"), b)
    clean = args.out / "data" / "clean"
    if not (clean / "meta.json").is_file():
        prepare(PrepareConfig(**scale.sources["en"], out=clean))
    settings = dict(scale.pretrain)
    for key, value in (("lr", args.lr), ("min_lr", args.min_lr), ("warmup_iters", args.warmup),
                       ("max_iters", args.iters)):
        if value is not None:
            settings[key] = value
    if args.iters is not None:
        settings["eval_every"] = settings["save_every"] = max(1, args.iters // 3)
    tag = f"lr{settings.get('lr')}_w{settings['warmup_iters']}_i{settings['max_iters']}"
    seeds = [int(s) for s in args.seeds.split(",")]
    configs = [PretrainConfig(data=clean, out=args.out / "runs" / tag / f"seed{s}", seed=s, **settings) for s in seeds]
    t0 = time.perf_counter()
    for i in range(0, len(configs), b.side_by_side):
        _pretrain_together(configs[i:i + b.side_by_side])
    train_s = time.perf_counter() - t0
    n = args.eval_tokens or b.eval_tokens
    val = np.fromfile(clean / "val.bin", dtype=np.uint16)[:n]
    rows = []
    for c in configs:
        model, info = load_model(c.out, "cpu")
        loss, _ = token_file_loss(model, val, 8, "cpu")
        rows.append({"seed": c.seed, "iter": info["iter"], "loss": loss})
    block = json.loads((configs[0].out / "run.json").read_text())["model"]["block_size"]
    train = token_counts(clean / "train.bin")
    unigram = stats.unigram_cross_entropy(train, np.bincount(architecture("gpt").scored_tokens(val, block), minlength=len(train)))
    losses = [r["loss"] for r in rows]
    result = {"budget": args.budget, "settings": {k: settings[k] for k in ("lr", "min_lr", "warmup_iters", "max_iters")
                                                  if k in settings},
              "eval_tokens": n, "unigram": unigram, "runs": rows, "range": max(losses) - min(losses),
              "std": float(np.std(losses, ddof=1)) if len(losses) > 1 else None,
              "margins": [unigram - x for x in losses], "train_seconds": round(train_s, 1)}
    print(json.dumps(result, indent=2))
    (args.out / f"{tag}.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
