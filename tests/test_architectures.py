"""The contract every pre-training architecture keeps (what/architectures/), run over the registry, so a new
architecture is one file these tests pick up: it trains and its loss falls, an interrupted run resumes
bit-exactly, a token file is scored on exactly the tokens `scored_tokens` names, and its Hugging Face export
reloads with the same logits."""

import json

import numpy as np
import pytest
import torch
import transformers
from safetensors.torch import load_file

from noisecli.training import checkpoint
from noisecli.what.architectures import ARCHITECTURES, architecture, load_model
from noisecli.what.export import ExportConfig, export
from noisecli.what.pretrain import PretrainConfig, pretrain
from noisecli.what.scoring import window_losses
from noisecli.what.token_files import open_tokens

NAMES = ARCHITECTURES.names()


def _config(name: str, data, out, **kw) -> PretrainConfig:
    arch = architecture(name)
    return PretrainConfig(data=data, out=out, arch=name, preset=arch.default_preset, n_layer=1, n_head=2, n_embd=32,
                          block_size=16, batch_size=2, grad_accum=2, max_iters=6, warmup_iters=1, lr=3e-3,
                          eval_every=3, eval_windows=4, save_every=3, log_every=1, dtype="float32", device="cpu", **kw)


@pytest.fixture(scope="module", params=NAMES)
def trained(request, dataset, tmp_path_factory):
    """(name, a whole run, the same run interrupted at iteration 3 and resumed)."""
    root = tmp_path_factory.mktemp(f"arch-{request.param}")
    pretrain(_config(request.param, dataset, root / "whole"))
    pretrain(_config(request.param, dataset, root / "cut", stop_after=3))
    pretrain(_config(request.param, dataset, root / "cut", resume=True))
    return request.param, root / "whole", root / "cut"


def _metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_it_trains_and_resumes_bit_exactly(trained):
    name, whole, cut = trained
    losses = [m["train_loss"] for m in _metrics(whole) if "train_loss" in m]
    assert len(losses) == 6 and np.isfinite(losses).all()
    assert [m for m in _metrics(whole) if "val_loss" in m][-1]["val_loss"] < _metrics(whole)[0]["val_loss"]
    assert [m.get("train_loss") for m in _metrics(whole)] == [m.get("train_loss") for m in _metrics(cut)]
    a, b = (load_file(str(checkpoint.resolve(r) / "model.safetensors")) for r in (whole, cut))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert checkpoint.read_info(whole)["arch"] == name


def test_scoring_predicts_exactly_the_scored_tokens(trained, dataset):
    name, whole, _ = trained
    model, _ = load_model(whole)
    val = open_tokens(dataset / "val.bin")[:1000]
    sums, counts = window_losses(model, val, batch_size=4)
    assert counts.sum() == len(architecture(name).scored_tokens(val, model.config.block_size)) > 0
    assert np.isfinite(sums).all() and 0 < sums.sum() / counts.sum() < 12


def test_export_reloads_with_equal_logits(trained, tmp_path):
    name, whole, _ = trained
    export(ExportConfig(checkpoint=whole, out=tmp_path / "hf"))
    config = transformers.AutoConfig.from_pretrained(tmp_path / "hf")
    hf = getattr(transformers, config.architectures[0]).from_pretrained(tmp_path / "hf").eval()
    ours, _ = load_model(whole)
    ids = torch.tensor([[464, 2068, 7586, 21831, 18045, 625, 262, 16931]])
    with torch.no_grad():
        assert torch.allclose(hf(input_ids=ids).logits, architecture(name).logits(ours, ids), atol=1e-4)
