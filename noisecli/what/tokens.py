"""Token files: flat uint16 arrays on disk, nanoGPT's `train.bin`/`val.bin` format, plus `meta.json`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.manifest import read_manifest
from noisecli.what.tokenizer import VOCAB_SIZE

DTYPE = np.uint16
SPLITS = ("train.bin", "val.bin", "noise.bin")


class TokenWriter:
    """Appends uint16 token arrays to a file, counting them and hashing them on the way (so a
    finished file never has to be read again for its sha256)."""

    def __init__(self, path: Path):
        self.path, self.count = path, 0
        self.sha256 = hashlib.sha256()
        self._f = open(path, "wb")

    def write(self, tokens: np.ndarray | bytes) -> None:
        data = tokens if isinstance(tokens, (bytes, bytearray)) else np.asarray(tokens, DTYPE).tobytes()
        self._f.write(data)
        self.sha256.update(data)
        self.count += len(data) // 2

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> "TokenWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_tokens(path: str | Path, vocab_size: int = VOCAB_SIZE, check_ids: bool = True,
                chunk: int = 1 << 24) -> np.memmap:
    """Memory-map a token file read-only, refusing files that are missing, empty, of odd size, or
    (with `check_ids`) that hold ids >= `vocab_size`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"token file {path} does not exist")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"token file {path} is empty")
    if size % 2:
        raise InputError(f"token file {path} is malformed: {size} bytes is not a whole number of uint16 tokens")
    tokens = np.memmap(path, dtype=DTYPE, mode="r")
    if check_ids:
        for i in range(0, len(tokens), chunk):
            top = int(tokens[i:i + chunk].max())
            if top >= vocab_size:
                raise InputError(f"token file {path} holds id {top}, outside the vocabulary of {vocab_size}")
    return tokens


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / "meta.json"
    if not path.is_file():
        raise InputError(f"{folder} is not a prepared dataset (no meta.json; run `noisecli prepare`)")
    return read_manifest(path)


def holds_dataset(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in (*SPLITS, "meta.json"))


def token_counts(path: Path, chunk: int = 1 << 24) -> np.ndarray:
    """How often each id of the GPT-2 vocabulary occurs in a token file (read in chunks, memory-mapped)."""
    tokens = np.memmap(path, dtype=DTYPE, mode="r") if Path(path).stat().st_size else np.empty(0, DTYPE)
    counts = np.zeros(VOCAB_SIZE, np.int64)
    for i in range(0, len(tokens), chunk):
        counts += np.bincount(tokens[i:i + chunk], minlength=VOCAB_SIZE)
    return counts
