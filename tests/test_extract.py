"""`noisecli extract` on real offline tasks: our tiny GPT-2 checkpoint, local CSV tasks, resume."""

import json

import numpy as np
import torch

from noisecli.how.extract import read_split
from noisecli.how.tasks import load_task
from tests.conftest import assert_one_line_error


def test_extract_gpt_writes_splits_with_metadata_and_resumes(cli, gpt_features, runs):
    manifest = json.loads((gpt_features / "extract.json").read_text())
    assert manifest["num_classes"] == 2 and manifest["dim"] == 64 and manifest["pool"] == "last"
    task = load_task("movie", limit=80)
    for split in ("train", "val", "test"):
        x, y, meta = read_split(gpt_features / f"{split}.safetensors")
        assert x.dtype == torch.float32 and x.shape == (80, 64) and y.dtype == torch.int64
        assert np.array_equal(y.numpy(), task.splits[split].labels)
        assert meta["task"] == "movie" and meta["split"] == split and meta["prompt"] == "{text} this movie is"
        assert len(meta["backbone_sha256"]) == 64
    before = (gpt_features / "train.safetensors").stat().st_mtime_ns
    r = cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "movie", "--limit", "80",
            "--out", gpt_features)
    assert r.exit_code == 0 and "skipped" in r.stdout
    assert (gpt_features / "train.safetensors").stat().st_mtime_ns == before
    r = cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "movie", "--limit", "80",
            "--pool", "mean", "--out", gpt_features)
    assert_one_line_error(r, "other settings")


def test_local_csv_task(cli, tmp_path, runs):
    rows = ["text,label"] + [f"\"{t}\",{'pos' if i % 2 else 'neg'}" for i, t in
                             enumerate(load_task("nyt", limit=40).splits["train"].inputs[i]["text"].replace('"', "'")
                                       for i in range(40))]
    (tmp_path / "mine.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "f"
    r = cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", tmp_path / "mine.csv",
            "--prompt", "Review: {text} Sentiment:", "--out", out)
    assert r.exit_code == 0, r
    manifest = json.loads((out / "extract.json").read_text())
    assert manifest["labels"] == ["neg", "pos"] and manifest["prompt"] == "Review: {text} Sentiment:"
    assert sum(manifest["splits"][s]["samples"] for s in ("train", "val", "test")) == 40


def test_bad_inputs_fail_with_one_line(cli, tmp_path, runs):
    assert_one_line_error(cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "imdb-x",
                              "--out", tmp_path / "e"), "unknown task")
    assert_one_line_error(cli("extract", "--backbone", "llama:foo", "--task", "movie", "--out", tmp_path / "e"),
                          "unknown backbone")
    assert_one_line_error(cli("extract", "--backbone", f"gpt:{runs[0] / 'bert-clean'}", "--task", "movie",
                              "--out", tmp_path / "e"), "is a bert checkpoint; use bert:")
    assert_one_line_error(cli("extract", "--backbone", "timm:not_a_model", "--task", "digits",
                              "--out", tmp_path / "e"), "unknown timm model")
