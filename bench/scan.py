"""`noisecli scan` measured against the truth and against `prepare`, in one run:

1. accuracy: corpora built from the embedded English text with known noise inserted at known character
   offsets (noisecli/scan/groundtruth.py: decoded random tokens, uniform and the paper's spiky `random`,
   random bytes, mojibake, French text) at α ∈ {0.01, 0.05, 0.2} and span lengths 16 to 1,024 tokens:
   α̂ against the true α and token-level precision, recall and F1 per kind; and the clean English and
   French corpora (share flagged as random noise);
2. speed: the scan of the embedded English corpus (both cores) against `prepare`'s tokenization of the
   same corpus (both cores), medians of --repeats;
3. memory: peak RSS of a scan of ~5 M and ~20 M tokens (the embedded corpus repeated), in fresh processes.

    python bench/scan.py [--docs 400] [--repeats 3] [--skip-memory]
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
    from noisecli.scan.scan import ScanConfig, scan
    from noisecli.what.prepare import PrepareConfig, prepare
    times: dict = {"prepare": [], "scan": []}
    tokens = 0
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        prepare(PrepareConfig(out=work / f"p{i}", workers=os.cpu_count() or 1))
        t_p = time.perf_counter() - t0
        t0 = time.perf_counter()
        r = scan(ScanConfig(out=work / f"s{i}", workers=os.cpu_count() or 1))
        t_s = time.perf_counter() - t0
        tokens = r["tokens"]
        if i:
            times["prepare"].append(t_p)
            times["scan"].append(t_s)
    p, s = statistics.median(times["prepare"]), statistics.median(times["scan"])
    print(f"\n2. speed, embedded English corpus ({tokens:,} tokens), both cores, median of {repeats}")
    print(f"   prepare (tokenize, write train/val)  {p:6.2f} s  {tokens / p:10,.0f} tokens/s")
    print(f"   scan (tokenize, detect, write)       {s:6.2f} s  {tokens / s:10,.0f} tokens/s   {p / s:.2f}x of prepare")
    return {"prepare_s": p, "scan_s": s, "tokens": tokens, "ratio": p / s}


def memory(work: Path) -> dict:
    from noisecli.what.corpus import data_path
    src = data_path("corpus/wiki_en.jsonl.gz")
    lines = gzip.open(src, "rt", encoding="utf-8").read()
    out = {}
    print("\n3. peak RSS of a scan (fresh process, both cores)")
    for copies, label in ((5, "~5 M tokens"), (20, "~20 M tokens")):
        path = work / f"x{copies}.jsonl"
        path.write_text(lines * copies)
        code = ("import resource, sys; from pathlib import Path; from noisecli.scan.scan import ScanConfig, scan; "
                f"r = scan(ScanConfig(source=[{str(path)!r}], out=Path({str(work / f'm{copies}')!r}))); "
                "print(r['tokens'], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "
                "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
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
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip-memory", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        result = {"accuracy": accuracy(args.docs), "speed": speed(args.repeats, Path(tmp))}
        if not args.skip_memory:
            result["memory"] = memory(Path(tmp))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
