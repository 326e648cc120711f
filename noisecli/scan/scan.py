"""`noisecli scan`: how much random noise is in a corpus, where it is, and a clean copy.

It reads every source `prepare` reads (the embedded corpora, .txt/.jsonl/.json/.parquet files or folders,
gzipped or not, --hf streamed) or a prepared dataset's token files (a folder with train.bin, or a .bin
file: documents split at EOT and decoded), tokenizes with the same GPT-2 BPE and finds noise *inside*
documents (detect.py: an HMM over tokens, character checks; batch.py: a batch of documents at once, in
worker processes). It streams: what it keeps in memory does not grow with the corpus (tally.py), and
`--shard I/N` scans every N-th document from the I-th, so that `noisecli scan merge DIR...` (merge.py) adds
shards up to exactly what one pass gives. report.py writes what a person reads.

    OUT/scan.json          α̂ per kind and in all (shares of tokens and of documents, 95 % intervals), the
                           corpus's size, how the scan was made
    OUT/documents.jsonl    one row per document: id, tokens, noisy tokens per kind, spans (token and
                           character offsets, kind, score)
    OUT/examples.md        the most and the least confident flagged spans, escaped, to check by eye
    OUT/scores.png         the score distribution with the threshold
    --write-clean DIR      DIR/clean.jsonl without the flagged random-noise spans (or documents), for prepare
"""

from __future__ import annotations

import os
import time
from collections import deque
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, provenance, staging_dir, write_json
from noisecli.core.options import SEED_DOWNSTREAM, as_dict, check_choices, device_opt, opt, seed_opt
from noisecli.core.stage import Stage, written

if TYPE_CHECKING:      # numpy, tiktoken and the detector load when a scan runs, not for --help
    import numpy as np

    from noisecli.scan.batch import Batch

BATCH = 512   # documents per batch


HELP = ("How much random noise is in your corpus: spans of random tokens, random bytes, mojibake, another "
        "language or script, found inside documents (no model needed); α̂ with 95 % intervals, the spans, and "
        "a clean copy. `noisecli scan merge DIR...` adds up --shard runs.")   # `noisecli --help`


@dataclass
class ScanConfig:
    source: list[str] = opt([], "What to scan: absent = the embedded English corpus; 'en'/'fr'; a .txt/.jsonl/"
                            ".json/.parquet file (optionally .gz) or a folder of them; a prepared dataset folder "
                            "(its train.bin) or a .bin token file. Or `merge DIR...`: add up shards.",
                            positional=True)
    out: Path = opt(Path("results/scan"), "Output folder: scan.json, documents.jsonl, examples.md, scores.png.")
    hf: str | None = opt(None, "A Hugging Face hub dataset id to stream instead of SOURCE (needs the network).")
    hf_config: str | None = opt(None, "The hub dataset's config.")
    split: str = opt("train", "The hub dataset's split.")
    text_field: str = opt("text", "Field (or parquet column) holding the text.")
    txt_unit: str = opt("paragraph", "What a document is in .txt files.", choices=["paragraph", "file"])
    reference: str = opt("en", "The corpus's language as a unigram: 'en' or 'fr' (the embedded corpora), or a "
                         "prepared clean dataset folder or .bin token file of the user's own clean text.")
    other: str = opt("fr", "Another language reported apart (the paper's §3.5 case): 'en', 'fr', a token "
                     "file or folder as --reference, or 'none'.")
    script: str = opt("LATIN", "The corpus's script: letters of other scripts are reported as other-script "
                      "(a Unicode script name: LATIN, CYRILLIC, GREEK, ARABIC, CJK, ...; 'none' to skip).")
    count_other: bool = opt(False, "Count other-language and other-script spans as random noise too.")
    shard: str = opt("0/1", "Scan every N-th document from the I-th: I/N (a Slurm array, say); then "
                     "`noisecli scan merge` adds the shards up.")
    limit: int | None = opt(None, "Scan the first N documents only.")
    workers: int = opt(0, "Worker processes that tokenize and detect (0 = one per CPU core).")
    write_clean: Path | None = opt(None, "Also write DIR/clean.jsonl without the flagged random noise.")
    drop: str = opt("spans", "What --write-clean removes: the flagged spans, or whole documents that have any.",
                    choices=["spans", "documents"])
    model: str | None = opt(None, "A language model to scan with, and to say what the noise would cost it: a "
                            "checkpoint or run folder of `pretrain`, or hf:PATH_OR_ID (a causal LM with GPT-2's "
                            "tokenizer). Its per-token loss replaces the unigram in the text state; p_c and p_n "
                            "(its loss on the clean and on the flagged tokens) feed Proposition 1.")
    k: float | None = opt(None, "k for Proposition 1's conclusions with --model (one model cannot measure it: "
                          "`theory k` does, from a clean and a noisy run; the paper finds k > 10 for random noise).")
    device: str = device_opt("for --model")
    seed: int = seed_opt(SEED_DOWNSTREAM, "the bootstrap over documents")


