"""A batch of documents through the detector at once: what a scan's worker does.

Most documents of a real corpus hold no noise, and deciding that must cost no per-document Python: the batch
is tokenized in one tiktoken call, every token's evidence for noise is one gather, and each document's
largest summed evidence over a stretch of tokens (the bound that decides whether Viterbi could leave the
text state, detect.py) is found for all documents together by segmented prefix sums. Only the documents where
a stretch pays for leaving the text state, or whose characters hold bytes, mojibake or another script, go
through `Detector.spans` one at a time. The results are the same as `Detector.spans` on every document
(tested); the batch's rows are JSON lines, and its sums a `Tally` of its own, which the scan adds up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisecli.scan.detect import (ENTER, KINDS, MARGIN, NOISE_LOGP, OTHER_ENTER, RANDOM_KINDS, Detector, Span,
                                  char_suspects, stretch_max)
from noisecli.scan.tally import Tally, dumps, span_dict, window_scores

CLEAN_ROW = '{"id": %d, "tokens": %d, "noisy": {}, "spans": [], "score": 0.0}'   # json.dumps of a clean row (tested)


@dataclass
class Batch:
    """One batch's results: documents.jsonl's lines, the batch's tally, and the flagged spans of each document
    that has any (index in the batch → span dicts), which the clean copy cuts."""
    lines: str
    tally: Tally
    spans: dict[int, list[dict]]


def document_row(doc_id: int, ids: np.ndarray, spans: list[Span], nll: np.ndarray | None = None) -> dict:
    """A document's row of documents.jsonl: id, tokens, noisy tokens per kind, spans, its highest random-noise
    span score; with a model, its summed loss and scored tokens on clean and on random-noise tokens."""
    row = {"id": doc_id, "tokens": len(ids), "noisy": {}, "spans": [span_dict(s) for s in spans]}
    for s in spans:
        row["noisy"][s.kind] = row["noisy"].get(s.kind, 0) + s.end - s.start
    row["score"] = round(max((s.score for s in spans if s.kind in RANDOM_KINDS), default=0.0), 4)
    if nll is not None:
        noise, flagged = np.zeros(len(ids), bool), np.zeros(len(ids), bool)
        for s in spans:
            flagged[s.start:s.end] = True
            noise[s.start:s.end] = s.kind in RANDOM_KINDS
        scored = np.isfinite(nll)
        row["lm"] = {part: [float(nll[mask & scored].sum()), int((mask & scored).sum())]
                     for part, mask in (("clean", ~flagged), ("noise", noise))}
    return row


def detect_batch(det: Detector, doc_ids: list[int], texts: list[str], seed: int, extra: list[dict] | None = None
                 ) -> Batch:
    """Detect noise in a batch of documents (ids, texts): their rows (each updated with `extra`'s dict, if any,
    and written as JSON lines), the batch's tally and the flagged spans."""
    from noisecli.what.tokenizer import encode_documents
    ids, lengths = encode_documents(texts)               # each document followed by EOT
    ends = np.cumsum(lengths) - 1
    keep = np.ones(len(ids), bool)
    keep[ends] = False
    ids, lengths = ids[keep], lengths - 1                 # uint16 ids index the unigrams as they are
    starts = np.cumsum(lengths) - lengths
    text_lp = det.text[ids]
    evidence = NOISE_LOGP - text_lp
    if det.model is not None:                             # the model's emissions are per document
        suspect = np.ones(len(texts), bool)
    else:
        suspect = stretch_max(evidence, lengths) > ENTER - MARGIN
        if det.other is not None:
            suspect |= stretch_max(det.other[ids] - text_lp, lengths) > OTHER_ENTER - MARGIN
        suspect |= char_suspects(texts, det.main_script)
    counts = np.zeros((len(texts), len(KINDS)), np.int64)
    if extra:
        lines = [dumps({"id": d, "tokens": n, "noisy": {}, "spans": [], "score": 0.0, **e})
                 for d, n, e in zip(doc_ids, lengths.tolist(), extra)]
    else:
        lines = [CLEAN_ROW % (d, n) for d, n in zip(doc_ids, lengths.tolist())]
    spans, lm = {}, np.zeros((2, 2))
    for i in np.flatnonzero(suspect).tolist():
        tokens_i = ids[starts[i]:starts[i] + lengths[i]]
        found = det.spans(texts[i], tokens_i)[1]
        if not found and det.model is None:
            continue                                       # suspected, but clean: its line stands
        row = document_row(doc_ids[i], tokens_i, found, det.last_nll if det.model is not None else None)
        for kind, n in row["noisy"].items():
            counts[i, KINDS.index(kind)] = n
        if "lm" in row:
            lm += [row["lm"]["clean"], row["lm"]["noise"]]
        if row["spans"]:
            spans[i] = row["spans"]
        lines[i] = dumps({**row, **extra[i]}) if extra else dumps(row)
    tally = Tally(seed)
    tally.add(doc_ids, lengths, counts, window_scores(evidence, lengths), {i: (s, texts[i]) for i, s in spans.items()},
              lm if det.model is not None else None)
    return Batch("".join(line + "\n" for line in lines), tally, spans)
