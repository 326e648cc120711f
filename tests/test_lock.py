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
