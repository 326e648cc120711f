"""GPT-2's byte-pair encoding through tiktoken, loaded offline from the ranks shipped in the package.

The ranks file is OpenAI's r50k_base.tiktoken (the GPT-2 vocabulary); its sha256 is checked on load.
With GPT-2's split pattern the ids are identical to `tiktoken.get_encoding("gpt2")`.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import tiktoken
from tiktoken.load import load_tiktoken_bpe

RANKS_PATH = Path(__file__).parents[1] / "assets" / "r50k_base.tiktoken"
RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# GPT-2's pre-tokenizer regex, in the possessive form tiktoken uses for r50k_base/gpt2.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
EOT = 50256          # <|endoftext|>
EOT_TEXT = "<|endoftext|>"
VOCAB_SIZE = 50257   # 50256 merges/bytes + EOT
NAME = "gpt2"


@lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """The GPT-2 encoding. Raises ValueError if the shipped ranks file was altered."""
    ranks = load_tiktoken_bpe(str(RANKS_PATH), expected_hash=RANKS_SHA256)
    return tiktoken.Encoding(name=NAME, pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={EOT_TEXT: EOT}, explicit_n_vocab=VOCAB_SIZE)


def _ids(text: str, allowed_special: set[str]) -> np.ndarray:
    """tiktoken's numpy buffer as uint16. Lone surrogates (possible in JSON input) cannot cross into
    the Rust core; they are replaced exactly as `tiktoken.Encoding.encode` does, so ids still match."""
    enc = get_encoding()
    try:
        ids = enc.encode_to_numpy(text, allowed_special=allowed_special, disallowed_special=())
    except UnicodeEncodeError:
        text = text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
        ids = enc.encode_to_numpy(text, allowed_special=allowed_special, disallowed_special=())
    return ids.astype(np.uint16)


def encode(text: str) -> np.ndarray:
    """Token ids of `text` as uint16, special-token text treated as plain text (like `encode_ordinary`).
    Goes through tiktoken's numpy buffer: no Python int list, and the GIL is released while encoding."""
    return _ids(text, set())


def encode_documents(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of several documents, each followed by EOT, and each document's length (EOT included).

    Identical to encoding each document alone (`encode` + EOT), but in one call into tiktoken: the
    documents are joined by the EOT text, which tiktoken splits at before its regex runs, so no
    pre-token crosses a document boundary (and `$` in the split pattern still means "end of this
    document"). A document that itself contains the EOT text must stay plain text, so such a batch is
    encoded one document at a time."""
    if not texts:
        return np.empty(0, np.uint16), np.empty(0, np.int64)
    if any(EOT_TEXT in t for t in texts):
        parts = [np.append(encode(t), np.uint16(EOT)) for t in texts]
        return np.concatenate(parts), np.array([len(p) for p in parts], np.int64)
    ids = _ids(EOT_TEXT.join(texts) + EOT_TEXT, {EOT_TEXT})
    ends = np.flatnonzero(ids == EOT) + 1  # ordinary text never yields id 50256
    return ids, np.diff(ends, prepend=0)


def decode(ids) -> str:
    return get_encoding().decode([int(i) for i in ids])


def hf_tokenizer(mask: bool = False):
    """GPT-2's BPE as a transformers fast tokenizer, built from the shipped ranks (ids identical to
    tiktoken's; tested); with `mask`, BERT's [MASK] as id 50257."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter
    extra = [EOT_TEXT] + (["[MASK]"] if mask else [])
    backend = TikTokenConverter(vocab_file=str(RANKS_PATH), pattern=GPT2_PATTERN, add_prefix_space=False,
                                additional_special_tokens=extra).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOT_TEXT, eos_token=EOT_TEXT,
                                  unk_token=EOT_TEXT, **({"mask_token": "[MASK]"} if mask else {}))
    tok.model_max_length = 1024
    return tok
