"""Fault injection: what users will do, through the CLI. Bad input is one line on stderr starting with
`noisecli: error:`, exit code 2, no traceback and nothing left under --out; damaged checkpoints are
named and resume falls back; signals leave no staging folder and exit 130/143 after saving; data that
would silently give a wrong result is refused (or warned about where going on is defensible); and runs
killed at random points resume to the bit-identical result."""

import csv
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from noisecli.training import checkpoint
from tests.conftest import FAST, MINILM, ROOT, assert_one_line_error


def noisecli_process(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "noisecli", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, **kw)


def nothing_under(path: Path) -> bool:
    return not path.exists() or not any(path.rglob("*"))


def no_staging_left(folder: Path) -> bool:
    return not any(".partial-" in p.name or ".tmp-" in p.name for p in folder.rglob("*"))


# ---------------------------------------------------------------- numbers that must not slip through

@pytest.mark.parametrize("args,needle", [
    (["prepare", "{corpus}", "--alpha", "0.1", "--dist", "gaussian", "--mean", "nan"], "--mean must be a finite"),
    (["prepare", "{corpus}", "--alpha", "0.1", "--dist", "gaussian", "--std", "0"], "--std must be > 0"),
    (["prepare", "{corpus}", "--val-fraction", "inf"], "--val-fraction must be a finite"),
    (["pretrain", "--data", "{data}", "--n-head", "0"], "--n-head must be >= 1"),
    (["pretrain", "--data", "{data}", "--dropout", "1.5"], "--dropout must be in [0, 1)"),
    (["pretrain", "--data", "{data}", "--lr", "nan"], "--lr must be a finite"),
    (["eval-ntp", "{run}", "--data", "{data}", "--batch-size", "0"], "--batch-size must be >= 1"),
    (["probe", "{run}", "--gamma", "nan", "--lgm"], "--gamma must be a finite"),
    (["probe", "{run}", "--batch-size", "0.5"], "not a valid int"),
    (["probe", "{run}", "--lam", "-1"], "--lam must be >= 0"),
    (["theory", "prop1", "--alpha", "0.2", "--pc", "0.5", "--pn", "0.1", "--k", "inf"], "--k must be a finite"),
    (["theory", "curve", "--alpha", "0.2", "--pc", "0.5", "--pn", "0.1", "--points", "0"], "--points must be >= 1"),
    (["finetune", "--lr", "0"], "--lr must be > 0"),
    (["finetune", "--reg-option", "smart.mu=inf"], "must be finite"),
    (["extract", "--backbone", MINILM, "--task", "movie", "--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_numbers_are_checked_before_any_work(cli, dataset, runs, small_jsonl, tmp_path, args, needle):
    out = tmp_path / "out"
    fill = {"{corpus}": small_jsonl, "{data}": dataset, "{run}": runs[0] / "clean"}
    args = [fill.get(a, a) for a in args]
    assert_one_line_error(cli(*args, "--out", out.with_suffix(".json") if args[0] == "theory" else out), needle)
    assert nothing_under(out) and not out.with_suffix(".json").exists()


# ---------------------------------------------------------------- damaged checkpoints and manifests

@pytest.fixture
def damaged_run(runs, tmp_path):
    """A copy of the clean 4-iteration run (checkpoints at 2 and 4) whose newest weights are truncated."""
    run = tmp_path / "run"
    shutil.copytree(runs[0] / "clean", run)
    newest = checkpoint.list_checkpoints(run)[-1][1]
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:weights.stat().st_size // 2])
    return run, newest


def test_damaged_checkpoint_is_named_by_every_reader(cli, damaged_run, dataset, tmp_path):
    run, newest = damaged_run
    assert_one_line_error(cli("eval-ntp", newest, "--data", dataset, "--out", tmp_path / "e"), str(newest), "damaged")
    assert_one_line_error(cli("extract", "--backbone", f"gpt:{newest}", "--task", "movie", "--out", tmp_path / "x"),
                          str(newest), "damaged")
    assert_one_line_error(cli("theory", "lemma1", "--checkpoint", newest, "--data", dataset,
                              "--out", tmp_path / "l.json"), "damaged")
    (newest / "noisecli.json").write_text("{not json")
    assert_one_line_error(cli("eval-ntp", run, "--data", dataset, "--out", tmp_path / "e2"), "noisecli.json")
    assert nothing_under(tmp_path / "e") and nothing_under(tmp_path / "x") and nothing_under(tmp_path / "e2")


def test_resume_falls_back_to_the_newest_checkpoint_that_loads(cli, damaged_run, runs, tmp_path):
    run, newest = damaged_run
    older = checkpoint.list_checkpoints(run)[0][1]
    (older / "state.pt").write_bytes(b"not a torch file")
    r = cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--save-every", "2", "--keep-last", "5",
            "--eval-every", "4", "--out", run, "--resume")
    assert_one_line_error(r, "no checkpoint that loads")   # both damaged: nothing to resume from
    shutil.rmtree(run)
    shutil.copytree(runs[0] / "clean", run)
    weights = newest / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    r = cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--save-every", "2", "--keep-last", "5",
            "--eval-every", "4", "--out", run, "--resume")
    assert r.exit_code == 0, r
    warnings = [line for line in r.stderr.splitlines() if line.startswith("noisecli: warning:")]
    assert len(warnings) == 1 and str(newest) in warnings[0] and "truncated" in warnings[0]
    assert [it for it, _ in checkpoint.list_checkpoints(run)] == [2, 4, 6]   # 4 was written again from 2
    assert checkpoint.damage(newest, state=True) is None


def test_damaged_manifests(cli, runs, tmp_path, minilm_features):
    run = tmp_path / "run"
    shutil.copytree(runs[0] / "clean", run)
    (run / "run.json").unlink()
    assert_one_line_error(cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--out", run, "--resume"),
                          "run.json is missing")
    feats = tmp_path / "feats"
    shutil.copytree(minilm_features, feats)
    (feats / "extract.json").write_text('{"broken": ')
    assert_one_line_error(cli("probe", feats, "--seeds", "1", "--out", tmp_path / "p"), "extract.json")
    assert nothing_under(tmp_path / "p")


# ---------------------------------------------------------------- data that would be silently wrong

def _csv(path, rows, header=("text", "label")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_bad_task_files_are_refused(cli, tmp_path):
    texts = [f"sentence number {i} about films" for i in range(40)]
    cases = {
        "one class": (_csv(tmp_path / "one.csv", [(t, "pos") for t in texts]), "single class"),
        "ragged": (_csv(tmp_path / "ragged.csv", [(t, i % 2) for i, t in enumerate(texts)] + [("no label here",)]),
                   "row 42 has 1 fields"),
        "float labels": (_csv(tmp_path / "float.csv", [(t, 0.7 if i % 2 else 0) for i, t in enumerate(texts)]),
                         "not a whole number"),
    }
    for name, (path, needle) in cases.items():
        out = tmp_path / name.replace(" ", "_")
        assert_one_line_error(cli("extract", "--backbone", MINILM, "--task", path, "--out", out), needle)
        assert nothing_under(out)


def test_token_file_outside_gpt2s_vocabulary(cli, runs, tmp_path):
    bad = tmp_path / "bad.bin"
    np.array([1, 2, 50257, 3] * 100, dtype=np.uint16).tofile(bad)
    assert_one_line_error(cli("eval-ntp", runs[0] / "clean", "--data", bad, "--out", tmp_path / "e"), "50257")
    assert nothing_under(tmp_path / "e")


def test_short_val_and_resume_with_another_seed(cli, dataset, runs, tmp_path):
    short = tmp_path / "short"
    shutil.copytree(dataset, short)
    np.array([5] * 20, dtype=np.uint16).tofile(short / "val.bin")
    assert_one_line_error(cli("pretrain", "--data", short, *FAST, "--max-iters", "2", "--out", tmp_path / "r"),
                          "val.bin holds 20 tokens, but", "meta.json says")     # not the file its manifest describes
    meta = json.loads((short / "meta.json").read_text())
    meta["tokens"]["val"], meta["sha256"]["val.bin"] = 20, __import__("hashlib").sha256(
        (short / "val.bin").read_bytes()).hexdigest()
    (short / "meta.json").write_text(json.dumps(meta))                          # a manifest that agrees: too short
    assert_one_line_error(cli("pretrain", "--data", short, *FAST, "--max-iters", "2", "--out", tmp_path / "r"),
                          "val.bin holds 20 tokens, too few")
    assert nothing_under(tmp_path / "r")
    run = tmp_path / "run"
    shutil.copytree(runs[0] / "clean", run)
    assert_one_line_error(cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--out", run, "--resume",
                              "--seed", "7"), "--seed 7 differs")


def test_lemma1_warns_about_a_checkpoint_of_other_data(cli, runs, dataset, tmp_path):
    r = cli("theory", "lemma1", "--checkpoint", runs[0] / "clean", "--data", dataset, "--max-tokens", "2000",
            "--out", tmp_path / "l.json")
    assert r.exit_code == 0, r
    assert any(line.startswith("noisecli: warning:") and "other data" in line for line in r.stderr.splitlines())


# ---------------------------------------------------------------- signals

def test_sigterm_during_prepare_leaves_nothing(small_jsonl, tmp_path):
    big = tmp_path / "big.jsonl"
    big.write_text(small_jsonl.read_text() * 30)
    out = tmp_path / "data" / "set"
    p = noisecli_process("prepare", big, "--out", out, "--alpha", "0.1", "--workers", "1")
    deadline = time.time() + 60
    while time.time() < deadline and not list((tmp_path / "data").glob(".set.partial-*")):
        time.sleep(0.05)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith("noisecli: interrupted by SIGTERM") and "Traceback" not in err
    assert not out.exists() and not any((tmp_path / "data").iterdir())


def test_sigint_stops_training_after_saving(dataset, tmp_path):
    run = tmp_path / "run"
    p = noisecli_process("pretrain", "--data", dataset, *FAST, "--max-iters", "100000", "--eval-every", "100000",
                         "--save-every", "100000", "--out", run)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                          and len((run / "metrics.jsonl").read_text().splitlines()) >= 3):
        time.sleep(0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    assert "Traceback" not in err and json.loads((run / "summary.json").read_text())["status"] == "interrupted"
    assert checkpoint.list_checkpoints(run) and no_staging_left(run)


# ---------------------------------------------------------------- soak: killed at random points

def test_killed_five_times_at_random_points_resumes_bit_identically(cli, dataset, tmp_path):
    args = ["pretrain", "--data", dataset, *FAST, "--max-iters", "24", "--save-every", "1", "--keep-last", "2",
            "--eval-every", "12"]
    assert cli(*args, "--out", tmp_path / "whole").exit_code == 0
    run, rng = tmp_path / "killed", random.Random(2024)
    for _ in range(5):
        resume = ["--resume"] if checkpoint.list_checkpoints(run) else []
        start = checkpoint.list_checkpoints(run)[-1][0] if resume else 0
        p = noisecli_process(*args, "--out", run, *resume)
        target = start + rng.randint(1, 4)   # kill once the run has passed this iteration
        deadline = time.time() + 120
        while time.time() < deadline and p.poll() is None:
            done = checkpoint.list_checkpoints(run)
            if done and done[-1][0] >= target:
                time.sleep(rng.uniform(0, 0.3))   # anywhere in the next step, a save included
                break
            time.sleep(0.02)
        p.kill()
        p.communicate(timeout=60)
    r = cli(*args, "--out", run, "--resume")
    assert r.exit_code == 0, r
    assert no_staging_left(run)
    a, b = (load_file(checkpoint.list_checkpoints(x)[-1][1] / "model.safetensors") for x in (tmp_path / "whole", run))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_sigterm_to_two_processes_stops_both_and_resumes_identically(dataset, tmp_path):
    """The launcher forwards the signal; both workers save and exit within seconds, without the elastic
    agent's traceback; the run then resumes to the same weights as one never interrupted."""
    args = ["pretrain", "--data", dataset, *FAST, "--max-iters", "100000", "--eval-every", "100000",
            "--save-every", "100000", "--procs", "2"]
    run = tmp_path / "cut"
    p = noisecli_process(*args, "--out", run)
    deadline = time.time() + 120
    while time.time() < deadline and not ((run / "metrics.jsonl").exists()
                                          and len((run / "metrics.jsonl").read_text().splitlines()) >= 3):
        time.sleep(0.1)
    t0 = time.time()
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 143 and time.time() - t0 < 15, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("noisecli: interrupted by SIGTERM")
    stopped = checkpoint.list_checkpoints(run)[-1][0]
    end = stopped + 2
    for out, extra in ((run, ["--resume"]), (tmp_path / "whole", [])):
        r = noisecli_process(*args, "--out", out, "--stop-after", end, *extra)
        _, err = r.communicate(timeout=300)
        assert r.returncode == 0, err
    a, b = (load_file(checkpoint.list_checkpoints(x)[-1][1] / "model.safetensors") for x in (tmp_path / "whole", run))
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


def test_optimizer_betas_are_checked_before_any_work(cli, dataset, tmp_path):
    for flag, value in (("--beta1", "1.5"), ("--beta2", "-0.5"), ("--beta2", "1")):
        assert_one_line_error(cli("pretrain", "--data", dataset, "--out", tmp_path / "r", flag, value), flag)
    assert not (tmp_path / "r").exists()


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_to_reproduce_during_paired_pretraining_exits_as_shells_do(signum, tmp_path):
    """reproduce trains two runs side by side in child processes: a stop signal reaches both, each saves, and
    reproduce exits 128 + the signal (143 for SIGTERM, 130 for SIGINT) with one line and no traceback, leaving no
    process behind; run again, it resumes."""
    out = tmp_path / "r"
    p = noisecli_process("reproduce", "--budget", "micro", "--out", out)
    deadline = time.time() + 240
    while time.time() < deadline and not list((out / "runs").glob("*/metrics.jsonl")) and p.poll() is None:
        time.sleep(0.2)
    kids = _children(p.pid)
    p.send_signal(signum)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signum, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith(
        f"noisecli: interrupted by {signal.Signals(signum).name}"), err
    time.sleep(1)
    assert not [k for k in kids if Path(f"/proc/{k}").exists() and "zombie" not in
                Path(f"/proc/{k}/status").read_text().lower()], "a child outlived reproduce"


def test_sigterm_during_finetune_saves_and_exits_143(tmp_path):
    out = tmp_path / "ft"
    p = noisecli_process("finetune", "--model", MINILM, "--task", "movie", "--limit", "400", "--epochs", "50",
                         "--batch-size", "8", "--max-length", "16", "--reg", "none", "--out", out)
    deadline = time.time() + 240
    while time.time() < deadline and not list(out.glob("runs/*/*/*/metrics.jsonl")) and p.poll() is None:
        time.sleep(0.2)
    time.sleep(1)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "Traceback" not in err and err.strip().splitlines()[-1].startswith("noisecli: interrupted by SIGTERM"), err
    assert json.loads((out / "results.json").read_text())["status"] == "interrupted"


def test_manifests_with_fields_of_the_wrong_type_are_one_line_naming_the_field(cli, runs, tmp_path, minilm_features):
    """Every manifest the tool reads back is validated against its schema: a field of the wrong type is one line
    naming the file and the field, never a KeyError or TypeError."""
    import torch

    def edited(src: Path, name: str, change) -> Path:
        dst = tmp_path / f"{name}-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(src, dst)
        change(dst)
        return dst

    def set_json(path: Path, **fields):
        path.write_text(json.dumps({**json.loads(path.read_text()), **fields}))

    data = edited(runs[1], "data", lambda d: set_json(d / "meta.json", alpha="0.2"))
    assert_one_line_error(cli("pretrain", "--data", data, *FAST, "--max-iters", "2", "--out", tmp_path / "r1"),
                          "meta.json", "field 'alpha'")
    data = edited(runs[1], "data", lambda d: set_json(d / "meta.json", tokens={"train": "many", "val": 3}))
    assert_one_line_error(cli("pretrain", "--data", data, *FAST, "--max-iters", "2", "--out", tmp_path / "r2"),
                          "meta.json", "field 'tokens.train'")
    run = edited(runs[0] / "clean", "run", lambda r: set_json(checkpoint.list_checkpoints(r)[-1][1] / "noisecli.json",
                                                             iter="four"))
    assert_one_line_error(cli("eval-ntp", run, "--data", runs[1], "--out", tmp_path / "e"), "noisecli.json", "'iter'")
    run = edited(runs[0] / "clean", "run", lambda r: set_json(r / "run.json", seed="1337"))
    assert_one_line_error(cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--out", run, "--resume"),
                          "run.json", "field 'seed'")
    run = edited(runs[0] / "clean", "run", lambda r: [torch.save({"optimizer": {}}, f / "state.pt")
                                                      for _, f in checkpoint.list_checkpoints(r)])
    assert_one_line_error(cli("pretrain", "--data", runs[1], *FAST, "--max-iters", "6", "--out", run, "--resume"),
                          "state.pt", "'iter'")
    feats = edited(minilm_features, "feats", lambda f: set_json(f / "extract.json", num_classes="two"))
    assert_one_line_error(cli("probe", feats, "--seeds", "1", "--out", tmp_path / "p"), "extract.json", "'num_classes'")
    assert nothing_under(tmp_path / "p") and not (tmp_path / "r1").exists() and not (tmp_path / "e").exists()


@pytest.mark.parametrize("error, needle", [(OSError(28, "No space left on device", "train.bin"), "the disk is full"),
                                           (MemoryError(), "out of memory")])
def test_a_full_disk_or_no_memory_is_one_line_and_leaves_nothing(cli, small_jsonl, tmp_path, monkeypatch, error, needle):
    """Resources that run out mid-stage: one line saying what ran out and what to lower, exit 1, and the
    staging folder gone (the output folder as before the command)."""
    from noisecli.what import prepare as prepare_module
    real = prepare_module.TokenWriter.write

    def fail_later(self, tokens):
        real(self, tokens)
        raise error
    monkeypatch.setattr(prepare_module.TokenWriter, "write", fail_later)
    out = tmp_path / "out"
    r = cli("prepare", small_jsonl, "--workers", "1", "--out", out)
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and needle in lines[0], r
    assert nothing_under(out) and not [p for p in tmp_path.iterdir() if ".partial" in p.name]


def test_suspicious_but_usable_input_gets_a_warning(cli, runs, tmp_path):
    """A noisy run given as the clean --baseline, and keys under a group's table ([theory]) in a config file,
    go on with one `noisecli: warning:` line each."""
    r = cli("eval-ntp", runs[0] / "clean", "--baseline", runs[0] / "noisy", "--data", runs[1], "--max-tokens", "300",
            "--out", tmp_path / "e")
    assert r.exit_code == 0 and "warning: --baseline" in r.stderr and "trained with noise" in r.stderr, r
    (tmp_path / "c.toml").write_text("[theory]\nalpha = 0.3\n")
    r = cli("theory", "prop1", "--config", tmp_path / "c.toml", "--pc", "0.5", "--pn", "0.01", "--json")
    assert r.exit_code == 0 and "warning: --config" in r.stderr and json.loads(r.stdout)["alpha"] == 0.3, r


def test_hugging_face_weights_are_loaded_strictly(cli, tmp_path):
    """A model folder with a tensor missing, or renamed, or of another width is one line naming it; nothing is
    run on freshly initialised weights."""
    from safetensors.torch import load_file, save_file

    from noisecli.core.hub import hf_location
    src = Path(hf_location("sentence-transformers/all-MiniLM-L6-v2")[0])
    weights = load_file(str(src / "model.safetensors"))
    name = next(k for k in weights if "attention.self.query.weight" in k)
    for case, change in (("missing", lambda w: w.pop(name)),
                         ("renamed", lambda w: w.__setitem__(name.replace("query", "kwery"), w.pop(name))),
                         ("narrow", lambda w: w.__setitem__(name, w[name][:, :16].contiguous()))):
        folder = tmp_path / case
        shutil.copytree(src, folder)
        w = dict(weights)
        change(w)
        save_file(w, str(folder / "model.safetensors"), metadata={"format": "pt"})
        out = tmp_path / f"f-{case}"
        assert_one_line_error(cli("extract", "--backbone", f"hf:{folder}", "--task", "movie", "--limit", "20",
                                  "--out", out), "weight")
        assert nothing_under(out)