def _logp(spec: str) -> np.ndarray | None:
    from noisecli.scan.detect import embedded_logp, unigram_logp
    if spec == "none":
        return None
    if spec in ("en", "fr"):
        return embedded_logp(spec)
    path = Path(spec)
    path = path / "train.bin" if path.is_dir() else path
    if not path.is_file() or path.suffix != ".bin":
        raise InputError(f"--reference/--other '{spec}': not en, fr, none, a prepared dataset folder or a .bin file")
    from noisecli.what.token_files import open_tokens, token_counts
    open_tokens(path)          # whole uint16 tokens of GPT-2's vocabulary, or one line
    return unigram_logp(token_counts(path))


def _shard(spec: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in spec.split("/"))
    except ValueError:
        raise InputError(f"--shard must be I/N (e.g. 0/4), got '{spec}'") from None
    if not (n >= 1 and 0 <= i < n):
        raise InputError(f"--shard {spec}: need 0 ≤ I < N")
    return i, n


def _token_documents(ids: np.ndarray, chunk: int = 1 << 24) -> Iterator[str]:
    """Documents of a token file (checked: open_tokens): split at EOT, decoded."""
    import numpy as np

    from noisecli.what.tokenizer import EOT, decode
    start = 0      # EOTs are looked for a chunk at a time: memory does not grow with the file
    for lo in range(0, len(ids), chunk):
        for end in (np.flatnonzero(ids[lo:lo + chunk] == EOT) + lo).tolist():
            if end > start:
                yield decode(ids[start:end])
            start = end + 1
    if len(ids) > start:
        yield decode(ids[start:])


def documents(cfg: ScanConfig, undecodable: list[str] | None = None) -> tuple[Iterator[str], str]:
    """The corpus's documents in order, and a description of the source; JSON lines that cannot be decoded
    are listed in `undecodable` and skipped."""
    from noisecli.what.corpus import open_corpus
    src = cfg.source[0] if cfg.source else None
    if src is not None and not cfg.hf:
        path = Path(src)
        token_file = path / "train.bin" if path.is_dir() and (path / "train.bin").is_file() else path
        if token_file.suffix == ".bin":
            from noisecli.what.token_files import open_tokens
            return _token_documents(open_tokens(token_file)), f"token file {token_file.resolve()}"
    corpus = open_corpus(src, cfg.hf, cfg.split, cfg.hf_config, cfg.text_field, cfg.txt_unit, undecodable)

    return corpus.documents(), corpus.description


