"""The base class of a noise distribution: a seeded, deterministic stream of noise token ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisecli.what.tokenizer import EOT

NOISE_IDS = EOT   # random noise ids lie in [0, 50256): every token but <|endoftext|>
DRAW_CHUNK = 1 << 20


@dataclass
class NoiseOptions:
    """The `prepare` options that distributions read; each reads only the ones it needs."""
    mean: float = 25128.0
    std: float = 500.0
    noise_from: Path | None = None


class Noise:
    """Hands out noise tokens with `draw(n)`, deterministically from the seed.

    The stream is cut into chunks of DRAW_CHUNK tokens; `chunk(j)` gives chunk j on its own, so when
    `parallel` is true, chunks can be drawn in any order and in other processes and still give the same
    stream as `draw`. `capacity` is how many tokens the source can give (None: unlimited). `params` is
    what meta.json records; `probabilities(params)` recomputes the exact distribution from it."""

    name: str = ""
    summary: str = ""
    parallel: bool = True
    takes_noise_from: bool = False   # reads a prepared dataset given by --noise-from
    needs_noise_from: bool = False   # ... and cannot do without one
    capacity: int | None = None

    def __init__(self, seed: int, options: NoiseOptions):
        self.seed = seed
        self.pos = 0  # tokens handed out so far
        self._cached: tuple[int, np.ndarray | None] = (-1, None)
        self.params: dict = {"dist": self.name, "support": [0, NOISE_IDS - 1]}

    def rng(self, *stream: int) -> np.random.Generator:
        """A generator of its own for (seed, *stream): chunk j of a random stream uses rng(2, j)."""
        return np.random.default_rng(np.random.SeedSequence([self.seed, *stream]))

    def chunk(self, j: int) -> np.ndarray:
        """Tokens [j·C, (j+1)·C) of the stream (C = DRAW_CHUNK) as uint16."""
        raise NotImplementedError

    def draw(self, n: int) -> np.ndarray:
        """The next `n` noise tokens as uint16."""
        parts, end = [], self.pos + n
        while self.pos < end:
            j, offset = divmod(self.pos, DRAW_CHUNK)
            take = min(DRAW_CHUNK - offset, end - self.pos)
            if self._cached[0] != j:
                self._cached = (j, self.chunk(j))
            parts.append(self._cached[1][offset:offset + take])
            self.pos += take
        return np.concatenate(parts) if parts else np.empty(0, np.uint16)

    @classmethod
    def probabilities(cls, params: dict) -> np.ndarray | None:
        return None
