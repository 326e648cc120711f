"""What a scan adds up as it streams, in memory that does not grow with the corpus, and that shards add up
to exactly what one pass gives:

- per kind, flagged tokens and documents, with B Poisson-bootstrap replicates: each document gets weight
  w_b ~ Poisson(1) in replicate b, drawn from a hash of (seed, document id, b), so its weights do not
  depend on which shard or batch read it (Hanley & MacGibbon's Poisson bootstrap, the usual
  streaming form of resampling documents with replacement); the 95 % interval of a share is the 2.5th
  and 97.5th percentiles of the replicates' ratios;
- a histogram of every flagged span's score, and of the score of every 32-token window (the figure);
- the most and the least confident flagged spans (examples.md).
"""

from __future__ import annotations

import heapq
import json
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from noisecli.core.manifest import Record
from noisecli.scan.detect import ENTER, EXIT, KINDS, RANDOM_KINDS, Span

REPLICATES = 400
BINS = np.linspace(-15.0, 15.0, 121)     # nats per token
WINDOW = 32
EXAMPLES = 8
_SUMS = ("flagged", "flagged_docs", "rep_tokens", "rep_docs", "rep_flagged", "rep_flagged_docs", "span_hist",
         "window_hist")      # the arrays a tally adds up
_POISSON_CDF = np.cumsum([np.exp(-1.0) / np.prod(range(1, k + 1)) for k in range(12)])
_POISSON_CDF_53 = np.floor(_POISSON_CDF * float(1 << 53)).astype(np.uint64)   # x·2^53 < m ⇔ floor(x·2^53) < m