def _check(cfg: ScanConfig) -> tuple[int, int]:
    from noisecli.core.errors import warn
    from noisecli.scan.detect import known_script
    check_choices(cfg)
    if len(cfg.source) > 1:
        raise InputError("give one SOURCE (or `merge DIR...`)")
    shard = _shard(cfg.shard)
    check_output(cfg.out)
    if cfg.write_clean is not None:
        check_output(cfg.write_clean)
        a, b = Path(cfg.out).resolve(), Path(cfg.write_clean).resolve()
        if a == b or a in b.parents or b in a.parents:
            raise InputError(f"--write-clean {cfg.write_clean} and --out {cfg.out} must be separate folders")
    if cfg.script != "none" and not known_script(cfg.script.upper()):
        raise InputError(f"--script {cfg.script}: no Unicode letter belongs to a script of that name (LATIN, "
                         "CYRILLIC, GREEK, ARABIC, HEBREW, CJK, HANGUL, DEVANAGARI, ...; or 'none')")
    if cfg.k is not None and cfg.model is None:
        warn(f"--k {cfg.k} is used only with --model (what the noise would cost that model); ignored")
    return shard


def scan(cfg: ScanConfig) -> dict:
    """Scan a corpus (or, with SOURCE `merge DIR...`, add shards up); write OUT/ as the module docstring says."""
    if cfg.source[:1] == ["merge"]:
        from noisecli.scan.merge import merge
        return merge([Path(p) for p in cfg.source[1:]], cfg.out)
    from noisecli.core.progress import Reporter
    from noisecli.core.workers import worker_pool
    from noisecli.scan.report import write_results
    from noisecli.scan.detect import KINDS, RANDOM_KINDS
    from noisecli.scan.tally import Tally
    index, shards = _check(cfg)
    text_logp, other_logp = _logp(cfg.reference), _logp(cfg.other)
    script = None if cfg.script == "none" else cfg.script.upper()
    undecodable: list[str] = []
    docs, description = documents(cfg, undecodable)
    tally, t0 = Tally(cfg.seed), time.perf_counter()
    counted = RANDOM_KINDS + (("other-language", "other-script") if cfg.count_other else ())
    out = Path(cfg.out)
    workers = cfg.workers or os.cpu_count() or 1
    model, device = _model(cfg)
    if model is not None:
        workers = 1     # the model scores in this process (on its device, with torch's own threads)
    with ExitStack() as stack:
        tmp = stack.enter_context(staging_dir(out))
        rows_file = stack.enter_context(open(tmp / "documents.jsonl", "w", encoding="utf-8"))
        clean_tmp = clean_file = None
        if cfg.write_clean is not None:     # a staging folder of its own: nothing half-written on failure
            clean_tmp = stack.enter_context(staging_dir(Path(cfg.write_clean)))
            clean_file = stack.enter_context(open(clean_tmp / "clean.jsonl", "w", encoding="utf-8"))
        pool = stack.enter_context(worker_pool(workers, _start_worker, (text_logp, other_logp, script)))
        if pool is None:
            _start_worker(text_logp, other_logp, script, model, device, pool=False)
        removed = dict.fromkeys(counted, 0)
        pending: deque = deque()      # at most 2 batches per worker in flight: memory stays bounded
        progress = stack.enter_context(Reporter("scan", total=cfg.limit, unit="docs"))

        def write(item) -> None:
            batch, job = item
            _write_batch(batch, job.get() if pool else _detect(batch, cfg.seed), tally, rows_file, clean_file, cfg,
                         counted, removed)
            progress.advance(len(batch), tokens=f"{tally.tokens:,}")
        for batch in _batches(docs, cfg.limit, index, shards):
            pending.append((batch, pool.apply_async(_detect, (batch, cfg.seed)) if pool else None))
            if len(pending) >= 2 * workers:
                write(pending.popleft())
        while pending:
            write(pending.popleft())
        rows_file.close()
        tally.undecodable = len(undecodable)
        settings = {"config": as_dict(cfg), "source": description, "shard": [index, shards], "kinds": list(KINDS),
                    "counted_as_random_noise": list(counted), "undecodable_first": undecodable[:20]}
        write_json(tmp / "state.json", {**settings, "tally": tally.state()})
        result = write_results(tmp, tally, settings, time.perf_counter() - t0)   # report.py
        if clean_file is not None:
            clean_file.close()
            write_json(clean_tmp / "clean.json", {**provenance(), "from": str(out), "drop": cfg.drop,
                                                  "removed_tokens_per_kind": removed})
            result["removed_tokens_per_kind"] = removed
    result["out"] = str(out)
    return result


