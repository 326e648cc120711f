"""One writer per output folder: a second command on a folder in use is one line naming the holder, and a
killed holder leaves no lock behind."""

import os
import signal
import subprocess
import sys
import time

from noisecli.core.lock import lock_path, output_lock
from tests.conftest import ROOT, assert_one_line_error


def test_a_second_command_on_a_folder_in_use_is_refused(cli, tmp_path, small_jsonl):
    out = tmp_path / "data"
    with output_lock(out):
        r = cli("prepare", small_jsonl, "--out", out)
        assert_one_line_error(r, f"{out} is in use by process {os.getpid()}")
        assert not out.exists()
    assert cli("prepare", small_jsonl, "--out", out).exit_code == 0     # free again


def test_a_killed_holder_leaves_no_lock(tmp_path):
    out = tmp_path / "run"
    code = (f"import time; from pathlib import Path; from noisecli.core.lock import output_lock\n"
            f"with output_lock(Path({str(out)!r})):\n    print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    assert f"process {p.pid}" in lock_path(out).read_text()
    try:
        with output_lock(out):
            raise AssertionError("the lock was not held")
    except Exception as e:
        assert "in use by process" in str(e)
    p.send_signal(signal.SIGKILL)
    p.wait()
    time.sleep(0.1)
    with output_lock(out):     # the operating system released it with the process
        pass


def _alive(pid: int) -> bool:
    """A process that runs (a zombie waiting for its reaper does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def test_a_killed_command_leaves_no_workers_and_the_next_run_removes_its_leftovers(cli, tmp_path):
    import gzip

    from noisecli.what.corpus import data_path
    big = tmp_path / "big.jsonl"
    big.write_text(gzip.open(data_path("corpus/wiki_en.jsonl.gz"), "rt", encoding="utf-8").read() * 4)
    out = tmp_path / "scan"
    p = subprocess.Popen([sys.executable, "-m", "noisecli", "scan", str(big), "--out", str(out), "--workers", "2"],
                         cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    children: list[int] = []
    deadline = time.time() + 60
    while len(children) < 2 and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
        try:
            children = [int(c) for c in open(f"/proc/{p.pid}/task/{p.pid}/children").read().split()]
        except FileNotFoundError:
            break
    assert len(children) >= 2, "the scan's workers did not start"
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while any(_alive(c) for c in children) and time.time() < deadline:
        time.sleep(0.05)
    assert not any(_alive(c) for c in children), "a worker outlived its killed parent"
    assert list(tmp_path.glob(".scan.partial-*")) and not out.exists()    # what the killed run left
    r = cli("scan", big, "--limit", "20", "--out", out)
    assert r.exit_code == 0, r
    assert not list(tmp_path.glob(".scan.partial-*")) and (out / "scan.json").is_file()


def test_a_resumed_run_logs_each_iteration_once(tmp_path):
    import json

    from noisecli.training.metrics import MetricsLog
    log = MetricsLog(tmp_path / "metrics.jsonl")
    for it in (0, 10, 20, 30):
        log.write({"iter": it})
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"iter": 4')                       # cut short by a kill
    log.resume_at(20)                               # the checkpoint at 20 logged its own line
    assert [json.loads(x)["iter"] for x in log.path.read_text().splitlines()] == [0, 10, 20]
    log.resume_at(0)                                # killed before the first checkpoint: iteration 0 is logged again
    assert log.path.read_text() == ""


def test_a_busy_worker_dies_with_its_killed_parent(tmp_path):
    """A pool worker in the middle of a long task (which would otherwise run on to its end) goes with its parent."""
    code = ("import os, time\nfrom noisecli.core.workers import worker_pool\n"
            "with worker_pool(2) as pool:\n"
            "    jobs = [pool.apply_async(time.sleep, (60,)) for _ in range(2)]\n"
            "    time.sleep(0.5)\n"
            "    print(' '.join(open(f'/proc/{os.getpid()}/task/{os.getpid()}/children').read().split()), flush=True)\n"
            "    time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    workers = [int(x) for x in p.stdout.readline().split()]
    assert len(workers) == 2 and all(_alive(w) for w in workers)
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 5
    while any(_alive(w) for w in workers) and time.time() < deadline:
        time.sleep(0.05)
    survivors = [w for w in workers if _alive(w)]
    for w in survivors:
        os.kill(w, signal.SIGKILL)
    assert not survivors, "a busy worker outlived its killed parent"


def test_a_pool_whose_worker_will_not_stop_is_shut_down_anyway(monkeypatch):
    """The watchdog around Pool.terminate: a worker that ignores SIGTERM in a long task is killed after the grace."""
    from noisecli.core import workers
    monkeypatch.setattr(workers, "GRACE_S", 1.0)
    t0 = time.time()
    with workers.worker_pool(2, _ignore_sigterm) as pool:
        pool.apply_async(time.sleep, (60,))
        time.sleep(0.5)
    assert time.time() - t0 < 20


def _ignore_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
