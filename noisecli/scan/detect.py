"""Finding random noise inside a document without a model: a hidden Markov model over its GPT-2 tokens, and
character checks for what the tokens do not show.

Tokens. Three hidden states emit token ids:
    text            the corpus's language: p_text(t), a reference unigram (the embedded English corpus by
                    default, or the user's own clean sample), add-½ smoothed over the 50257 ids
    other language  another language's unigram (the embedded French corpus by default): the paper's §3.5
                    case, reported apart and not counted as random noise
    noise           every id equally likely, 1/50257: decoded random tokens re-tokenize to ids spread over
                    the vocabulary, which no language's unigram predicts
Entering noise from text costs ENTER nats and leaving it EXIT nats, so a span is flagged only where the
tokens' summed evidence log(1/50257) − log p_text(t) exceeds ENTER + EXIT (≈ 18 nats): a few rare tokens
(a name, a number) are not noise, a run of 16+ random ids is. Viterbi gives the most likely states, and
its spans are exact to the token. (The parameters were chosen by measurement: bench/scan.py.)

Characters, each run a span of its own kind:
    random bytes    U+FFFD (what undecodable bytes become), C0/C1 control characters, private-use code points
    mojibake        runs of Latin-1/cp1252 characters that re-encode to valid multi-byte UTF-8 ("Ã©" for "é")
    other script    letters of a script other than the corpus's main one (Cyrillic in English text, ...)
A random-token span whose characters are mostly replacement/control characters is random bytes.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from noisecli.what.tokenizer import VOCAB_SIZE, get_encoding

ENTER, EXIT, OTHER_ENTER, OTHER_EXIT = 14.0, 4.0, 14.0, 4.0    # nats (see the module docstring)
NOISE_LOGP = -math.log(VOCAB_SIZE)
MARGIN = 1e-6   # nats: a stretch this close to the cost of leaving text goes through Viterbi (rounding never decides)
RANDOM_KINDS = ("random-tokens", "random-bytes", "mojibake")   # what counts as random noise
KINDS = RANDOM_KINDS + ("other-language", "other-script")
_BYTES = re.compile(r"[\ufffd\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ue000-\uf8ff]+")
# a lead byte of 2-4 byte UTF-8 read as Latin-1/cp1252 (Â-ô), then continuation bytes read the same way
_CONTINUATION_CP1252 = ("\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192\u02c6\u02dc\u2013\u2014\u2018-\u201e"
                        "\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122")   # continuation bytes 0x80-0x9f in cp1252
_MOJIBAKE = re.compile(f"(?:[\u00c2-\u00f4][\u0080-\u00bf{_CONTINUATION_CP1252}]{{1,3}})+")
_CONTINUATION = np.array(sorted({ord(c) for a, b in re.findall(r"(.)(?:-(.))?", _CONTINUATION_CP1252)
                                 for c in map(chr, range(ord(a), ord(b or a) + 1))}), np.uint32)


@dataclass
class Span:
    kind: str
    start: int          # token offsets, end exclusive
    end: int
    char_start: int
    char_end: int
    score: float        # mean evidence per token, nats (noise vs text for token spans; 0 for character spans)


def unigram_logp(counts: np.ndarray) -> np.ndarray:
    """log p(t) over the 50257 ids from counts, add-½ smoothed (float32)."""
    c = np.zeros(VOCAB_SIZE, np.float64)
    c[:min(len(counts), VOCAB_SIZE)] = counts[:VOCAB_SIZE]
    return np.log((c + 0.5) / (c.sum() + 0.5 * VOCAB_SIZE)).astype(np.float32)


@lru_cache(maxsize=1)
def token_bytes() -> np.ndarray:
    """The UTF-8 byte length of every token id."""
    enc = get_encoding()
    return np.array([len(enc.decode_single_token_bytes(i)) for i in range(VOCAB_SIZE)], np.int64)


@lru_cache(maxsize=4)
def embedded_logp(lang: str) -> np.ndarray:
    """The unigram of an embedded corpus ("en", "fr"): its token counts, tokenized once and kept in the user's
    cache folder (keyed by the corpus file's and the tokenizer's sha256), so a scan does not spend most of a
    small corpus's time re-tokenizing the references."""
    return unigram_logp(_embedded_counts(lang))