def _batches(docs: Iterator[str], limit: int | None, index: int, shards: int) -> Iterator[list[tuple[int, str]]]:
    """(document id, text) of this shard's documents, BATCH at a time."""
    batch = []
    for doc_id, text in enumerate(docs):
        if limit is not None and doc_id >= limit:
            break
        if doc_id % shards == index:
            batch.append((doc_id, text))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


_DETECTOR = None


def _start_worker(text_logp, other_logp, script, model=None, device="cpu", pool: bool = True) -> None:
    from noisecli.scan.detect import Detector
    global _DETECTOR
    if pool:
        # one BLAS thread per worker: the pool fills the cores, and OpenBLAS's own threads, spinning beside the
        # other worker, doubled a scan's CPU time at 512-document batches (the tally's matrix products)
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)
    _DETECTOR = Detector(text_logp, other_logp, script, model, device)


def _model(cfg: ScanConfig):
    """(the --model as a causal LM with noisecli's scoring interface, its device), or (None, None)."""
    if cfg.model is None:
        return None, None
    from noisecli.training.distributed import pick_device
    from noisecli.what import hf_lm
    from noisecli.what.eval_ntp import is_hf
    device = pick_device(cfg.device)
    if is_hf(cfg.model):
        return hf_lm.load(cfg.model, device)[0], device
    from noisecli.what.architectures import architecture, load_model
    model, info = load_model(cfg.model, device)
    if architecture(info.get("arch", "gpt")).objective != "next-token":
        raise InputError(f"--model {cfg.model} is a {info.get('arch')} checkpoint; scan needs a causal LM (GPT)")
    return model, device


def _detect(batch: list[tuple[int, str]], seed: int) -> Batch:
    """A batch's rows, tally and flagged spans (in a worker)."""
    from noisecli.scan.batch import detect_batch
    return detect_batch(_DETECTOR, [d for d, _ in batch], [t for _, t in batch], seed)


def _write_batch(batch, result: Batch, tally, rows_file, clean_file, cfg, counted, removed) -> None:
    from noisecli.scan.tally import dumps, without
    rows_file.write(result.lines)
    tally.update(result.tally)
    if clean_file is None:
        return
    for i, (doc_id, text) in enumerate(batch):
        drop = [s for s in result.spans.get(i, ()) if s["kind"] in counted]
        for s in drop:
            removed[s["kind"]] += s["end"] - s["start"]
        if cfg.drop == "documents" and drop:
            continue
        clean_file.write(dumps({"id": doc_id, "text": without(text, drop)}) + "\n")


def _show(cfg: ScanConfig, r: dict) -> None:
    from noisecli.core.tables import console, markdown_table
    rows = [[k, f"{100 * v['share_of_tokens']['value']:.3f} % [{100 * v['share_of_tokens']['lo']:.3f}, "
                f"{100 * v['share_of_tokens']['hi']:.3f}]", f"{v['tokens']:,}", f"{v['documents']:,}"]
            for k, v in r["shares"].items()]
    console.print(markdown_table(["kind", "share of tokens (95 % interval)", "tokens", "documents"], rows))
    console.print(f"{r['documents']:,} documents, {r['tokens']:,} tokens → {r['out']}/scan.json, documents.jsonl, "
                  "examples.md, scores.png" + (f"; clean copy in {cfg.write_clean}" if cfg.write_clean else ""))
    if "cost" in r:
        console.print(f"What it would cost {cfg.model} (Proposition 1): {r['cost']['conclusion']}")


STAGE = Stage("scan", ScanConfig, scan, HELP, done=written("scan.json"), show=_show)
