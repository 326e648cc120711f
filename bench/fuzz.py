"""A longer run of the fuzzer (tests/fuzz.py, tests/test_fuzz.py): every target with --examples mutated inputs
each, drawn at random (the suite's run is derandomized and short). Prints the cases run and any that broke the
promise; record the count in docs/benchmarks.md.

    python bench/fuzz.py [--examples 100]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=100, help="mutated inputs per target")
    args = parser.parse_args()
    t0 = time.perf_counter()
    env = {**os.environ, "NOISECLI_FUZZ_EXAMPLES": str(args.examples), "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py"],
                       cwd=ROOT, env=env)
    listed = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                             "tests/test_fuzz.py"], cwd=ROOT, env=env, capture_output=True, text=True).stdout
    targets = sum("::" in line for line in listed.splitlines())   # test functions × parametrisations
    print(f"fuzz: {targets} targets × {args.examples} examples = {targets * args.examples} cases in "
          f"{time.perf_counter() - t0:.0f} s; {'no promise broken' if r.returncode == 0 else 'FAILURES above'}")
    sys.exit(r.returncode)