def _embedded_counts(lang: str) -> np.ndarray:
    import hashlib
    import os
    from pathlib import Path

    from noisecli.core.manifest import atomic_path, sha256_file
    from noisecli.what.corpus import EMBEDDED, data_path, embedded_corpus
    from noisecli.what.tokenizer import RANKS_SHA256, encode_documents
    key = hashlib.sha256((sha256_file(data_path(EMBEDDED[lang][0])) + RANKS_SHA256).encode()).hexdigest()[:24]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "noisecli" / f"unigram-{lang}-{key}.npy"
    if cache.is_file():
        try:
            counts = np.load(cache)
            if counts.shape == (VOCAB_SIZE,):
                return counts
        except (OSError, ValueError):
            pass   # a damaged cache file is counted again
    corpus = embedded_corpus(lang)
    counts = np.zeros(VOCAB_SIZE, np.int64)
    for raw in corpus.batches():
        ids, _ = encode_documents(corpus.parse(raw))
        counts += np.bincount(ids, minlength=VOCAB_SIZE)[:VOCAB_SIZE]
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:
            np.save(f, counts)
    except OSError:
        pass       # no writable cache folder: count again next time
    return counts


def viterbi(text: np.ndarray, other: np.ndarray | None) -> np.ndarray:
    """The most likely state of each token (0 text, 1 other language, 2 noise) given the per-token log
    emissions of text and other language (noise: NOISE_LOGP); entering and leaving cost the constants
    above, staying nothing. Plain Python floats: the loop is the hot path, and numpy per step is slower."""
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int8)
    t_e, o_e = text.tolist(), (other.tolist() if other is not None else None)
    v0, v1, v2 = t_e[0], (o_e[0] - OTHER_ENTER if o_e else -math.inf), NOISE_LOGP - ENTER
    back = bytearray(3 * n)
    for i in range(1, n):
        # into text: from text, other (−OTHER_EXIT) or noise (−EXIT)
        a, b, c = v0, v1 - OTHER_EXIT, v2 - EXIT
        if a >= b and a >= c:
            n0, p0 = a, 0
        elif b >= c:
            n0, p0 = b, 1
        else:
            n0, p0 = c, 2
        if o_e is not None:
            a, b = v0 - OTHER_ENTER, v1
            n1, p1 = (a, 0) if a >= b else (b, 1)
            n1 += o_e[i]
        else:
            n1, p1 = -math.inf, 1
        a, c = v0 - ENTER, v2
        n2, p2 = (a, 0) if a > c else (c, 2)
        v0, v1, v2 = n0 + t_e[i], n1, n2 + NOISE_LOGP
        back[3 * i], back[3 * i + 1], back[3 * i + 2] = p0, p1, p2
    state = int(np.argmax([v0, v1, v2]))
    states = np.empty(n, np.int8)
    for i in range(n - 1, -1, -1):
        states[i] = state
        state = back[3 * i + state]
    return states


