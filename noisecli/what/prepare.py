"""`noisecli prepare`: tokenize a corpus into nanoGPT token files and mix in noise at proportion α.

Outputs in `--out`: train.bin (clean training documents, each followed by EOT, with noise appended or
interleaved), val.bin (clean held-out documents, never noise), noise.bin (the noise tokens alone, to
measure the loss on Pⁿ) and meta.json (how it was all made). Memory stays bounded: documents stream
through worker processes in batches and tokens go straight to disk.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.manifest import (
    check_output,
    provenance,
    sha256_file,
    staging_dir,
    write_json,
)
from noisecli.core.options import SEED_DATA, check_choices, opt, seed_opt
from noisecli.core.progress import Reporter
from noisecli.core.stage import Stage, written
from noisecli.core.workers import worker_pool
from noisecli.what import tokenizer
from noisecli.what.corpus import Corpus, open_corpus, parse_batch
from noisecli.what.noise import DRAW_CHUNK, NOISES, Noise, NoiseOptions, make_noise
from noisecli.what.noise import entropy as noise_entropy
from noisecli.what.token_files import DTYPE, TokenWriter, check_dataset, holds_dataset, open_tokens, read_meta

COPY_CHUNK = 1 << 20   # tokens per write when copying or drawing noise (bounds memory)


HELP = ("Tokenize a corpus with GPT-2's BPE into train.bin/val.bin (uint16) and mix in random noise at "
        "proportion α; writes noise.bin and meta.json too.")   # `noisecli --help`


@dataclass
class PrepareConfig:
    source: str | None = opt(None, "What to tokenize: absent = the embedded English Wikipedia corpus; "
                             "'en' or 'fr' = an embedded corpus; or a path to a .txt/.jsonl/.json/.parquet "
                             "file (optionally .gz) or a folder of them (read recursively, in name order).",
                             positional=True)
    out: Path | None = opt(None, "Output folder. Default: data/prepared/<source>-<dist>-a<alpha>.")
    alpha: float = opt(0.0, "Noise proportion α in [0, 1): the fraction of noise tokens in the final "
                       "training set, so noise tokens = round(α/(1−α) × clean training tokens).")
    dist: str | None = opt(None, "Noise distribution Pⁿ (see the README's table; one file each in "
                           "noisecli/what/noise/). Default: uniform, or tokens when --noise-from is given.",
                           choices=NOISES.names)
    mean: float = opt(25128.0, "Mean token id of the gaussian noise.")
    std: float = opt(500.0, "Standard deviation (in token ids) of the gaussian noise; must be > 0.")
    noise_from: Path | None = opt(None, "A prepared clean dataset that Pⁿ is taken from: its train.bin's "
                                  "tokens (--dist tokens, e.g. the French corpus), or its text (--dist "
                                  "mojibake).")
    placement: str = opt("append", "'append' = noise after all clean training tokens (the paper); "
                         "'interleave' = noise documents (lengths resampled from the clean documents', "
                         "EOT included) inserted between clean documents at random positions.",
                         choices=["append", "interleave"])
    val_fraction: float = opt(0.05, "Fraction of documents held out for val.bin, chosen by seeded coin "
                              "flips per document (at least one document always). 0.05 gives ~55k "
                              "tokens on the embedded corpus; nanoGPT uses 0.0005 for OpenWebText.")
    seed: int = seed_opt(SEED_DATA, "the validation split and the noise (same inputs + seed = byte-identical "
                         "outputs)")
    text_field: str = opt("text", "Field (or parquet column) holding the text in .jsonl/.json/.parquet "
                          "files and hub datasets.")
    txt_unit: str = opt("paragraph", "What a document is in .txt files: 'paragraph' (blank-line "
                        "separated) or 'file' (a whole file).", choices=["paragraph", "file"])
    hf: str | None = opt(None, "A Hugging Face hub dataset id to stream instead of SOURCE, e.g. "
                         "openwebtext (needs the network).")
    hf_config: str | None = opt(None, "Configuration name of the --hf dataset, if it has several.")
    split: str = opt("train", "Split of the --hf dataset to read.")
    workers: int = opt(0, "Tokenizer worker processes (0 = one per CPU core).")
    plot: bool = opt(False, "Also write token_hist.png: token-frequency histograms of the clean "
                     "training data and of the noise (the paper's Figure 8).")
    force: bool = opt(False, "Overwrite an output folder that already holds a dataset.")
    from_tokens: Path | None = opt(None, "A clean dataset prepared before (α = 0): add the noise to its tokens "
                                   "instead of tokenizing SOURCE again. With the same --seed the bytes equal a "
                                   "full `prepare`; the corpus is tokenized once for every α.")


def _encode_batch(parse, description: str, raw) -> tuple[bytes, np.ndarray, int]:
    """Worker: parse a raw batch into documents, drop empty ones, and return the token bytes (each
    document followed by EOT), each document's length, and how many were empty."""
    texts = parse_batch(parse, description, raw)
    kept = [t for t in texts if t.strip()]
    ids, lengths = tokenizer.encode_documents(kept)
    return ids.tobytes(), lengths, len(texts) - len(kept)


