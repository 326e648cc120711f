"""One writer per output folder: a command takes an exclusive lock on `.NAME.lock` beside its --out folder,
and a second command on the same folder is refused with one line naming the process that holds it. The lock
is the operating system's (flock), so a killed process leaves none stuck behind (only an empty file, which the
next command on that folder takes over); a finished command removes its file."""

from __future__ import annotations

import fcntl
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from noisecli.core.errors import InputError


def lock_path(out: Path) -> Path:
    out = Path(out).absolute()
    return out.parent / f".{out.name}.lock"


@contextmanager
def output_lock(out: Path | None) -> Iterator[None]:
    """Hold the lock of `out` for the block (no lock for None, or where the parent folder cannot be made)."""
    if out is None or str(out) == "":
        yield
        return
    path = lock_path(out)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:          # an unwritable place: the stage's own output check says so in one line
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            raise InputError(f"{out} is in use by {holder}; wait for it to finish, or use another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"process {os.getpid()} ({' '.join(sys.argv[:3])[:120]})".encode(), 0)
        try:
            yield
        finally:
            path.unlink(missing_ok=True)     # nothing left beside --out (a refused command never waits on it)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
