"""Token files: flat uint16 arrays on disk, nanoGPT's `train.bin`/`val.bin` format, plus `meta.json`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import BaseModel, Field, StrictInt

from noisecli.core.errors import InputError
from noisecli.core.manifest import Record, read_manifest, sha256_file
from noisecli.what.tokenizer import VOCAB_SIZE

class TokenCounts(BaseModel):
    train: StrictInt = Field(ge=0)
    val: StrictInt = Field(ge=0)
    noise: StrictInt = Field(0, ge=0)


class DatasetManifest(Record):
    """meta.json as the stages read it (prepare writes more; other keys pass)."""
    vocab_size: StrictInt = Field(ge=1)
    alpha: float | None = Field(ge=0, lt=1, strict=True)   # int 0 is allowed by pydantic's strict float
    tokens: TokenCounts
    sha256: dict[str, str] = {}
    placement: str | None = None
    noise: dict = {}
    alpha_actual: float | None = None


DTYPE = np.uint16
TOKEN_FILES = ("train.bin", "val.bin", "noise.bin")
ALWAYS_HASHED = 256 << 20   # token files up to this size are checked against meta.json's sha256 on every start


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
    """A prepared dataset's meta.json; for a nanoGPT-style folder (train.bin and val.bin, no manifest) what
    can be said of it: GPT-2's vocabulary, α unknown (None), no noise.bin."""
    folder = Path(folder)
    path = folder / "meta.json"
    if path.is_file():   # ours: a file without these keys is none of ours (one line, not a KeyError later)
        return read_manifest(path, ("vocab_size", "alpha", "tokens"), DatasetManifest)
    if (folder / "train.bin").is_file() and (folder / "val.bin").is_file():
        return {"format": "nanoGPT token files (no manifest)", "vocab_size": VOCAB_SIZE, "alpha": None,
                "noise": {}, "nanogpt": True}
    raise InputError(f"{folder} is neither a prepared dataset (meta.json) nor a nanoGPT folder "
                     "(train.bin and val.bin); run `noisecli prepare`")


def check_dataset(folder: str | Path, meta: dict, verify: bool = False) -> None:
    """The token files are the ones `meta` (the folder's meta.json) describes, before any work: each file
    present that the manifest counts tokens for (noise.bin too), its size exactly that count, and its content
    the sha256 the manifest records, for files up to ALWAYS_HASHED bytes always and for all with `verify`."""
    if meta.get("nanogpt"):
        return   # no manifest to agree with
    folder, tokens = Path(folder), meta["tokens"]
    counts = {"train.bin": tokens["train"], "val.bin": tokens["val"], "noise.bin": tokens.get("noise", 0)}
    for name, count in counts.items():
        path = folder / name
        if not path.is_file():
            if name == "noise.bin" and count == 0:
                continue
            raise InputError(f"{path} is missing, but {folder / 'meta.json'} says it holds {count:,} tokens")
        size = path.stat().st_size
        if size % 2:
            raise InputError(f"token file {path} is malformed: {size} bytes is not a whole number of uint16 tokens")
        if size != 2 * count:
            raise InputError(f"{path} holds {size // 2:,} tokens, but {folder / 'meta.json'} says {count:,} "
                             "(a truncated, extended or replaced file)")
        want = (meta.get("sha256") or {}).get(name)
        if want and (verify or size <= ALWAYS_HASHED) and sha256_file(path) != want:
            raise InputError(f"{path} is not the file {folder / 'meta.json'} describes (its sha256 differs)")


def data_fingerprint(folder: str | Path) -> str:
    """What identifies a dataset for --resume: its meta.json's sha256; for a nanoGPT folder the sha256 of
    each file's size and its first and last MiB (hashing tens of GB in full would take minutes)."""
    folder = Path(folder)
    if (folder / "meta.json").is_file():
        return sha256_file(folder / "meta.json")
    h = hashlib.sha256(b"nanoGPT")
    for name in ("train.bin", "val.bin"):
        size = (folder / name).stat().st_size
        with open(folder / name, "rb") as f:
            h.update(f"{name}:{size}".encode() + f.read(1 << 20))
            f.seek(max(0, size - (1 << 20)))
            h.update(f.read())
    return h.hexdigest()


def holds_dataset(folder: Path) -> bool:
    return folder.is_dir() and any((folder / name).exists() for name in (*TOKEN_FILES, "meta.json"))


def token_counts(path: Path, chunk: int = 1 << 24) -> np.ndarray:
    """How often each id of the GPT-2 vocabulary occurs in a token file (read in chunks, memory-mapped)."""
    tokens = np.memmap(path, dtype=DTYPE, mode="r") if Path(path).stat().st_size else np.empty(0, DTYPE)
    counts = np.zeros(VOCAB_SIZE, np.int64)
    for i in range(0, len(tokens), chunk):
        counts += np.bincount(tokens[i:i + chunk], minlength=VOCAB_SIZE)
    return counts