def _tokenized(corpus: Corpus, pool, workers: int) -> Iterator[tuple[bytes, np.ndarray, int]]:
    """Tokenize the corpus's batches in order, on the pool's processes (at most 2 batches per process
    in flight, so memory stays bounded) or here when there is no pool."""
    args = (corpus.parse, corpus.description)
    if pool is None:
        for raw in corpus.batches():
            yield _encode_batch(*args, raw)
        return
    pending: deque = deque()
    for raw in corpus.batches():
        pending.append(pool.apply_async(_encode_batch, (*args, raw)))
        if len(pending) >= 2 * workers:
            yield pending.popleft().get()
    while pending:
        yield pending.popleft().get()


def _append_noise(noise: Noise, n_noise: int, pool, train: TokenWriter, noise_out: TokenWriter) -> None:
    """Append placement: the noise goes after the clean tokens, as in the paper. Chunks of a random
    distribution are drawn in parallel (each has a generator of its own, so the order is irrelevant)."""
    if pool is not None and noise.parallel:
        chunks = pool.imap(noise.chunk, range(-(-n_noise // DRAW_CHUNK)))
    else:
        chunks = (noise.draw(min(DRAW_CHUNK, n_noise - i)) for i in range(0, n_noise, DRAW_CHUNK))
    left = n_noise
    for chunk in chunks:
        chunk = chunk[:left]
        train.write(chunk)
        noise_out.write(chunk)
        left -= len(chunk)


def _validate(cfg: PrepareConfig) -> None:
    check_choices(cfg)   # choices, and every number within its name's limits
    if not 0 <= cfg.alpha < 1:
        raise InputError(f"--alpha must be in [0, 1), got {cfg.alpha}")
    if cfg.placement not in ("append", "interleave"):
        raise InputError(f"--placement must be 'append' or 'interleave', not '{cfg.placement}'")


def dist_name(cfg: PrepareConfig) -> str:
    """--dist, defaulting to tokens when --noise-from is given and to uniform otherwise."""
    return cfg.dist or ("tokens" if cfg.noise_from else "uniform")


def default_out(corpus: Corpus, cfg: PrepareConfig) -> Path:
    dist = dist_name(cfg)
    if cfg.noise_from:
        dist = f"from_{Path(cfg.noise_from).name}" if dist == "tokens" else f"{dist}_{Path(cfg.noise_from).name}"
    name = f"{corpus.name}-clean" if cfg.alpha == 0 else f"{corpus.name}-{dist}-a{cfg.alpha:g}"
    return Path("data") / "prepared" / name


def _split_clean(corpus: Corpus, cfg: PrepareConfig, train: TokenWriter, val: TokenWriter,
                 pool, workers: int) -> tuple[np.ndarray, int, int]:
    """Pass 1: tokenize every document, send each to val or train by a seeded coin flip.
    The last training document is held back until the end so it can become the one validation
    document if no flip chose any. Returns the train documents' lengths, val documents, skipped."""
    rng = np.random.default_rng(np.random.SeedSequence([cfg.seed, 1]))
    train_lengths: list[np.ndarray] = []
    held: np.ndarray | None = None
    n_val, skipped = 0, 0
    with Reporter("tokenize", total=corpus.count(), unit="docs") as progress:
        for data, lengths, empty in _tokenized(corpus, pool, workers):
            skipped += empty
            tokens = np.frombuffer(data, DTYPE)
            is_val = rng.random(len(lengths)) < cfg.val_fraction
            train_tokens, doc_lengths = tokens, lengths
            if is_val.any():  # most batches hold no validation document: no copies then
                token_is_val = np.repeat(is_val, lengths)
                val.write(tokens[token_is_val])
                n_val += int(is_val.sum())
                train_tokens, doc_lengths = tokens[~token_is_val], lengths[~is_val]
            if not is_val.all():
                if held is not None:
                    train.write(held)
                cut = len(train_tokens) - int(doc_lengths[-1])
                train.write(train_tokens[:cut])
                held = train_tokens[cut:].copy()
                train_lengths.append(doc_lengths)
            done = train.count + val.count
            progress.advance(len(lengths), tokens=done, tokens_per_s=done / max(progress.elapsed(), 1e-9))
    lengths_all = np.concatenate(train_lengths) if train_lengths else np.empty(0, np.int64)
    if held is not None:
        if n_val == 0:
            val.write(held)
            n_val, lengths_all = 1, lengths_all[:-1]
        else:
            train.write(held)
    if n_val + len(lengths_all) == 0:
        raise InputError(f"source {corpus.description} holds no documents with text")
    if len(lengths_all) == 0:
        raise InputError("source has too few documents: one goes to validation and none is left "
                         "for training (give a larger corpus or more documents)")
    return lengths_all, n_val, skipped


def _copy_clean(base: Path, train: TokenWriter, val: TokenWriter) -> tuple[np.ndarray, int, int]:
    """--from-tokens: pass 1 without tokenizing, from a clean dataset prepared before. Its train.bin and
    val.bin are copied, and its training documents' lengths recovered from their closing EOTs. Returns
    what `_split_clean` returns."""
    meta = read_meta(base)
    for name, writer in (("train.bin", train), ("val.bin", val)):
        tokens = open_tokens(base / name, check_ids=False)
        with Reporter(f"copy {name}", total=len(tokens), unit="tokens") as progress:
            for i in range(0, len(tokens), COPY_CHUNK):
                writer.write(np.asarray(tokens[i:i + COPY_CHUNK]))
                progress.advance(min(COPY_CHUNK, len(tokens) - i))
    train_tokens = open_tokens(base / "train.bin", check_ids=False)
    ends = np.concatenate([np.flatnonzero(np.asarray(train_tokens[i:i + COPY_CHUNK]) == tokenizer.EOT) + i
                           for i in range(0, len(train_tokens), COPY_CHUNK)])
    lengths = np.diff(np.concatenate([[-1], ends])).astype(np.int64)
    return lengths, int(meta["documents"]["val"]), int(meta["documents"].get("skipped_empty", 0))


def _clean_base(cfg: PrepareConfig) -> dict:
    """The --from-tokens dataset's manifest, checked: a clean dataset of ours, all of it EOT-terminated."""
    base = Path(cfg.from_tokens)
    if not (base / "meta.json").is_file():
        raise InputError(f"--from-tokens {base} is not a prepared dataset (no meta.json)")
    meta = read_meta(base)
    check_dataset(base, meta)
    if meta.get("alpha") != 0 or meta.get("tokens", {}).get("noise"):
        raise InputError(f"--from-tokens {base} holds noise (α = {meta.get('alpha')}); give a clean dataset (α = 0)")
    if cfg.source is not None or cfg.hf is not None:
        raise InputError("give SOURCE/--hf or --from-tokens, not both: --from-tokens reuses its dataset's tokens")
    return meta


def _noise_doc_lengths(clean_lengths: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Lengths of interleaved noise documents: resampled from the clean documents' lengths, the last
    one cut so that they add up to exactly `total` tokens."""
    chunks, have = [], 0
    while have < total:
        draw = rng.choice(clean_lengths, size=max(16, int(1.2 * (total - have) / clean_lengths.mean())))
        chunks.append(draw)
        have += int(draw.sum())
    lengths = np.concatenate(chunks)
    k = int(np.searchsorted(np.cumsum(lengths), total)) + 1
    lengths = lengths[:k].copy()
    lengths[-1] -= int(lengths.sum()) - total
    return lengths


def _interleave(clean_path: Path, clean_lengths: np.ndarray, noise: Noise, n_noise: int,
                train: TokenWriter, noise_out: TokenWriter, seed: int) -> int:
    """Pass 2 for `interleave`: copy the clean tokens, inserting noise documents (random tokens, then
    EOT) in the gaps between clean documents. Returns the number of noise documents."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 4]))
    lengths = _noise_doc_lengths(clean_lengths, n_noise, rng) if n_noise else np.empty(0, np.int64)
    gaps = np.sort(rng.integers(0, len(clean_lengths) + 1, size=len(lengths)))
    starts = np.concatenate([[0], np.cumsum(clean_lengths)])
    clean = np.memmap(clean_path, dtype=DTYPE, mode="r") if len(clean_lengths) else np.empty(0, DTYPE)
    pos = 0

    def copy_until(end: int) -> None:
        nonlocal pos
        for i in range(pos, end, COPY_CHUNK):
            train.write(clean[i:min(end, i + COPY_CHUNK)])
        pos = end

    with Reporter("interleave", total=len(lengths), unit="noise docs") as progress:
        for gap, length in zip(gaps, lengths):
            copy_until(int(starts[gap]))
            doc = np.append(noise.draw(int(length) - 1), np.uint16(tokenizer.EOT))
            train.write(doc)
            noise_out.write(doc)
            progress.advance(1)
        copy_until(len(clean))
    return len(lengths)


def _noise_count(alpha: float, n_clean: int, noise: Noise) -> int:
    n_noise = round(alpha * n_clean / (1 - alpha))
    if noise.capacity is not None and n_noise > noise.capacity:
        raise InputError(f"{noise.name} noise has {noise.capacity:,} tokens but α={alpha} needs "
                         f"{n_noise:,}; lower --alpha or use a larger noise corpus")
    return n_noise


def prepare(cfg: PrepareConfig) -> dict:
    """Run the stage; returns the manifest written to `out/meta.json`."""
    _validate(cfg)
    base = _clean_base(cfg) if cfg.from_tokens is not None else None
    corpus = SimpleNamespace(**base["source"]) if base else \
        open_corpus(cfg.source, cfg.hf, cfg.split, cfg.hf_config, cfg.text_field, cfg.txt_unit)
    out = check_output(Path(cfg.out) if cfg.out else default_out(corpus, cfg))
    if holds_dataset(out) and not cfg.force:
        raise InputError(f"{out} already holds a dataset (use --force to overwrite it)")
    if cfg.noise_from is not None and not NOISES.get(dist_name(cfg)).takes_noise_from:
        raise InputError(f"--noise-from is read by {', '.join(n for n, c in NOISES.all().items() if c.takes_noise_from)} "
                         f"noise, not by --dist {dist_name(cfg)}")
    noise = make_noise(dist_name(cfg), cfg.seed, NoiseOptions(cfg.mean, cfg.std, cfg.noise_from))
    tokenizer.get_encoding()  # fail early on a damaged ranks file
    workers = cfg.workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    with staging_dir(out) as tmp, TokenWriter(tmp / "val.bin") as val, \
            TokenWriter(tmp / "noise.bin") as noise_out, worker_pool(workers) as pool:
        interleave = cfg.placement == "interleave"
        with TokenWriter(tmp / ("clean.tmp" if interleave else "train.bin")) as train:
            lengths, n_val, skipped = _copy_clean(Path(cfg.from_tokens), train, val) if base else \
                _split_clean(corpus, cfg, train, val, pool, workers)
            n_clean = train.count
            n_noise = _noise_count(cfg.alpha, n_clean, noise)
            if not interleave:
                _append_noise(noise, n_noise, pool, train, noise_out)
        n_noise_docs = 0
        if interleave:
            with TokenWriter(tmp / "train.bin") as train:
                n_noise_docs = _interleave(tmp / "clean.tmp", lengths, noise, n_noise, train, noise_out,
                                           cfg.seed)
            (tmp / "clean.tmp").unlink()
        noise_out.close()
        n_train = n_clean + n_noise
        meta = {
            "format": "nanoGPT token files: flat little-endian uint16, each document followed by EOT",
            "tokenizer": {"name": tokenizer.NAME, "ranks_sha256": tokenizer.RANKS_SHA256,
                          "vocab_size": tokenizer.VOCAB_SIZE, "eot": tokenizer.EOT},
            "vocab_size": tokenizer.VOCAB_SIZE,
            "source": {"name": corpus.name, "description": corpus.description},
            "documents": {"train": int(len(lengths)), "val": n_val, "skipped_empty": skipped,
                          "noise": n_noise_docs},
            "tokens": {"train": n_train, "val": val.count, "clean_train": n_clean, "noise": n_noise},
            "alpha": cfg.alpha,
            "alpha_actual": n_noise / n_train,
            "noise": {**noise.params, "entropy_nats": noise_entropy(noise.params) if n_noise else None, "placement": cfg.placement,
                      "count_rule": "round(alpha / (1 - alpha) * clean_train)",
                      **({"documents_end_with_eot": True} if interleave else {})},
            "placement": cfg.placement,
            "val_fraction": base["val_fraction"] if base else cfg.val_fraction,
            "seed": cfg.seed,
            **({"from_tokens": {"path": str(cfg.from_tokens), "meta_sha256": sha256_file(Path(cfg.from_tokens) / "meta.json"),
                                "split_seed": base["seed"]}} if base else {}),
            "sha256": {w.path.name: w.sha256.hexdigest() for w in (train, val, noise_out)},
            **provenance(),
        }
        if cfg.plot:
            from noisecli.what.figures import token_histograms
            token_histograms(tmp / "train.bin", tmp / "noise.bin", tmp / "token_hist.png",
                             title=f"{corpus.name}: α={cfg.alpha}, {noise.params['dist']} noise")
        write_json(tmp / "meta.json", meta)
    meta["out"] = str(out)
    meta["elapsed_s"] = time.perf_counter() - t0
    return meta


def show(cfg: PrepareConfig, meta: dict) -> None:
    """The command's summary: files, documents, tokens and the noise's share."""
    from rich.table import Table

    from noisecli.core.tables import console
    tokens, docs = meta["tokens"], meta["documents"]
    table = Table(title=f"prepared {meta['out']}  ({meta['elapsed_s']:.1f} s)")
    for col in ("file", "documents", "tokens", "share of train"):
        table.add_column(col, justify="right" if col != "file" else "left")
    table.add_row("train.bin", f"{docs['train']:,} clean", f"{tokens['train']:,}", "100%")
    table.add_row("  clean part", "", f"{tokens['clean_train']:,}", f"{tokens['clean_train'] / tokens['train']:.2%}")
    table.add_row("  noise part", f"{docs['noise']:,}" if docs["noise"] else "", f"{tokens['noise']:,}",
                  f"{tokens['noise'] / tokens['train']:.2%}")
    table.add_row("val.bin", f"{docs['val']:,}", f"{tokens['val']:,}", "")
    table.add_row("noise.bin", "", f"{tokens['noise']:,}", "")
    console.print(table)
    noise = meta["noise"]
    console.print(f"α = {meta['alpha']} ({noise['dist']} noise, {meta['placement']}), seed {meta['seed']}, "
                  f"{tokens['train'] / meta['elapsed_s']:,.0f} tokens/s; manifest: {meta['out']}/meta.json")


STAGE = Stage("prepare", PrepareConfig, prepare, HELP, done=written("meta.json"), show=show)
