"""Noise taken from another prepared clean dataset's training tokens (`--noise-from DIR`), e.g. French
text as Pⁿ for an English model (the paper's §3.5): consecutive tokens from a seeded random start,
wrapping around at the end."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what.noise import NOISES
from noisecli.what.noise.base import DRAW_CHUNK, Noise, NoiseOptions


class TokenStream(Noise):
    """A fixed token array read from a seeded random start, wrapping around. Its chunks are slices, so
    drawing them in other processes would only copy the array: `parallel` is off."""

    parallel = False

    def use(self, stream: np.ndarray) -> None:
        self.stream = stream
        self.capacity = len(stream)
        self.start = int(self.rng(3).integers(0, self.capacity))
        self.params.pop("support", None)
        self.params["start"] = self.start

    def chunk(self, j: int) -> np.ndarray:
        idx = (self.start + j * DRAW_CHUNK + np.arange(DRAW_CHUNK, dtype=np.int64)) % self.capacity
        return np.asarray(self.stream[idx], dtype=np.uint16)


def clean_dataset(folder: Path, option: str = "--noise-from") -> tuple[dict, np.ndarray]:
    """(meta.json, train.bin) of a prepared dataset that holds no noise."""
    from noisecli.what.token_files import open_tokens, read_meta
    meta = read_meta(folder)
    if meta.get("alpha", 0) != 0:
        raise InputError(f"{option} {folder}: that dataset already holds noise (alpha={meta['alpha']}); "
                         "prepare it with --alpha 0")
    return meta, open_tokens(Path(folder) / "train.bin")


@NOISES.register("tokens",
                 "consecutive tokens of another prepared clean dataset (--noise-from DIR), e.g. another language")
class Tokens(TokenStream):
    takes_noise_from = True
    needs_noise_from = True

    def __init__(self, seed: int, options: NoiseOptions):
        super().__init__(seed, options)
        if options.noise_from is None:
            raise InputError("--dist tokens takes its noise from --noise-from DIR (a prepared clean dataset)")
        folder = Path(options.noise_from)
        meta, tokens = clean_dataset(folder)
        self.use(tokens)
        self.params.update({"from": str(folder.resolve()), "from_source": meta.get("source"),
                            "from_train_sha256": meta.get("sha256", {}).get("train.bin"),
                            "how": "consecutive tokens from a seeded random start, wrapping around"})
