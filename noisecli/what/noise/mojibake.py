"""Mojibake: the "decoding errors" of the paper's introduction. Real UTF-8 text decoded as Windows-1252
(bytes it leaves undefined as Latin-1, as Windows does), then tokenized with GPT-2's BPE, so "café"
becomes "cafÃ©". The text is the clean documents of `--noise-from DIR` (decoded back from its tokens;
BPE is lossless) or, by default, the embedded French Wikipedia corpus, whose accents make the errors
dense. Only documents the decoding changes are kept (pure ASCII survives it intact and is no noise);
each is followed by <|endoftext|>, and the stream is read like `tokens`' from a seeded start.
Our choice, as the paper gives no recipe for this kind of noise."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what import tokenizer
from noisecli.what.noise import NOISES
from noisecli.what.noise.base import NoiseOptions
from noisecli.what.noise.tokens import TokenStream, clean_dataset

# Latin-1 decodes every byte to the code point of the same number; CP1252 differs on 0x80-0x9F
_CP1252 = {b: bytes([b]).decode("cp1252", errors="ignore") or chr(b) for b in range(0x80, 0xA0)}
_TO_CP1252 = str.maketrans({chr(b): c for b, c in _CP1252.items()})


def garble(text: str) -> str:
    """UTF-8 bytes of `text` read as Windows-1252."""
    return text.encode("utf-8").decode("latin-1").translate(_TO_CP1252)


def _documents(noise_from: Path | None) -> tuple[list[str], dict]:
    if noise_from is None:
        from noisecli.what.corpus import embedded_corpus
        corpus = embedded_corpus("fr")
        return list(corpus.documents()), {"from": "fr", "from_source": corpus.description}
    meta, tokens = clean_dataset(Path(noise_from))
    ids = np.asarray(tokens)
    ends = np.flatnonzero(ids == tokenizer.EOT)
    docs = [tokenizer.decode(d) for d in np.split(ids, ends + 1) if len(d)]
    return [d.removesuffix(tokenizer.EOT_TEXT) for d in docs], {
        "from": str(Path(noise_from).resolve()), "from_source": meta.get("source"),
        "from_train_sha256": meta.get("sha256", {}).get("train.bin")}


@NOISES.register("mojibake",
                 "UTF-8 text decoded as Windows-1252 and re-tokenized (\"café\" → \"cafÃ©\"); text from "
                 "--noise-from DIR or the embedded French corpus")
class Mojibake(TokenStream):
    takes_noise_from = True

    def __init__(self, seed: int, options: NoiseOptions):
        super().__init__(seed, options)
        docs, source = _documents(options.noise_from)
        garbled = [g for d in docs if (g := garble(d)) != d]
        if not garbled:
            raise InputError("mojibake noise: the text holds no non-ASCII character, so decoding it as "
                             "Windows-1252 changes nothing")
        ids, _ = tokenizer.encode_documents(garbled)
        self.use(ids)
        self.params.update(source, documents=len(garbled), documents_unchanged=len(docs) - len(garbled),
                           how="UTF-8 bytes decoded as Windows-1252 (undefined bytes as Latin-1), "
                               "GPT-2 BPE, each document + EOT; read from a seeded start, wrapping around")
