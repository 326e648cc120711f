"""Backbones (how/backbones/): a contract every registered kind keeps, loading its offline `example`
(batched == one sample at a time, and the metadata extract records), then each kind's own behaviour."""

import pytest
import torch

from noisecli.how.backbones import BACKBONES, load_backbone
from noisecli.how.backbones.timm import TABLE13
from noisecli.how.extract import read_split
from noisecli.how.tasks import load_task
from tests.conftest import assert_one_line_error


def _example(kind, runs):
    cls = BACKBONES.get(kind)
    return load_backbone(f"{kind}:{cls.example.format(runs=runs[0])}", **cls.example_options)


@pytest.mark.parametrize("kind", BACKBONES.names())
def test_contract_batched_equals_one_at_a_time_and_metadata(kind, runs):
    backbone = _example(kind, runs)
    assert BACKBONES.get(kind).summary
    task = load_task("movie" if backbone.modality == "text" else "digits", limit=12)
    inputs = task.splits["test"].inputs
    batched = backbone.featurize(task, inputs, batch_size=5)
    single = torch.cat([backbone.featurize(task, [x], batch_size=1) for x in inputs])
    assert batched.shape[0] == len(inputs) and batched.dtype == torch.float32
    assert torch.allclose(batched, single, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1])
    meta = backbone.describe()
    assert meta["backbone"].startswith(f"{kind}:") and meta["modality"] in ("text", "image")
    assert meta["backbone_sha256"] and meta["pool"]


def test_prompt_tail_survives_truncation(runs):
    backbone = load_backbone(f"gpt:{runs[0] / 'clean'}", max_length=16)
    task = load_task("wiki-topic", limit=3)
    ids = backbone.prepare(task.splits["train"].inputs[0], task)
    from noisecli.what.tokenizer import decode
    assert len(ids) == 16 and decode(ids).endswith(" Answer:")


def test_timm_backbone_on_real_digit_images(cli, tmp_path):
    out = tmp_path / "vit"
    r = cli("extract", "--backbone", "timm:test_vit", "--weights", "random", "--task", "digits",
            "--limit", "50", "--out", out)
    assert r.exit_code == 0, r
    x, y, meta = read_split(out / "test.safetensors")
    assert x.shape == (50, 64) and torch.isfinite(x).all() and x.std() > 0
    assert meta["backbone_sha256"] == "random-init:seed=0"
    r = cli("extract", "--backbone", "timm:test_vit", "--task", "movie", "--weights", "random", "--out", tmp_path / "x")
    assert_one_line_error(r, "image")


def test_table_13_backbones_are_named_with_their_timm_tags():
    import timm
    assert len(TABLE13) == 5
    for name in TABLE13.values():
        assert "." in name and name in timm.list_models(pretrained=True), name


def test_a_tagged_timm_name_is_accepted(cli, tmp_path):
    r = cli("extract", "--backbone", "timm:test_vit.r160_in1k", "--weights", "random", "--task", "digits",
            "--limit", "20", "--out", tmp_path / "vit")
    assert r.exit_code == 0, r
    assert_one_line_error(cli("extract", "--backbone", "timm:test_vit.no_such_tag", "--weights", "random",
                              "--task", "digits", "--out", tmp_path / "x"), "no pretrained weights tagged")
