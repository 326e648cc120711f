"""Corpora with noise inserted at known character offsets, to measure the detector against the truth
(bench/scan.py, tests/test_scan.py), and the measurement itself.

Kinds inserted (each span between two words of a clean document):
    uniform        decoded random tokens, ids uniform over [0, 50256)
    random         decoded random tokens from the paper's spiky `random` distribution
    mojibake       French text garbled as UTF-8 read as Windows-1252 (what/noise/mojibake.py's `garble`)
    bytes          random bytes decoded as UTF-8 with replacement
    french         French text (another language: §3.5's case, not random noise)
Spans are sized in tokens of the inserted kind; documents receive spans until the noise is α of the tokens.
"""

from __future__ import annotations

import numpy as np

from noisecli.scan.detect import RANDOM_KINDS

DETECTED_AS = {"uniform": RANDOM_KINDS, "random": RANDOM_KINDS, "mojibake": RANDOM_KINDS, "bytes": RANDOM_KINDS,
               "french": ("other-language", "other-script")}


def _span(kind: str, tokens: int, rng: np.random.Generator, french: list[str]) -> str:
    from noisecli.what.noise import make_noise
    from noisecli.what.noise.mojibake import garble
    from noisecli.what.tokenizer import decode, encode
    if kind in ("uniform", "random"):
        noise = make_noise(kind, int(rng.integers(1 << 30)))
        return decode(noise.draw(tokens))
    if kind == "bytes":
        return rng.integers(0, 256, 2 * tokens).astype(np.uint8).tobytes().decode("utf-8", errors="replace")
    text = " ".join(french[int(i)] for i in rng.integers(0, len(french), 8))
    if kind == "mojibake":
        text = garble(text)
    ids = encode(text)
    start = int(rng.integers(0, max(len(ids) - tokens, 1)))
    return decode(ids[start:start + tokens])


def noisy_corpus(docs: list[str], kind: str, alpha: float, span_tokens: int, seed: int = 0,
                 french: list[str] | None = None) -> tuple[list[str], list[list[tuple[int, int]]]]:
    """The documents with spans of `kind` inserted until they are about α of the tokens, and each
    document's inserted character spans."""
    from noisecli.what.tokenizer import encode
    rng = np.random.default_rng(seed)
    clean_tokens = sum(len(encode(d)) for d in docs)
    want = alpha / (1 - alpha) * clean_tokens
    out, truth = list(docs), [[] for _ in docs]
    added = 0
    while added < want:
        i = int(rng.integers(len(out)))
        span = " " + _span(kind, span_tokens, rng, french or []) + " "
        doc = out[i]
        spaces = [j for j, ch in enumerate(doc) if ch == " "] or [len(doc)]
        at = spaces[int(rng.integers(len(spaces)))]
        shift = len(span)
        truth[i] = [(a + shift, b + shift) if a >= at else (a, b) for a, b in truth[i]] + [(at + 1, at + shift - 1)]
        out[i] = doc[:at] + span + doc[at:]
        added += len(encode(span))
    return out, truth


def measure(docs: list[str], truth: list[list[tuple[int, int]]], rows: list[dict], kinds: tuple[str, ...]) -> dict:
    """α̂ against the true α and token-level precision, recall and F1 of the spans flagged as `kinds`
    (a token is truly noise when its first character is inside an inserted span)."""
    from noisecli.what.tokenizer import get_encoding
    enc = get_encoding()
    tp = fp = fn = total = true_n = flagged_n = 0
    for doc, spans, row in zip(docs, truth, rows):
        ids = enc.encode_ordinary(doc)
        _, offsets = enc.decode_with_offsets(ids) if ids else ("", [])
        starts = np.asarray(offsets)
        is_true = np.zeros(len(ids), bool)
        for a, b in spans:
            is_true |= (starts >= a) & (starts < b)
        flagged = np.zeros(len(ids), bool)
        for s in row["spans"]:
            if s["kind"] in kinds:
                flagged[s["start"]:s["end"]] = True
        tp += int((is_true & flagged).sum())
        fp += int((~is_true & flagged).sum())
        fn += int((is_true & ~flagged).sum())
        total += len(ids)
        true_n += int(is_true.sum())
        flagged_n += int(flagged.sum())
    p = tp / (tp + fp) if tp + fp else 1.0
    r = tp / (tp + fn) if tp + fn else 1.0
    return {"alpha": true_n / total, "alpha_hat": flagged_n / total, "precision": p, "recall": r,
            "f1": 2 * p * r / (p + r) if p + r else 0.0, "tokens": total}
