import hashlib
import shutil

import numpy as np
import pytest
import tiktoken
from tiktoken_ext.openai_public import r50k_pat_str

from noisecli.what import tokenizer
from tests.conftest import wiki_docs

SAMPLES = [
    "The quick brown fox jumps over the lazy dog. It's 2026, isn't it? We'll see; they're here.",
    "Le château de Versailles est une résidence royale française ; l'été dernier, j'y suis allé.",
    "Emoji: 😀👍🏽🇫🇷 — and ZWJ families 👨‍👩‍👧‍👦, CJK 日本語のテキスト, Ελληνικά, русский.",
    "def f(x):\n    return {'a': [1, 2, 3], \"b\": x ** 2}  # comment\n\tif x != 0: pass\n",
    "   leading spaces\n\n\n\t\ttabs   and    runs of    spaces   \r\n trailing   ",
    "numbers 1234567890 3.14159 1e-10 0x1F and <|endoftext|> as plain text",
    "",
]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """tiktoken's own registered r50k_base (the GPT-2 ranks), loaded offline by placing the ranks file
    in tiktoken's cache under the name it derives from the download URL."""
    cache = tmp_path_factory.mktemp("tiktoken_cache")
    url = "https://openaipublic.blob.core.windows.net/encodings/r50k_base.tiktoken"
    shutil.copy(tokenizer.RANKS_PATH, cache / hashlib.sha1(url.encode()).hexdigest())
    mp = pytest.MonkeyPatch()
    mp.setenv("TIKTOKEN_CACHE_DIR", str(cache))
    tiktoken.registry.ENCODINGS.pop("r50k_base", None)
    enc = tiktoken.get_encoding("r50k_base")
    tiktoken.registry.ENCODINGS.pop("r50k_base", None)
    mp.undo()
    return enc


def test_vocabulary():
    enc = tokenizer.get_encoding()
    assert enc.n_vocab == tokenizer.VOCAB_SIZE == 50257
    assert enc.eot_token == tokenizer.EOT == 50256
    assert enc.encode("<|endoftext|>", allowed_special="all") == [50256]


@pytest.mark.parametrize("text", SAMPLES)
def test_ids_identical_to_tiktoken(reference, text):
    ours = tokenizer.encode(text)
    assert ours.dtype == np.uint16
    assert ours.tolist() == reference.encode_ordinary(text)
    # and to an Encoding built from tiktoken's own GPT-2 split pattern over the same ranks
    same = tiktoken.Encoding("check", pat_str=r50k_pat_str, mergeable_ranks=tokenizer.get_encoding()._mergeable_ranks,
                             special_tokens={"<|endoftext|>": 50256})
    assert ours.tolist() == same.encode_ordinary(text)
    assert tokenizer.decode(ours) == text


def test_ids_identical_on_real_documents(reference):
    for text in wiki_docs("en", 150) + wiki_docs("fr", 150):
        assert tokenizer.encode(text).tolist() == reference.encode_ordinary(text)


def _one_at_a_time(reference, texts):
    return [i for t in texts for i in reference.encode_ordinary(t) + [50256]]


def test_encode_documents_equals_one_document_at_a_time(reference):
    """The joined fast path must give exactly the ids and lengths of per-document encoding, including
    at boundaries where GPT-2's pattern is context dependent (trailing whitespace before `$`,
    leading spaces, newlines) and on real documents."""
    tricky = ["ends with spaces   ", "  starts with spaces", "\n\nnewlines\n\n", "a", " ", "x\t",
              "'s at the start", "ends with 's", "😀", "12", "34"] + [s for s in SAMPLES if "<|endoftext|>" not in s and s]
    docs = wiki_docs("en", 60) + tricky + wiki_docs("fr", 60)
    ids, lengths = tokenizer.encode_documents(docs)
    assert ids.dtype == np.uint16 and ids.tolist() == _one_at_a_time(reference, docs)
    assert lengths.tolist() == [len(reference.encode_ordinary(t)) + 1 for t in docs]


def test_encode_documents_keeps_eot_text_as_plain_text(reference):
    docs = ["before", "a literal <|endoftext|> inside", "after  "]
    ids, lengths = tokenizer.encode_documents(docs)
    assert ids.tolist() == _one_at_a_time(reference, docs)
    assert lengths.tolist() == [len(reference.encode_ordinary(t)) + 1 for t in docs]
    assert tokenizer.encode_documents([])[0].size == 0


def test_lone_surrogates_are_replaced_like_tiktoken(reference):
    text = "bad \ud800 surrogate"
    assert tokenizer.encode(text).tolist() == reference.encode(text)
    assert tokenizer.encode_documents(["ok", text])[0].tolist() == reference.encode("ok") + [50256] + reference.encode(text) + [50256]


def test_known_ids():
    # GPT-2's well-known ids: "Hello" = 15496, " world" = 995
    assert tokenizer.encode("Hello world").tolist() == [15496, 995]


def test_tampered_ranks_are_refused(tmp_path, monkeypatch):
    bad = tmp_path / "r50k_base.tiktoken"
    bad.write_bytes(tokenizer.RANKS_PATH.read_bytes().replace(b"IQ== 0", b"IQ== 1", 1))
    monkeypatch.setattr(tokenizer, "RANKS_PATH", bad)
    tokenizer.get_encoding.cache_clear()
    try:
        with pytest.raises(ValueError, match="[Hh]ash"):
            tokenizer.get_encoding()
    finally:
        monkeypatch.undo()
        tokenizer.get_encoding.cache_clear()
