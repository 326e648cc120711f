"""Small helpers every stage uses to write outputs the same way: atomically, hashed, with provenance."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ConfigDict

import noisecli
from noisecli.core.errors import InputError


class Record(BaseModel):
    """The schema of a file a stage reads back, declared beside the stage that writes it: the fields its readers
    use, typed and bounded; any other key passes (writers may add some)."""
    model_config = ConfigDict(extra="allow")


def read_manifest(path: str | Path, keys: tuple[str, ...] = (), schema: type | None = None) -> dict:
    """A JSON manifest (meta.json, run.json, noisecli.json, extract.json, state.json) as a dict. A missing or
    damaged file, a missing key, or (with `schema`, a pydantic model of the file, declared beside the stage that
    writes it) a field of the wrong type or range is one InputError line naming the file and the field."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path} is missing")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InputError(f"{path} is not valid JSON") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} is not a JSON object")
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"{path} lacks {', '.join(missing)}")
    if schema is not None:
        check_schema(data, schema, str(path))
    return data


def check_schema(data: Any, schema: type, where: str) -> None:
    """`data` fits the pydantic model `schema`; else one InputError line: where, the field, what is wrong."""
    import pydantic
    try:
        schema.model_validate(data)
    except pydantic.ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(the whole file)"
        got = repr(first.get("input"))[:40]
        raise InputError(f"{where}: field '{field}': {first['msg'].lower()} (got {got})") from None


def check_output(path: str | Path, what: str = "--out", file: bool = False) -> Path:
    """Fail with one line before any work if `path` cannot be written: an existing file where a folder goes
    (or a folder where a file goes), or a place whose nearest existing parent is not a writable folder."""
    path = Path(path)
    if path.exists() and path.is_dir() == file:
        raise InputError(f"{what} {path} is {'a folder' if file else 'a file'}; give a {'file' if file else 'folder'} path")
    parent = path if path.exists() else path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{what} {path}: {parent} is a file, so nothing can be created under it")
    if not os.access(parent, os.W_OK | os.X_OK) or str(parent.resolve()).startswith(("/proc", "/sys")):
        raise InputError(f"{what} {path}: {parent} is not writable")
    return path


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def command_line() -> str:
    """The command line that produced an output, as the user typed it (best effort)."""
    prog = Path(sys.argv[0]).name if sys.argv else "python"
    if prog in ("__main__.py", "-c"):
        prog = "noisecli"
    return " ".join([prog, *sys.argv[1:]])


def provenance() -> dict[str, Any]:
    return {"noisecli_version": noisecli.__version__, "command": command_line()}


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A hidden temporary name beside `path` to write to: renamed onto `path` when the block ends, removed
    if it raises, so readers never see half a file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


@contextmanager
def staging_dir(out: Path) -> Iterator[Path]:
    """A hidden temporary folder beside `out` to write into. On success its files are renamed into
    `out` (created if needed); on any error or interrupt it is removed, so nothing half-written remains.
    Files are moved in name order with any `meta.json`/`*.json` manifest last, so a manifest's presence
    means the output is complete. Staging folders that a killed run left beside `out` are removed first (one
    writer per folder: core/lock.py refuses a second command on it)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    import glob
    for stale in out.parent.glob(f".{glob.escape(out.name)}.partial-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        yield tmp
        out.mkdir(parents=True, exist_ok=True)
        names = sorted(p.name for p in tmp.iterdir())
        for name in sorted(names, key=lambda n: n.endswith(".json")):
            os.replace(tmp / name, out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
