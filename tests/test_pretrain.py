"""`noisecli pretrain` on small real data: learning, exact resume, DDP equivalence, checkpoints,
signals, NaN, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors import safe_open

from noisecli.training import checkpoint
from noisecli.what.architectures import load_model
from noisecli.what.models.gpt import GPT
from tests.conftest import FAST, ROOT, assert_one_line_error


def metrics(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def losses(run):
    return {m["iter"]: m["train_loss"] for m in metrics(run) if "train_loss" in m}


def noisecli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "noisecli", *map(str, args)], capture_output=True, text=True,
                          env=env, **kw)


def test_tiny_preset_lowers_the_loss_on_the_embedded_corpus(cli, tmp_path):
    data = tmp_path / "wiki"
    assert cli("prepare", "--out", data, "--workers", "1").exit_code == 0
    r = cli("pretrain", "--data", data, "--out", tmp_path / "run", "--preset", "tiny", "--batch-size", "4",
            "--grad-accum", "1", "--max-iters", "40", "--warmup-iters", "5", "--lr", "2e-3",
            "--eval-every", "40", "--eval-windows", "32", "--log-every", "10", "--dtype", "float32")
    assert r.exit_code == 0, r
    m = metrics(tmp_path / "run")
    assert m[0]["iter"] == 0 and m[0]["val_loss"] > 10.5  # ln(50304) = 10.83 at initialisation
    last = m[-1]
    assert last["iter"] == 40 and last["val_loss"] < m[0]["val_loss"] - 2.5
    assert {"iter", "tokens", "lr", "train_loss", "tokens_per_s", "mfu"} <= set(m[1])
    assert last["tokens"] == 40 * 4 * 128
    run = json.loads((tmp_path / "run/run.json").read_text())
    assert run["model"]["n_layer"] == 4 and run["model"]["vocab_size"] == 50304
    assert run["train"]["lr"] == 2e-3 and run["torch_version"] == torch.__version__


def test_resume_is_bit_identical(cli, dataset, tmp_path):
    args = ["--data", dataset, *FAST, "--max-iters", "8", "--eval-every", "4", "--save-every", "100"]
    assert cli("pretrain", *args, "--out", tmp_path / "full").exit_code == 0
    r = cli("pretrain", *args, "--out", tmp_path / "cut", "--stop-after", "3")
    assert r.exit_code == 0, r
    assert [it for it, _ in checkpoint.list_checkpoints(tmp_path / "cut")] == [3]
    r = cli("pretrain", *args, "--out", tmp_path / "cut", "--resume")
    assert r.exit_code == 0, r
    full, cut = losses(tmp_path / "full"), losses(tmp_path / "cut")
    assert list(full) == list(cut) == list(range(1, 9))
    assert full == cut  # exactly equal floats
    assert metrics(tmp_path / "full")[-1]["val_loss"] == metrics(tmp_path / "cut")[-1]["val_loss"]
    # the schedule did not change: lr at iteration 8 is the cosine's value for max_iters=8
    assert [m["lr"] for m in metrics(tmp_path / "full")] == [m["lr"] for m in metrics(tmp_path / "cut")]


BERT_FAST = ["--arch", "bert", "--preset", "bert-tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "2",
             "--block-size", "32", "--batch-size", "2", "--grad-accum", "2", "--warmup-iters", "2",
             "--eval-windows", "8", "--log-every", "1", "--dtype", "float32"]


def test_bert_mlm_loss_falls_on_the_noisy_corpus(cli, dataset, tmp_path):
    r = cli("pretrain", "--data", dataset, "--out", tmp_path / "bert", "--arch", "bert", "--preset", "bert-tiny",
            "--batch-size", "8", "--grad-accum", "1", "--max-iters", "60", "--warmup-iters", "5", "--lr", "2e-3",
            "--eval-every", "60", "--eval-windows", "32", "--log-every", "20", "--dtype", "float32")
    assert r.exit_code == 0, r
    m = metrics(tmp_path / "bert")
    assert m[0]["val_loss"] > 10.5 and m[-1]["val_loss"] < m[0]["val_loss"] - 2.5    # MLM loss at masked tokens
    assert "noise_loss" in m[-1]                                                      # 10 % noise: scored too
    run = json.loads((tmp_path / "bert/run.json").read_text())
    info = checkpoint.read_info(tmp_path / "bert")
    assert run["arch"] == info["arch"] == "bert" and info["model"]["vocab_size"] == 50304
    model = load_model(tmp_path / "bert")[0]
    assert type(model).__name__ == "BERT" and model.mlm.config.vocab_size == 50304
    assert_one_line_error(cli("pretrain", "--data", dataset, "--arch", "bert", "--preset", "tiny", "--out",
                              tmp_path / "x"), "not a bert preset")


def test_bert_resume_is_bit_identical(cli, dataset, tmp_path):
    args = ["--data", dataset, *BERT_FAST, "--max-iters", "6", "--eval-every", "3", "--save-every", "100"]
    assert cli("pretrain", *args, "--out", tmp_path / "full").exit_code == 0
    assert cli("pretrain", *args, "--out", tmp_path / "cut", "--stop-after", "2").exit_code == 0
    r = cli("pretrain", *args, "--out", tmp_path / "cut", "--resume")
    assert r.exit_code == 0, r
    full, cut = losses(tmp_path / "full"), losses(tmp_path / "cut")
    assert list(full) == list(range(1, 7)) and full == cut     # exactly equal floats
    assert metrics(tmp_path / "full")[-1]["val_loss"] == metrics(tmp_path / "cut")[-1]["val_loss"]


@pytest.mark.parametrize("arch", ["gpt", "bert"])
def test_two_process_ddp_matches_one_process(dataset, tmp_path, arch):
    model = FAST if arch == "gpt" else BERT_FAST
    args = ["pretrain", "--data", dataset, *model, "--grad-accum", "4", "--max-iters", "5", "--eval-every", "5",
            "--threads", "1"]
    one = noisecli(*args, "--out", tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = noisecli(*args, "--out", tmp_path / "two", "--procs", "2", timeout=300)
    assert two.returncode == 0, two.stderr
    a, b = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert list(a) == list(b) == [1, 2, 3, 4, 5]
    assert max(abs(a[i] - b[i]) for i in a) < 1e-5
    assert json.loads((tmp_path / "two/run.json").read_text())["world_size"] == 2
    va, vb = metrics(tmp_path / "one")[-1]["val_loss"], metrics(tmp_path / "two")[-1]["val_loss"]
    assert abs(va - vb) < 1e-5  # evaluation split over ranks and reduced


def test_checkpoint_round_trip_and_retention(cli, dataset, tmp_path):
    run = tmp_path / "run"
    r = cli("pretrain", "--data", dataset, *FAST, "--max-iters", "6", "--save-every", "1", "--keep-last", "2",
            "--milestones", "2", "--eval-every", "6", "--out", run)
    assert r.exit_code == 0, r
    assert [it for it, _ in checkpoint.list_checkpoints(run)] == [2, 5, 6]
    folder = checkpoint.resolve(run)
    assert folder.name == "iter_0000006"
    with safe_open(str(folder / "model.safetensors"), "pt") as f:  # no pickle involved
        keys = set(f.keys())
        assert len(keys & {"transformer.wte.weight", "lm_head.weight"}) == 1  # tied weights stored once
    state = torch.load(folder / "state.pt", weights_only=True)
    assert state["iter"] == 6 and "optimizer" in state
    model, info = load_model(run)
    assert info["iter"] == 6 and info["tokens"] == 6 * 2 * 2 * 32
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr()  # still tied
    again = GPT(model.config)
    again.load_state_dict(model.state_dict())
    x = torch.randint(0, 50257, (2, 32))
    assert torch.equal(model(x)[0], again.eval()(x)[0])
    changed = load_model(folder.parent / "iter_0000002")[0]
    assert not torch.equal(changed(x)[0], model(x)[0])


def test_sigterm_saves_a_resumable_checkpoint(dataset, tmp_path):
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-m", "noisecli", "pretrain", "--data", str(dataset), *FAST,
                          "--max-iters", "100000", "--eval-every", "100000", "--save-every", "100000",
                          "--out", str(run)], env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists() and len(metrics(run)) >= 4):
        time.sleep(0.2)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err          # 128 + SIGTERM, as shells report it, after saving
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    stopped = summary["iter"]
    assert [it for it, _ in checkpoint.list_checkpoints(run)] == [stopped]
    r = noisecli("pretrain", "--data", dataset, *FAST, "--max-iters", "100000", "--eval-every", "100000",
                 "--save-every", "100000", "--out", run, "--resume", "--stop-after", stopped + 2)
    assert r.returncode == 0, r.stderr
    assert max(losses(run)) == stopped + 2


def test_nan_loss_stops_and_keeps_last_good_checkpoint(cli, dataset, tmp_path, monkeypatch):
    run = tmp_path / "run"
    original = GPT.forward
    calls = {"n": 0}

    def poisoned(self, idx, targets=None, reduction="mean"):
        logits, loss = original(self, idx, targets, reduction)
        if self.training:
            calls["n"] += 1
            if calls["n"] > 6:  # 2 micro-steps per iteration: iteration 4 goes bad
                loss = loss * float("nan")
        return logits, loss
    monkeypatch.setattr(GPT, "forward", poisoned)
    r = cli("pretrain", "--data", dataset, *FAST, "--max-iters", "10", "--save-every", "2", "--eval-every", "100",
            "--out", run)
    assert r.exit_code == 1, r
    lines = [l for l in r.stderr.splitlines() if l.startswith("noisecli")]
    assert len(lines) == 1 and "nan" in lines[0] and "iter_0000002" in lines[0]
    assert [it for it, _ in checkpoint.list_checkpoints(run)] == [2]


def test_bad_input(cli, dataset, tmp_path):
    def run(*extra, out=tmp_path / "r"):
        return cli("pretrain", *FAST, "--max-iters", "2", "--out", out, *extra)
    assert_one_line_error(run(), "--data is required")
    assert_one_line_error(run("--data", tmp_path / "nothing"), "neither a prepared dataset")
    bad = tmp_path / "bad"     # a nanoGPT folder (no manifest to disagree with): the files' own checks
    bad.mkdir()
    (bad / "val.bin").write_bytes((dataset / "val.bin").read_bytes())
    (bad / "train.bin").write_bytes(b"\x01\x00\x02")
    assert_one_line_error(run("--data", bad), "not a whole number")
    np.full(1000, 60000, np.uint16).tofile(bad / "train.bin")
    assert_one_line_error(run("--data", bad), "60000")
    np.arange(20, dtype=np.uint16).tofile(bad / "train.bin")
    assert_one_line_error(run("--data", bad), "too few")
    assert_one_line_error(run("--data", dataset, "--preset", "gpt5"), "'gpt5' is not one of")
    assert_one_line_error(run("--data", dataset, "--gpus", "1"), "GPU")
    assert_one_line_error(run("--data", dataset, "--procs", "2", "--grad-accum", "3"), "divide")
    assert_one_line_error(run("--data", dataset, "--resume"), "no checkpoint")
    assert cli("pretrain", *FAST, "--max-iters", "2", "--eval-every", "2", "--data", dataset,
               "--out", tmp_path / "ok").exit_code == 0
    assert_one_line_error(run("--data", dataset, out=tmp_path / "ok"), "--resume")
    assert_one_line_error(run("--data", dataset, "--resume", "--n-layer", "3", out=tmp_path / "ok"), "model config")
    other = tmp_path / "other"
    other.mkdir()
    for name in ("train.bin", "val.bin", "noise.bin"):
        (other / name).write_bytes((dataset / name).read_bytes())
    (other / "meta.json").write_text((dataset / "meta.json").read_text().replace('"seed": 1337', '"seed": 1'))
    assert_one_line_error(run("--data", other, "--resume", out=tmp_path / "ok"), "not the dataset")
    assert not (tmp_path / "r").exists()


def test_float16_scales_the_loss_and_resumes_bit_identically(cli, dataset, tmp_path):
    args = ["--data", dataset, *FAST, "--dtype", "float16", "--max-iters", "4", "--eval-every", "4", "--save-every", "100"]
    assert cli("pretrain", *args, "--out", tmp_path / "full").exit_code == 0
    assert cli("pretrain", *args, "--out", tmp_path / "cut", "--stop-after", "2").exit_code == 0
    state = checkpoint.load_state(checkpoint.resolve(tmp_path / "cut"))
    assert state["scaler"]["scale"] > 1                  # a GradScaler ran, and its scale is in the checkpoint
    assert cli("pretrain", *args, "--out", tmp_path / "cut", "--resume").exit_code == 0
    full, cut = losses(tmp_path / "full"), losses(tmp_path / "cut")
    assert list(full) == [1, 2, 3, 4] and full == cut and all(np.isfinite(list(full.values())))


def test_data_that_disagrees_with_its_manifest_is_refused_before_training(cli, dataset, tmp_path):
    """A truncated, replaced or missing token file, or a manifest field of the wrong type, is one line naming
    what differs; nothing is trained and no run folder is made."""
    import shutil
    cases = {
        "truncated": (lambda d: (d / "train.bin").write_bytes((d / "train.bin").read_bytes()[:-2000]), "holds"),
        "replaced": (lambda d: (d / "val.bin").write_bytes(bytes(reversed((d / "val.bin").read_bytes()))), "sha256"),
        "no noise": (lambda d: (d / "noise.bin").unlink(), "noise.bin is missing"),
        "alpha as text": (lambda d: (d / "meta.json").write_text(
            (d / "meta.json").read_text().replace('"alpha": 0.1', '"alpha": "0.1"')), "field 'alpha'"),
    }
    for name, (damage, needle) in cases.items():
        data = tmp_path / name.replace(" ", "_")
        shutil.copytree(dataset, data)
        damage(data)
        out = tmp_path / f"run_{name.replace(' ', '_')}"
        assert_one_line_error(cli("pretrain", "--data", data, *FAST, "--max-iters", "2", "--out", out), needle)
        assert not out.exists(), name