def stretch_max(gain: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each document (consecutive `lengths` tokens of `gain`), the largest sum of `gain` over a stretch of
    its tokens (0 for the empty stretch): Kadane's bound for every document at once. With c the document's
    prefix sums and m their running minimum, it is max(0, max_j c_j − min(0, m_j)); the documents are shifted
    down one below another, so that one running minimum over the whole batch restarts at each document."""
    if len(lengths) == 1:                                # one document (Detector.spans): the plain form
        c = np.concatenate([[0.0], np.cumsum(gain, dtype=np.float64)])
        return np.array([float((c - np.minimum.accumulate(c)).max())])
    out = np.zeros(len(lengths))
    some = lengths > 0
    if not some.any():
        return out
    n = lengths[some]
    first = np.cumsum(n) - n
    c = np.cumsum(gain, dtype=np.float64)
    c -= np.repeat(np.concatenate([[0.0], c[first[1:] - 1]]), n)      # within-document prefix sums
    lo, hi = np.minimum.reduceat(c, first), np.maximum.reduceat(c, first)
    shift = np.concatenate([[0.0], np.cumsum(np.minimum(lo[:-1], 0.0) - np.maximum(hi[1:], 0.0) - 1.0)])
    c += np.repeat(shift, n)                                           # every value below every earlier one
    best = c - np.minimum(np.minimum.accumulate(c), np.repeat(shift, n))   # c_j − min(0, m_j), shifted alike
    out[some] = np.maximum(np.maximum.reduceat(best, first), 0.0)
    return out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) of each run of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1)))


@lru_cache(maxsize=64)
def known_script(name: str) -> bool:
    """Whether some Unicode letter's name starts with `name` (LATIN, CYRILLIC, CJK, ...): what script_of gives."""
    common = {"LATIN", "CYRILLIC", "GREEK", "ARABIC", "HEBREW", "CJK", "HANGUL", "HIRAGANA", "KATAKANA", "DEVANAGARI",
              "THAI", "ARMENIAN", "GEORGIAN", "BENGALI", "TAMIL"}
    return name in common or any(script_of(chr(c)) == name for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF)


def script_of(ch: str) -> str | None:
    """A letter's script, from its Unicode name (LATIN, CYRILLIC, CJK, ARABIC, ...); None for a non-letter."""
    if not ch.isalpha():
        return None
    name = unicodedata.name(ch, "")
    return name.split(" ")[0] if name else None


MOJIBAKE_GAP = 40   # characters: garbled runs this close are one span (the words between are garbled text too)


def _plausible(ch: str) -> bool:
    """What mojibake usually hides: Latin letters with accents, typographic punctuation, €, ™ ("×\xa0" would
    re-encode to a Hebrew letter: no mojibake)."""
    return script_of(ch) == "LATIN" or "\u2010" <= ch <= "\u206f" or ch in "€™°±·«»¿¡§©®"


def _mojibake(text: str) -> list[tuple[int, int]]:
    """Runs that re-encode to shorter valid UTF-8, joined where fewer than MOJIBAKE_GAP characters apart."""
    out: list[tuple[int, int]] = []
    for m in _MOJIBAKE.finditer(text):
        try:
            fixed = m.group().encode("cp1252", errors="strict").decode("utf-8", errors="strict")
        except UnicodeError:
            try:
                fixed = m.group().encode("latin-1", errors="strict").decode("utf-8", errors="strict")
            except UnicodeError:
                continue
        if len(fixed) < len(m.group()) and all(_plausible(ch) for ch in fixed if not ch.isascii()):
            a, b = m.span()
            if out and a - out[-1][1] < MOJIBAKE_GAP:
                out[-1] = (out[-1][0], b)
            else:
                out.append((a, b))
    return out


_NON_ASCII = re.compile(r"[^\x00-\x7f](?:[^\x00-\x7f]|[\s\d.,;:!?'\"()-]+(?=[^\x00-\x7f]))*")


def _other_script(text: str, main_script: str) -> list[tuple[int, int]]:
    """Runs of letters of another script than `main_script` (spaces and punctuation between them join a run).
    Only non-ASCII stretches are looked at: ASCII letters are LATIN."""
    out = []
    for m in _NON_ASCII.finditer(text):
        start = last = None
        for i, ch in enumerate(m.group(), m.start()):
            s = script_of(ch)
            if s is None:
                continue
            if s != main_script:
                start = i if start is None else start
                last = i + 1
            elif start is not None:
                out.append((start, last))
                start = None
        if start is not None:
            out.append((start, last))
    return out


def char_spans(text: str, main_script: str | None) -> list[tuple[str, int, int]]:
    if text.isascii():
        return [("random-bytes", *m.span()) for m in _BYTES.finditer(text)]
    spans = [("random-bytes", *m.span()) for m in _BYTES.finditer(text)]
    spans += [("mojibake", a, b) for a, b in _mojibake(text)]
    if main_script:
        spans += [("other-script", a, b) for a, b in _other_script(text, main_script)]
    return spans


def char_suspects(texts: list[str], main_script: str | None) -> np.ndarray:
    """Which documents could hold a character span (char_spans), for a whole batch in a few numpy passes over its
    code points: a replacement, control or private-use character (random bytes), a Latin-1 lead character Â-ô
    before a continuation character (mojibake), or a letter of another script than `main_script`. A superset: a
    document not marked here has no character span, so only the marked ones are searched with the regexes."""
    if not texts:
        return np.zeros(0, bool)
    joined = "\n".join(texts)                                  # "\n" is none of the characters looked for
    cp = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
    hit = ((cp < 0x20) & (cp != 0x09) & (cp != 0x0a) & (cp != 0x0d)) | ((cp >= 0x7f) & (cp <= 0x9f))
    if not joined.isascii():
        hit |= (cp == 0xfffd) | ((cp >= 0xe000) & (cp <= 0xf8ff))
        lead = np.flatnonzero((cp[:-1] >= 0xc2) & (cp[:-1] <= 0xf4))   # mojibake: a lead, then a continuation
        after = cp[lead + 1]
        hit[lead[((after >= 0x80) & (after <= 0xbf)) | np.isin(after, _CONTINUATION)]] = True
        if main_script:                                     # each distinct non-ASCII character's script, once
            at = np.flatnonzero(cp >= 0x80)
            wide, which = np.unique(cp[at], return_inverse=True)
            foreign = np.array([_script_of_code(c) not in (None, main_script) for c in wide.tolist()], bool)
            hit[at[foreign[which]]] = True
    lengths = np.fromiter(map(len, texts), np.int64, len(texts)) + 1
    marked = np.zeros(len(texts), bool)
    marked[np.searchsorted(np.cumsum(lengths), np.flatnonzero(hit), side="right")] = True
    return marked


@lru_cache(maxsize=65536)
def _script_of_code(code: int) -> str | None:
    return script_of(chr(code)) if 0xd800 > code or code > 0xdfff else None


class Detector:
    """Finds the spans of every kind in one document. `text_logp`, `other_logp`: log unigrams (ids → log p);
    `main_script`: the corpus's script (LATIN by default)."""

    def __init__(self, text_logp: np.ndarray, other_logp: np.ndarray | None = None,
                 main_script: str | None = "LATIN", model=None, device: str = "cpu"):
        self.text, self.other, self.main_script = text_logp, other_logp, main_script
        self.model, self.device = model, device   # a causal LM: its per-token log-probability is the text state's
        self.last_nll: np.ndarray | None = None   # the model's per-token loss on the last document (NaN: none)
        self.enc = get_encoding()

    def emission(self, ids: np.ndarray) -> np.ndarray:
        """The text state's log-probability of each token: the unigram's, or with a model the even mixture of
        the model's conditional probability (e^−loss) and the unigram's: a span whose loss sits near the noise's
        entropy is noise to that model, and a weak model (an early checkpoint) costs at most ln 2 per token."""
        unigram = self.text[ids]
        if self.model is None:
            return unigram
        from noisecli.what.scoring import token_losses
        self.last_nll = token_losses(self.model, ids, device=self.device)
        lm = np.where(np.isfinite(self.last_nll), -self.last_nll, unigram)
        return (np.logaddexp(lm, unigram) - math.log(2)).astype(np.float32)

    @staticmethod
    def offsets(doc: str, ids: np.ndarray) -> list[int]:
        """Each token's character offset (as tiktoken's decode_with_offsets gives them: the character holding
        the token's first byte), computed from the tokens' byte lengths."""
        starts = np.concatenate([[0], np.cumsum(token_bytes()[ids])[:-1]]).astype(np.int64) if len(ids) else ids
        if not doc.isascii():   # byte offsets to character offsets: count the characters' first bytes before each
            raw = np.frombuffer(doc.encode("utf-8", errors="surrogatepass"), np.uint8)
            char_of_byte = np.cumsum((raw & 0xC0) != 0x80) - 1
            starts = char_of_byte[np.minimum(starts, len(raw) - 1)]
        return starts.tolist()

    def _kind(self, kind: str, seg: str) -> str:
        """A noise-state span is random bytes where ≥ 30 % of its characters are replacement or control
        characters, and another script where most of its letters are of one script that is not the corpus's
        (Arabic text is as unlikely under an English unigram as random tokens are); else random tokens."""
        if kind != "random-tokens":
            return kind
        if sum(len(m.group()) for m in _BYTES.finditer(seg)) >= 0.3 * max(len(seg), 1):
            return "random-bytes"
        if self.main_script and not seg.isascii():
            scripts = [script_of(ch) for ch in seg if ch.isalpha()]
            if scripts:
                top = max(set(scripts), key=scripts.count)
                if top != self.main_script and scripts.count(top) >= 0.5 * len(scripts):
                    return "other-script"
        return kind

    def spans(self, doc: str, ids: np.ndarray | None = None) -> tuple[np.ndarray, list[Span]]:
        """(the document's token ids (given, or encoded here), its flagged spans sorted by start; no token in two
        spans). Where no stretch of tokens pays for leaving the text state (the largest summed gain over a
        stretch is below the cost of entering another state), Viterbi would say "text" throughout and is
        skipped: batch.py decides that for a whole batch at once."""
        ids = np.asarray(self.enc.encode_ordinary(doc), np.int64) if ids is None else ids
        n = len(ids)
        if n == 0:
            return ids, []
        offsets = self.offsets(doc, ids)
        lt = self.emission(ids)
        lo = self.other[ids] if self.other is not None else None
        one = np.array([n])
        if (stretch_max(NOISE_LOGP - lt, one)[0] > ENTER - MARGIN
                or (lo is not None and stretch_max(lo - lt, one)[0] > OTHER_ENTER - MARGIN)):
            states = viterbi(lt, lo)
        else:
            states = np.zeros(n, np.int8)
        bounds = offsets + [len(doc)]
        kind_of = np.full(n, -1, np.int8)                          # index into KINDS, −1: clean
        for state, kind in ((2, "random-tokens"), (1, "other-language")) if states.any() else ():
            for a, b in _runs(states == state):
                kind_of[a:b] = KINDS.index(self._kind(kind, doc[bounds[a]:bounds[b]]))
        starts = np.asarray(offsets)
        other_language = KINDS.index("other-language")
        for kind, c0, c1 in char_spans(doc, self.main_script):
            # characters: random bytes and mojibake are more specific than "another language" (garbled French
            # reads as French to the unigrams); other-script only takes tokens nothing else flagged
            a = max(int(np.searchsorted(starts, c0, side="right")) - 1, 0)
            b = int(np.searchsorted(starts, c1, side="left"))
            seg = kind_of[a:b]
            free = (seg == -1) | ((seg == other_language) if kind != "other-script" else False)
            kind_of[a:b][free] = KINDS.index(kind)
        out = []
        edges = [0, *(np.flatnonzero(np.diff(kind_of)) + 1).tolist(), n] if (kind_of >= 0).any() else [0]
        for a, b in zip(edges[:-1], edges[1:]):                 # each run of one kind, in order
            if kind_of[a] >= 0:
                score = float(np.mean(NOISE_LOGP - lt[a:b]))
                out.append(Span(KINDS[kind_of[a]], a, b, bounds[a], bounds[b], score))
        return ids, out
