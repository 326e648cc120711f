"""`noisecli scan` measured against the truth and against `prepare`, in one run:

1. accuracy: corpora built from the embedded English text with known noise inserted at known character
   offsets (noisecli/scan/groundtruth.py: decoded random tokens, uniform and the paper's spiky `random`,
   random bytes, mojibake, French text) at α ∈ {0.01, 0.05, 0.2} and span lengths 16 to 1,024 tokens:
   α̂ against the true α and token-level precision, recall and F1 per kind; and the clean English and
   French corpora (share flagged as random noise);
2. speed: the scan against `prepare`'s tokenization of the same corpus (both on both cores), medians of
   --repeats: the embedded English corpus (1 M tokens) and five copies of it as one .jsonl (5 M tokens);
3. memory: peak RSS of a scan of ~5 M and ~20 M tokens (the embedded corpus repeated), in fresh processes.

    python bench/scan.py [--docs 400] [--repeats 5] [--skip-accuracy] [--skip-memory] [--json FILE]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else ""
    return f"{cpu}, {os.cpu_count()} cores"


def accuracy(n_docs: int) -> list[dict]:
    from noisecli.scan.detect import RANDOM_KINDS, Detector, embedded_logp
    from noisecli.scan.groundtruth import DETECTED_AS, measure, noisy_corpus
    from noisecli.scan.tally import span_dict
    from noisecli.what.corpus import embedded_corpus
    en_docs = list(embedded_corpus("en").documents())[:n_docs]
    fr_docs = list(embedded_corpus("fr").documents())
    det = Detector(embedded_logp("en"), embedded_logp("fr"))
    rows = []
    print("\n1. accuracy (English documents, noise inserted at known offsets)")
    print(f"   {'kind':9s} {'α':>5s} {'span':>5s}   {'true α':>7s} {'α̂':>7s} {'rel.err':>7s}   {'P':>5s} {'R':>5s} {'F1':>5s}")
    for kind in ("uniform", "random", "bytes", "mojibake", "french"):
        for alpha in (0.01, 0.05, 0.2):
            for span in (16, 32, 64, 256, 1024):
                docs, truth = noisy_corpus(en_docs, kind, alpha, span, seed=11, french=fr_docs[:500])
                found = [{"spans": [span_dict(s) for s in det.spans(d)[1]]} for d in docs]
                m = measure(docs, truth, found, DETECTED_AS[kind])
                m.update(kind=kind, inserted_alpha=alpha, span_tokens=span,
                         relative_error=abs(m["alpha_hat"] - m["alpha"]) / m["alpha"])
                rows.append(m)
                print(f"   {kind:9s} {alpha:5.2f} {span:5d}   {m['alpha']:7.4f} {m['alpha_hat']:7.4f} "
                      f"{m['relative_error']:7.1%}   {m['precision']:5.3f} {m['recall']:5.3f} {m['f1']:5.3f}")
    for lang, ref, other in (("en", "en", "fr"), ("fr", "fr", "en")):
        d = Detector(embedded_logp(ref), embedded_logp(other))
        total = flagged = 0
        for doc in embedded_corpus(lang).documents():
            ids, spans = d.spans(doc)
            total += len(ids)
            flagged += sum(s.end - s.start for s in spans if s.kind in RANDOM_KINDS)
        rows.append({"kind": f"clean {lang}", "tokens": total, "alpha_hat": flagged / total})
        print(f"   clean {lang} corpus: {flagged / total:.4%} of {total:,} tokens flagged as random noise")
    return rows


def speed(repeats: int, work: Path) -> dict:
    """The scan against prepare on the same corpus, both on both cores, medians of `repeats` (after one warm-up
    run each): the embedded English corpus (1 M tokens: the fixed costs, the figure and starting the workers,
    weigh), and the same text five times over as one .jsonl (5 M tokens: the streaming rate)."""
    from noisecli.scan.scan import ScanConfig, scan
    from noisecli.what.prepare import PrepareConfig, prepare
    big = work / "x5.jsonl"
    big.write_text(_embedded_jsonl() * 5)
    out = {}
    print(f"\n2. speed, both cores, median of {repeats}")
    for label, source in (("embedded English corpus", None), ("embedded English x5 (.jsonl)", big)):
        times: dict = {"prepare": [], "scan": []}
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            prepare(PrepareConfig(source=str(source) if source else None, out=work / f"p{i}",
                                  workers=os.cpu_count() or 1))
            t_p = time.perf_counter() - t0
            t0 = time.perf_counter()
            r = scan(ScanConfig(source=[str(source)] if source else [], out=work / f"s{i}", workers=os.cpu_count() or 1))
            t_s = time.perf_counter() - t0
            if i:
                times["prepare"].append(t_p)
                times["scan"].append(t_s)
            shutil.rmtree(work / f"p{i}")
            shutil.rmtree(work / f"s{i}")
        p, s = statistics.median(times["prepare"]), statistics.median(times["scan"])
        tokens = r["tokens"]
        print(f"   {label} ({tokens:,} tokens)")
        print(f"     prepare (tokenize, write train/val)  {p:6.2f} s  {tokens / p:10,.0f} tokens/s")
        print(f"     scan (tokenize, detect, write)       {s:6.2f} s  {tokens / s:10,.0f} tokens/s   {p / s:.2f}x of prepare")
        out[label] = {"prepare_s": p, "scan_s": s, "tokens": tokens, "ratio": p / s,
                      "prepare_runs_s": times["prepare"], "scan_runs_s": times["scan"]}
    big.unlink()
    return out


def _embedded_jsonl() -> str:
    from noisecli.what.corpus import data_path
    return gzip.open(data_path("corpus/wiki_en.jsonl.gz"), "rt", encoding="utf-8").read()


def memory(work: Path) -> dict:
    lines = _embedded_jsonl()
    out = {}
    print("\n3. peak RSS of a scan (fresh process, both cores)")
    for copies, label in ((5, "~5 M tokens"), (20, "~20 M tokens")):
        path = work / f"x{copies}.jsonl"
        path.write_text(lines * copies)
        # the peak is VmHWM of the scan's own process: ru_maxrss would also count this bench's memory, which
        # Linux carries over into a child's maximum across fork and exec (an earlier "growth" was that)
        code = ("import resource, sys; from pathlib import Path; from noisecli.scan.scan import ScanConfig, scan; "
                f"r = scan(ScanConfig(source=[{str(path)!r}], out=Path({str(work / f'm{copies}')!r}))); "
                "hwm = next(int(x.split()[1]) for x in open('/proc/self/status') if x.startswith('VmHWM')); "
                "print(r['tokens'], hwm, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
        t0 = time.perf_counter()
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        tokens, rss, child = (int(x) for x in res.stdout.split()[-3:])
        out[label] = {"tokens": tokens, "peak_rss_mib": rss / 1024, "worker_peak_rss_mib": child / 1024,
                      "seconds": time.perf_counter() - t0}
        print(f"   {label:14s} {tokens:12,} tokens: main {rss / 1024:6.0f} MiB, largest worker {child / 1024:6.0f} MiB, "
              f"{time.perf_counter() - t0:5.1f} s")
        path.unlink()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", type=int, default=400, help="English documents per ground-truth corpus")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--skip-accuracy", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        result = {"machine": machine()}
        if not args.skip_accuracy:
            result["accuracy"] = accuracy(args.docs)
        result["speed"] = speed(args.repeats, Path(tmp))
        if not args.skip_memory:
            result["memory"] = memory(Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
