"""A bounded run of the fuzzer (tests/fuzz.py): valid fixtures of every kind the tool reads, mutated (JSON
fields, bytes, encodings), given to the command that reads them. Each command keeps the promise: it works, or
one `noisecli: error:` line, exit 2, nothing written. bench/fuzz.py runs the same for longer."""

import itertools
import json
import os
import shutil

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from noisecli.training import checkpoint
from tests.conftest import FAST
from tests.fuzz import byte_mutation, copy_fixture, json_mutation, keeps_the_promise

EXAMPLES = int(os.environ.get("NOISECLI_FUZZ_EXAMPLES", 6))   # per target: seconds in the suite; bench/fuzz.py soaks
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="NOISECLI_FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
_n = itertools.count()


def _place(tmp_path, src, name):
    return copy_fixture(src, tmp_path / f"{name}-{next(_n)}")


def _check(result, out):
    """The promise kept; then this example's copies are removed (a soak makes thousands of them)."""
    broken = keeps_the_promise(result, out)
    assert broken is None, f"{broken}\n{result.stderr[-2000:]}"
    for path in out.parent.iterdir():
        shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)


@FUZZ
@given(data=st.data(), target=st.sampled_from(["meta.json", "train.bin", "val.bin", "noise.bin"]))
def test_pretrain_on_a_mutated_dataset(cli, dataset, tmp_path, data, target):
    d = _place(tmp_path, dataset, "data")
    raw = (d / target).read_bytes()
    if target == "meta.json" and data.draw(st.booleans()):
        (d / target).write_text(json.dumps(data.draw(json_mutation(json.loads(raw)))))
    else:
        (d / target).write_bytes(data.draw(byte_mutation(raw)))
    out = tmp_path / f"run-{next(_n)}"
    _check(cli("pretrain", "--data", d, *FAST, "--max-iters", "1", "--eval-every", "1", "--out", out), out)


@FUZZ
@given(data=st.data(), target=st.sampled_from(["noisecli.json", "model.safetensors", "run.json"]))
def test_eval_ntp_on_a_mutated_run(cli, runs, tmp_path, data, target):
    run = _place(tmp_path, runs[0] / "clean", "run")
    path = run / target if target == "run.json" else checkpoint.list_checkpoints(run)[-1][1] / target
    raw = path.read_bytes()
    if target.endswith(".json") and data.draw(st.booleans()):
        path.write_text(json.dumps(data.draw(json_mutation(json.loads(raw)))))
    else:
        path.write_bytes(data.draw(byte_mutation(raw)))
    out = tmp_path / f"eval-{next(_n)}"
    _check(cli("eval-ntp", run, "--data", runs[1], "--max-tokens", "300", "--out", out), out)


@FUZZ
@given(data=st.data(), target=st.sampled_from(["extract.json", "train.safetensors", "test.safetensors"]))
def test_probe_on_mutated_features(cli, minilm_features, tmp_path, data, target):
    feats = _place(tmp_path, minilm_features, "feats")
    raw = (feats / target).read_bytes()
    if target.endswith(".json") and data.draw(st.booleans()):
        (feats / target).write_text(json.dumps(data.draw(json_mutation(json.loads(raw)))))
    else:
        (feats / target).write_bytes(data.draw(byte_mutation(raw)))
    out = tmp_path / f"probe-{next(_n)}"
    _check(cli("probe", feats, "--seeds", "1", "--epochs", "1", "--lr", "1e-3", "--batch-size", "64", "--out", out),
           out)


@FUZZ
@given(data=st.data())
def test_prepare_on_a_mutated_corpus_and_config(cli, small_jsonl, tmp_path, data):
    corpus = _place(tmp_path, small_jsonl, "corpus.jsonl")
    corpus.write_bytes(data.draw(byte_mutation(corpus.read_bytes())))
    config = tmp_path / f"prepare-{next(_n)}.toml"
    config.write_bytes(data.draw(byte_mutation(b'alpha = 0.1\ndist = "uniform"\nval_fraction = 0.1\n')))
    out = tmp_path / f"prep-{next(_n)}"
    _check(cli("prepare", corpus, "--config", config, "--workers", "1", "--out", out), out)


@pytest.mark.parametrize("header", ["text,label", "\ufefftext,label"])
@FUZZ
@given(data=st.data())
def test_load_task_on_a_mutated_table(tmp_path, data, header):
    """The task reader (extract and finetune read through it) on a mutated CSV: a task or one InputError."""
    from noisecli.core.errors import InputError
    from noisecli.how.tasks import load_task
    rows = [header] + [f"sentence number {i} about films,{i % 2}" for i in range(40)]
    path = tmp_path / f"task-{next(_n)}.csv"
    path.write_bytes(data.draw(byte_mutation(("\n".join(rows) + "\n").encode())))
    try:
        task = load_task(str(path))
    except InputError as e:
        assert "\n" not in str(e)
        return
    finally:
        path.unlink()
    assert len(task.splits["train"].labels) > 0
