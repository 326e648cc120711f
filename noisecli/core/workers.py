"""A pool of worker processes for the stages that spread work over the cores (prepare, scan)."""

from __future__ import annotations

import multiprocessing as mp
from contextlib import contextmanager
from typing import Iterator


def die_with_parent(parent: int, signum: int = 9) -> None:
    """Linux: have the kernel send `signum` (SIGKILL by default) to this process when `parent` dies, so that a
    worker never outlives a command killed with SIGKILL (prctl's PR_SET_PDEATHSIG); if `parent` is already
    gone, go now. Elsewhere nothing: the pool's pipes close and the workers end on their own."""
    import os
    import sys
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signum)     # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os.kill(os.getpid(), signum)


def default_signals() -> None:
    """In a pool worker: the CLI's SIGTERM handler (raise, clean up, exit 143) is the parent's business.
    Inherited by fork, it would let Pool.terminate()'s SIGTERM raise inside a worker that holds the pool's
    queue lock, and its siblings would wait on that lock for ever. The parent stops the workers itself."""
    import signal
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextmanager
def worker_pool(workers: int, initializer=None, initargs: tuple = ()) -> Iterator[mp.pool.Pool | None]:
    """fork, not spawn: it works from any script (spawn needs a __main__ guard) and starts fast; the
    children only tokenize, draw noise or scan, so the parent's threads (the progress bar's) do not matter."""
    if workers <= 1:
        yield None
        return

    import os
    parent = os.getpid()

    def init(*args) -> None:
        default_signals()
        die_with_parent(parent)
        if initializer is not None:
            initializer(*args)
    pool = mp.get_context("fork").Pool(workers, initializer=init, initargs=initargs)
    try:
        yield pool
    finally:
        shut_down(pool)


GRACE_S = 10.0    # seconds a pool's workers get to stop before they are killed


def shut_down(pool: mp.pool.Pool, grace_s: float | None = None) -> None:
    """Pool.terminate() with a watchdog. CPython's terminate SIGTERMs the workers and waits for each; once in the
    suite (an error raised while the workers were still starting) it waited for ever on a worker that was idle,
    its SIGTERM never delivered. After `grace_s` the pool's workers are killed, which ends that wait."""
    import os
    import signal
    import threading
    stopper = threading.Thread(target=pool.terminate, daemon=True)
    stopper.start()
    stopper.join(GRACE_S if grace_s is None else grace_s)
    if stopper.is_alive():
        for p in list(getattr(pool, "_pool", ())):     # the workers (CPython keeps them there)
            try:
                os.kill(p.pid, signal.SIGKILL)
            except (ProcessLookupError, TypeError):
                pass
        stopper.join()
