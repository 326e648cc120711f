"""Benchmark `prepare` end to end (read, tokenize, noise, write) against nanoGPT's per-worker loop.

Baseline, measured in the same run on the same file: one thread calling `encode_ordinary` per document,
appending ids (and EOT) to a Python list, converting and writing once at the end — what each worker of
nanoGPT's data/openwebtext/prepare.py does. Each measurement runs in a fresh process so that its peak
RSS (main process and, for noisecli, its largest worker) is its own.

    python bench/prepare.py [--copies 20] [--small-copies 5] [--repeats 3]
    python bench/prepare.py --datasets [--copies 5]     # clean + six noisy sets: 7 tokenizations vs 1

With --datasets it times what `reproduce` prepares, the clean set and six noisy ones, two ways in one run:
tokenizing the corpus for each (before `--from-tokens`), and tokenizing it once, the noisy sets adding
noise to the clean set's tokens (after). Both give the same bytes (tests/test_prepare.py checks it).
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BASELINE = r"""
import json, sys, time, resource, numpy as np
from noisecli.what.tokenizer import get_encoding
src, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter(); ids = []
enc = get_encoding()  # loading the ranks counts, as it does inside noisecli's prepare()
with open(src) as f:
    for line in f:
        ids.extend(enc.encode_ordinary(json.loads(line)["text"])); ids.append(enc.eot_token)
np.array(ids, dtype=np.uint16).tofile(out)
dt = time.perf_counter() - t0
print(json.dumps({"tokens": len(ids), "seconds": dt,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "worker_rss_mb": 0}))
"""

OURS = r"""
import json, sys, time, resource
from pathlib import Path
from noisecli.what.prepare import PrepareConfig, prepare
src, out = sys.argv[1], sys.argv[2]
t0 = time.perf_counter()
meta = prepare(PrepareConfig(source=src, out=Path(out), alpha=0.2, dist="random", val_fraction=0.0005, force=True))
dt = time.perf_counter() - t0
tokens = meta["tokens"]["clean_train"] + meta["tokens"]["val"]
print(json.dumps({"tokens": tokens, "seconds": dt, "all_tokens_written": meta["tokens"]["train"] + meta["tokens"]["val"],
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "worker_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}))
"""


def make_corpus(path: Path, copies: int) -> None:
    lines = gzip.open(ROOT / "data/corpus/wiki_en.jsonl.gz", "rt", encoding="utf-8").readlines()
    with open(path, "w", encoding="utf-8") as f:
        for _ in range(copies):
            f.writelines(lines)


def run(code: str, src: Path, out: Path) -> dict:
    r = subprocess.run([sys.executable, "-c", code, str(src), str(out)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    if r.returncode:
        sys.exit(r.stderr)
    return json.loads(r.stdout.strip().splitlines()[-1])


NOISY = [dict(alpha=0.01, dist="random"), dict(alpha=0.05, dist="random"), dict(alpha=0.2, dist="random"),
         dict(alpha=0.05, dist="gaussian"), dict(alpha=0.05, dist="uniform"),
         dict(alpha=0.2, dist="random", placement="interleave")]
SETS = r"""
import json, sys, time
from pathlib import Path
from noisecli.what.prepare import PrepareConfig, prepare
src, out, once = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "once"
noisy = json.loads(sys.argv[4])
t0 = time.perf_counter()
prepare(PrepareConfig(source=src, out=out / "clean", force=True))
for i, kw in enumerate(noisy):
    prepare(PrepareConfig(**({"from_tokens": out / "clean"} if once else {"source": src}), out=out / f"n{i}",
                          force=True, **kw))
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""


def datasets(copies: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / f"wiki_x{copies}.jsonl"
        make_corpus(src, copies)
        times = {}
        for mode in ("each", "once"):
            r = subprocess.run([sys.executable, "-c", SETS, str(src), str(tmp / mode), mode, json.dumps(NOISY)],
                               capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
            if r.returncode:
                sys.exit(r.stderr)
            times[mode] = json.loads(r.stdout.strip().splitlines()[-1])["seconds"]
        same = all((tmp / "each" / f"n{i}" / f).read_bytes() == (tmp / "once" / f"n{i}" / f).read_bytes()
                   for i in range(len(NOISY)) for f in ("train.bin", "val.bin", "noise.bin"))
    print(f"clean + {len(NOISY)} noisy sets from {copies} copies of the embedded corpus "
          f"({copies * 1.04:.1f} M tokens each):")
    print("| before: tokenize for each set | after: tokenize once (--from-tokens) | speed-up | same bytes |")
    print("|---|---|---|---|")
    print(f"| {times['each']:.1f} s | {times['once']:.1f} s | {times['each'] / times['once']:.1f}x | {same} |")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=20, help="replications of the 1.04M-token corpus (large size)")
    ap.add_argument("--small-copies", type=int, default=5, help="replications for the small size (RSS check)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--datasets", action="store_true", help="clean + six noisy sets: tokenize each vs once")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.platform()}, "
          f"python {platform.python_version()}")
    if args.datasets:
        return datasets(args.copies if args.copies != 20 else 5)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rows = []
        for copies in (args.small_copies, args.copies):
            src = tmp / f"wiki_x{copies}.jsonl"
            make_corpus(src, copies)
            base, ours = [], []
            for _ in range(args.repeats):  # alternate, so drift in machine speed hits both
                base.append(run(BASELINE, src, tmp / "base.bin"))
                ours.append(run(OURS, src, tmp / "ours"))
            b_tps = statistics.median(r["tokens"] / r["seconds"] for r in base)
            o_tps = statistics.median(r["tokens"] / r["seconds"] for r in ours)
            rows.append((copies, base[0]["tokens"], b_tps, o_tps, max(r["rss_mb"] for r in base),
                         max(r["rss_mb"] for r in ours), max(r["worker_rss_mb"] for r in ours)))
            src.unlink()
    print(f"\nmedians of {args.repeats} runs; noisecli run: α=0.2 random noise appended, sha256 of outputs, "
          f"meta.json (tokens/s counts clean tokens tokenized)")
    print("| corpus tokens | baseline tokens/s | noisecli tokens/s | ratio | baseline peak RSS MB | "
          "noisecli main RSS MB | noisecli worker RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for copies, n, b, o, brss, orss, wrss in rows:
        print(f"| {n / 1e6:.1f} M | {b:,.0f} | {o:,.0f} | {o / b:.2f}x | {brss:,.0f} | {orss:,.0f} | {wrss:,.0f} |")


if __name__ == "__main__":
    main()
