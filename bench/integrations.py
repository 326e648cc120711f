"""Benchmark LGM where people already train (issue #29), each against its baseline in the same run:

1. `LGMClassifier.fit` against `noisecli probe` for one model on the same features (MiniLM features of
   the embedded movie task, written once by `extract`): probe with one seed and one grid point, without
   and with `--lgm` (one and two models), against fit(lam=0) and fit(lam=0) + fit(lam=0.15). probe's time
   is its whole call (reading the features, training, writing its tables), as a user sees it.
2. One `Trainer` training step (forward, backward, AdamW) of MiniLM with `LGMTrainer` at λ = 0.15
   against λ = 0 (the plain Trainer's loss), on the same batch, interleaved round by round.

Medians of --repeats rounds. Goals: fit within 1.5x of probe; the Trainer step with LGM within 1.3x.

    python bench/integrations.py [--repeats 7] [--limit 1000] [--batch 16] [--tokens 64]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"


def machine() -> str:
    import torch
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    return f"{cpu}, {os.cpu_count()} cores; torch {torch.__version__}, {torch.get_num_threads()} threads"


def sklearn_vs_probe(repeats: int, limit: int, work: Path) -> None:
    from noisecli.how.extract import ExtractConfig, extract, read_split
    from noisecli.how.probe.command import ProbeConfig, probe
    from noisecli.sklearn import LGMClassifier
    feats = work / "movie"
    extract(ExtractConfig(backbone=MINILM, task="movie", limit=limit, out=feats))
    x, y = (t.numpy() for t in read_split(feats / "train.safetensors")[:2])
    print(f"\n1. LGMClassifier.fit vs noisecli probe: MiniLM movie features, {len(y)} train samples x {x.shape[1]}, "
          "linear head, lr 1e-3, batch 32, 10 epochs, one seed")
    settings = dict(lr=1e-3, batch_size=32, epochs=10, weight_decay=0.01)
    runs = {
        "probe (baseline)": lambda i: probe(ProbeConfig(features=[feats], out=work / f"p{i}", seeds=1, lr=[1e-3],
                                                        batch_size=[32], epochs=10)),
        "LGMClassifier lam=0": lambda i: LGMClassifier(lam=0.0, random_state=0, **settings).fit(x, y),
        "probe --lgm (baseline + lgm)": lambda i: probe(ProbeConfig(features=[feats], out=work / f"q{i}", seeds=1,
                                                                    lr=[1e-3], batch_size=[32], epochs=10, lgm=True)),
        "LGMClassifier lam=0 + lam=0.15": lambda i: [LGMClassifier(lam=lam, random_state=0, **settings).fit(x, y)
                                                     for lam in (0.0, 0.15)],
    }
    times: dict = {k: [] for k in runs}
    for i in range(repeats + 1):
        for k, run in runs.items():
            t0 = time.perf_counter()
            run(i)
            if i:                                   # round 0 warms up
                times[k].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    names = list(runs)
    for base, ours in ((names[0], names[1]), (names[2], names[3])):
        print(f"   {base:32s} {med[base] * 1e3:8.1f} ms")
        print(f"   {ours:32s} {med[ours] * 1e3:8.1f} ms   {med[ours] / med[base]:.2f}x of probe")


def trainer_step(repeats: int, batch_size: int, tokens: int, work: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    from noisecli.core.hub import hf_location
    from noisecli.hf import LGMTrainer, LGMTrainingArguments
    hf_logging.set_verbosity_error()
    where = hf_location(MINILM[3:])[0]
    g = torch.Generator().manual_seed(0)
    batch = {"input_ids": torch.randint(1000, 20000, (batch_size, tokens), generator=g),
             "attention_mask": torch.ones(batch_size, tokens, dtype=torch.long),
             "labels": torch.randint(0, 2, (batch_size,), generator=g)}
    print(f"\n2. Trainer step (forward, backward, AdamW), MiniLM, batch {batch_size} x {tokens} tokens")
    trainers = {}
    for lam in (0.0, 0.15):
        torch.manual_seed(0)
        model = AutoModelForSequenceClassification.from_pretrained(where, num_labels=2)
        args = LGMTrainingArguments(output_dir=str(work / f"t{lam}"), report_to="none", use_cpu=True,
                                    learning_rate=1e-9, lgm_lambda=lam, max_steps=1)
        tr = LGMTrainer(model=model, args=args)
        tr.create_optimizer_and_scheduler(num_training_steps=1000)
        tr.current_gradient_accumulation_steps = 1     # what train() sets before its steps
        trainers[lam] = tr
    times: dict = {lam: [] for lam in trainers}
    for i in range(repeats + 1):
        for lam, tr in trainers.items():
            tr.model.train()
            t0 = time.perf_counter()
            tr.training_step(tr.model, dict(batch))
            tr.optimizer.step()
            tr.optimizer.zero_grad()
            if i:
                times[lam].append(time.perf_counter() - t0)
    plain, lgm = (statistics.median(times[k]) for k in (0.0, 0.15))
    print(f"   Trainer (λ = 0)          {plain * 1e3:8.1f} ms")
    print(f"   LGMTrainer (λ = 0.15)    {lgm * 1e3:8.1f} ms   {lgm / plain:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--limit", type=int, default=1000, help="samples per split of the movie task")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    print(f"machine: {machine()}; medians of {args.repeats} rounds")
    with tempfile.TemporaryDirectory() as tmp:
        sklearn_vs_probe(args.repeats, args.limit, Path(tmp))
        trainer_step(args.repeats, args.batch, args.tokens, Path(tmp))


if __name__ == "__main__":
    main()