def _splitmix(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of each uint64, in place (one temporary: this is a scan's hot path)."""
    x += np.uint64(0x9E3779B97F4A7C15)
    t = x >> np.uint64(30)
    x ^= t
    x *= np.uint64(0xBF58476D1CE4E5B9)
    np.right_shift(x, np.uint64(27), out=t)
    x ^= t
    x *= np.uint64(0x94D049BB133111EB)
    np.right_shift(x, np.uint64(31), out=t)
    x ^= t
    return x


def poisson_weights(doc_ids: np.ndarray, seed: int, replicates: int = REPLICATES) -> np.ndarray:
    """[documents, replicates] Poisson(1) weights, a function of (seed, document id, replicate) alone."""
    with np.errstate(over="ignore"):
        keys = (np.asarray(doc_ids, np.uint64)[:, None] * np.uint64(replicates) + np.arange(replicates, dtype=np.uint64)
                + np.uint64(seed) * np.uint64(0x632BE59BD9B4E019))
        u = _splitmix(keys) >> np.uint64(11)        # a uniform on [0, 1) as an integer in units of 2^-53
    return np.searchsorted(_POISSON_CDF_53, u).astype(np.float64)


def _exactly(n: int, item: Any = float) -> Any:
    return Annotated[list[item], Field(min_length=n, max_length=n)]


class TallyState(BaseModel):
    """A tally as state.json holds it (`Tally.state`), what `scan merge` adds up: every array of its shape."""
    model_config = ConfigDict(extra="forbid")
    seed: StrictInt
    documents: StrictInt = Field(ge=0)
    tokens: StrictInt = Field(ge=0)
    undecodable: StrictInt = Field(ge=0)
    flagged: _exactly(len(KINDS) + 1, StrictInt)
    flagged_docs: _exactly(len(KINDS) + 1, StrictInt)
    rep_tokens: _exactly(REPLICATES)
    rep_docs: _exactly(REPLICATES)
    rep_flagged: _exactly(REPLICATES, _exactly(len(KINDS) + 1))
    rep_flagged_docs: _exactly(REPLICATES, _exactly(len(KINDS) + 1))
    span_hist: _exactly(len(KINDS), _exactly(len(BINS) - 1, StrictInt))
    window_hist: _exactly(len(BINS) - 1, StrictInt)
    most: list[tuple[float, int, int, dict]] = Field(max_length=EXAMPLES)
    least: list[tuple[float, int, int, dict]] = Field(max_length=EXAMPLES)
    lm: dict[Literal["clean", "noise"], tuple[float, StrictInt]]


class ShardState(Record):
    """state.json, what `scan merge` adds up (one shard's settings and sums)."""
    config: dict
    shard: list[StrictInt] = Field(min_length=2, max_length=2)
    tally: TallyState


class Tally:
    def __init__(self, seed: int = 0):
        self.seed = seed
        self.documents = self.tokens = self.undecodable = 0
        k = len(KINDS) + 1                                           # the kinds, then "random noise" in all
        self.flagged, self.flagged_docs = np.zeros(k, np.int64), np.zeros(k, np.int64)
        self.rep_tokens, self.rep_docs = np.zeros(REPLICATES), np.zeros(REPLICATES)
        self.rep_flagged, self.rep_flagged_docs = np.zeros((REPLICATES, k)), np.zeros((REPLICATES, k))
        self.span_hist = np.zeros((len(KINDS), len(BINS) - 1), np.int64)
        self.window_hist = np.zeros(len(BINS) - 1, np.int64)
        self.most: list = []      # heaps of (score, document id, span dict) of random-noise spans
        self.least: list = []
        self.lm = {"clean": [0.0, 0], "noise": [0.0, 0]}   # with a model: summed loss and scored tokens

    def add(self, doc_ids: list[int], tokens: np.ndarray, counts: np.ndarray, windows: np.ndarray,
            flagged: dict[int, tuple[list[dict], str]], lm: np.ndarray | None = None) -> None:
        """One batch of documents: their ids, tokens, noisy tokens per kind ([documents, kinds]), the scores of
        their 32-token windows, the flagged spans and text of each document that has any (by index in the
        batch), and with a model the summed loss and scored tokens on clean and on random-noise tokens."""
        if not len(doc_ids):
            return
        counts = np.asarray(counts, np.float64)
        counts = np.concatenate([counts, counts[:, [KINDS.index(k) for k in RANDOM_KINDS]].sum(1, keepdims=True)], 1)
        tokens = np.asarray(tokens, np.float64)
        w = poisson_weights(np.array(doc_ids), self.seed)
        self.documents += len(doc_ids)
        self.tokens += int(tokens.sum())
        self.flagged += counts.astype(np.int64).sum(0)
        self.flagged_docs += (counts > 0).sum(0)
        self.rep_tokens += tokens @ w
        self.rep_docs += w.sum(0)
        self.rep_flagged += w.T @ counts
        self.rep_flagged_docs += w.T @ (counts > 0)
        self.window_hist += np.histogram(np.clip(windows, BINS[0], BINS[-1]), BINS)[0]
        if lm is not None:
            self.lm = {p: [self.lm[p][0] + float(lm[i][0]), self.lm[p][1] + int(lm[i][1])]
                       for i, p in enumerate(("clean", "noise"))}
        for i, (spans, text) in flagged.items():
            doc_id = doc_ids[i]
            for s in spans:
                self.span_hist[KINDS.index(s["kind"]), _bin(s["score"])] += 1
                if s["kind"] in RANDOM_KINDS:
                    ex = {**s, "document": doc_id, "text": text[s["char_start"]:s["char_end"]][:300]}
                    self._example(self.most, (s["score"], doc_id, s["start"], ex))
                    self._example(self.least, (-s["score"], -doc_id, -s["start"], ex))

    @staticmethod
    def _example(heap: list, item: tuple) -> None:
        (heapq.heappush if len(heap) < EXAMPLES else heapq.heappushpop)(heap, item)

    def update(self, other: "Tally") -> None:
        """Add another tally (of other documents) to this one."""
        self.documents += other.documents
        self.tokens += other.tokens
        self.undecodable += other.undecodable
        for k in _SUMS:
            setattr(self, k, getattr(self, k) + getattr(other, k))
        self.lm = {p: [self.lm[p][0] + other.lm[p][0], self.lm[p][1] + other.lm[p][1]] for p in self.lm}
        for mine, theirs in ((self.most, other.most), (self.least, other.least)):
            for item in theirs:
                self._example(mine, tuple(item))

    # ------------------------------------------------------------------ shards
    def state(self) -> dict:
        return {"seed": self.seed, "documents": self.documents, "tokens": self.tokens, "undecodable": self.undecodable,
                **{k: getattr(self, k).tolist() for k in _SUMS},
                "most": sorted(self.most), "least": sorted(self.least), "lm": self.lm}   # sorted: a heap too

    @classmethod
    def from_state(cls, s: dict) -> "Tally":
        t = cls(s["seed"])
        t.documents, t.tokens, t.undecodable = s["documents"], s["tokens"], s["undecodable"]
        for k in _SUMS:
            setattr(t, k, np.asarray(s[k], getattr(t, k).dtype))
        t.lm = {p: list(v) for p, v in s["lm"].items()}
        t.most, t.least = [tuple(x) for x in s["most"]], [tuple(x) for x in s["least"]]
        heapq.heapify(t.most)
        heapq.heapify(t.least)
        return t

    @classmethod
    def merged(cls, states: list[dict]) -> "Tally":
        t = cls(states[0]["seed"])
        for s in states:
            t.update(cls.from_state(s))
        return t

    # ------------------------------------------------------------------ results
    def shares(self) -> dict:
        """α̂ per kind and in all, as shares of tokens and of documents, each with its 95 % interval."""
        def share(num: float, den: float, rep_num: np.ndarray, rep_den: np.ndarray) -> dict:
            r = rep_num / np.maximum(rep_den, 1e-12)
            lo, hi = np.quantile(r, [0.025, 0.975])
            return {"value": float(num / den) if den else 0.0, "lo": float(lo), "hi": float(hi)}
        out = {}
        for i, kind in enumerate([*KINDS, "random noise (all kinds)"]):
            out[kind] = {"tokens": int(self.flagged[i]), "documents": int(self.flagged_docs[i]),
                         "share_of_tokens": share(self.flagged[i], self.tokens, self.rep_flagged[:, i], self.rep_tokens),
                         "share_of_documents": share(self.flagged_docs[i], self.documents, self.rep_flagged_docs[:, i],
                                                     self.rep_docs)}
        return out

    def examples(self) -> tuple[list[dict], list[dict]]:
        """The most confident flagged spans (highest score first) and the least (lowest first)."""
        return ([x[3] for x in sorted(self.most, key=lambda x: (-x[0], x[1], x[2]))],
                [x[3] for x in sorted(self.least, key=lambda x: (-x[0], -x[1], -x[2]))])


def _bin(score: float) -> int:
    """The histogram bin of a score (clipped into the range, as np.histogram bins it)."""
    return int(np.clip(np.searchsorted(BINS, score, side="right") - 1, 0, len(BINS) - 2))


def window_scores(evidence: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Mean evidence (nats per token, noise vs text) of each non-overlapping 32-token window of each document
    (consecutive `lengths` tokens of `evidence`; a document's last partial window left out)."""
    per_doc = lengths // WINDOW
    if not per_doc.sum():
        return np.zeros(0)
    c = np.concatenate([[0.0], np.cumsum(evidence, dtype=np.float64)])
    first = np.cumsum(per_doc) - per_doc
    start = np.repeat(np.cumsum(lengths) - lengths, per_doc) + WINDOW * (np.arange(per_doc.sum()) -
                                                                           np.repeat(first, per_doc))
    return (c[start + WINDOW] - c[start]) / WINDOW


def threshold() -> float:
    """The mean evidence per token a 32-token span needs to be flagged: the cost of entering and leaving."""
    return (ENTER + EXIT) / WINDOW


def span_dict(s: Span) -> dict:
    return {"kind": s.kind, "start": s.start, "end": s.end, "char_start": s.char_start, "char_end": s.char_end,
            "score": round(s.score, 4)}


def dumps(row: dict) -> str:
    return json.dumps(row, ensure_ascii=False)


def without(text: str, spans: list[dict]) -> str:
    """`text` with the character spans removed (spans sorted, not overlapping)."""
    kept, at = [], 0
    for s in spans:
        kept.append(text[at:s["char_start"]])
        at = s["char_end"]
    return "".join(kept) + text[at:]
