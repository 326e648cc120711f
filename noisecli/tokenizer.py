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

RANKS_PATH = Path(__file__).parent / "assets" / "r50k_base.tiktoken"
RANKS_SHA256 = "306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930"
# GPT-2's pre-tokenizer regex, in the possessive form tiktoken uses for r50k_base/gpt2.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
EOT = 50256          # <|endoftext|>
VOCAB_SIZE = 50257   # 50256 merges/bytes + EOT
NAME = "gpt2"


@lru_cache(maxsize=1)
def get_encoding() -> tiktoken.Encoding:
    """The GPT-2 encoding. Raises ValueError if the shipped ranks file was altered."""
    ranks = load_tiktoken_bpe(str(RANKS_PATH), expected_hash=RANKS_SHA256)
    return tiktoken.Encoding(name=NAME, pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": EOT}, explicit_n_vocab=VOCAB_SIZE)


def encode(text: str) -> np.ndarray:
    """Token ids of `text` as uint16, special-token text treated as plain text (like `encode_ordinary`).
    Goes through tiktoken's numpy buffer: no Python int list, and the GIL is released while encoding."""
    enc = get_encoding()
    ids = enc.encode_to_numpy(text, allowed_special=set(), disallowed_special=())
    return ids.astype(np.uint16)


def decode(ids) -> str:
    return get_encoding().decode([int(i) for i in ids])
