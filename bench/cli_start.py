"""Benchmark how fast `noisecli --help` and `noisecli <cmd> --help` answer, against a baseline revision of
this repository measured in the same run (default: 09e814b, before the stage modules stopped importing
torch at the top). Each measurement is a fresh `python -X importtime` process; reported are the median
wall time over --repeats runs and whether torch was imported.

    python bench/cli_start.py [--baseline 09e814b] [--repeats 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ([], ["prepare"], ["pretrain"], ["eval-ntp"], ["extract"], ["probe"], ["reproduce"], ["theory", "k"])


def measure(tree: Path, args: list[str], repeats: int) -> tuple[float, bool]:
    times, torch = [], False
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-X", "importtime", "-m", "noisecli", *args, "--help"], cwd=tree,
                           capture_output=True, text=True, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"})
        times.append(time.perf_counter() - t0)
        if r.returncode != 0:
            raise SystemExit(f"noisecli {' '.join(args)} --help failed in {tree}:\n{r.stderr[-2000:]}")
        torch = any(line.split("|")[-1].strip() == "torch" for line in r.stderr.splitlines())
    return statistics.median(times), torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="09e814b")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else platform.machine()
    print(f"machine: {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}; median of {args.repeats} runs")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "baseline"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            print(f"{'command':<30} {'baseline ' + args.baseline:>26} {'now':>18}")
            for cmd in COMMANDS:
                (tb, torch_b), (tn, torch_n) = measure(base, cmd, args.repeats), measure(ROOT, cmd, args.repeats)
                name = " ".join(["noisecli", *cmd, "--help"])
                print(f"{name:<30} {tb:>16.2f} s{' (torch)' if torch_b else '':>8} {tn:>8.2f} s"
                      f"{' (torch)' if torch_n else ' (no torch)':>11}")
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=True)


if __name__ == "__main__":
    main()
