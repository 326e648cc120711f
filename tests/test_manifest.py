"""Outputs and manifests (core/manifest.py): every stage checks its --out before any work, with one line."""

import os

import pytest

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output
from tests.conftest import assert_one_line_error


def test_check_output(tmp_path):
    (tmp_path / "file").write_text("x")
    assert check_output(tmp_path / "new" / "deeper") == tmp_path / "new" / "deeper"   # creatable: fine
    assert check_output(tmp_path / "r.json", file=True) == tmp_path / "r.json"
    with pytest.raises(InputError, match="is a file"):
        check_output(tmp_path / "file")
    with pytest.raises(InputError, match="is a folder"):
        check_output(tmp_path, file=True)
    with pytest.raises(InputError, match="nothing can be created under it"):
        check_output(tmp_path / "file" / "sub")
    with pytest.raises(InputError, match="not writable"):
        check_output("/proc/noisecli-test")
    if os.geteuid() != 0:   # root may write anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        with pytest.raises(InputError, match="not writable"):
            check_output(ro / "out")


@pytest.mark.parametrize("stage", ["prepare", "pretrain", "eval-ntp", "extract", "probe", "theory k",
                                   "theory prop1", "reproduce"])
def test_every_stage_refuses_an_output_it_cannot_write_before_any_work(stage, cli, tmp_path, dataset, small_jsonl):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    args = {"prepare": ["prepare", small_jsonl],
            "pretrain": ["pretrain", "--data", dataset, "--preset", "tiny"],
            "eval-ntp": ["eval-ntp", tmp_path / "nothing", "--data", dataset],
            "extract": ["extract", "--backbone", "hf:sentence-transformers/all-MiniLM-L6-v2", "--task", "movie"],
            "probe": ["probe", tmp_path],
            "theory k": ["theory", "k", "--clean", tmp_path, "--noisy", tmp_path],
            "theory prop1": ["theory", "prop1", "--alpha", "0.1", "--pc", "0.5", "--pn", "0.001"],
            "reproduce": ["reproduce", "--budget", "micro"]}[stage]
    out = blocker / "out" if stage in ("extract", "reproduce") else blocker
    r = cli(*args, "--out", tmp_path if stage == "theory prop1" else out)
    assert_one_line_error(r, "--out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file"]   # nothing else written
