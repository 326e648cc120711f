"""The tools researchers already use: TensorBoard and W&B mirror metrics.jsonl (rank 0, offline W&B), and
lm-evaluation-harness runs offline on an exported checkpoint."""

import json
import subprocess
import sys

import pytest

from noisecli.training import report_to
from tests.conftest import FAST, assert_one_line_error


def test_report_to_tensorboard_and_wandb(cli, dataset, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    run = tmp_path / "run"
    r = cli("pretrain", "--data", dataset, *FAST, "--max-iters", "4", "--eval-every", "2", "--out", run,
            "--report-to", "tensorboard,wandb")
    assert r.exit_code == 0, r
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(run / "tensorboard"))
    events.Reload()
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    train = [(m["iter"], m["train_loss"]) for m in logged if "train_loss" in m]
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars("train_loss")] == train
    assert [e.step for e in events.Scalars("val_loss")] == [m["iter"] for m in logged if "val_loss" in m]
    offline = list((run / "wandb").glob("offline-run-*"))
    assert len(offline) == 1 and list(offline[0].glob("*.wandb"))


def test_report_to_a_missing_library_is_one_line(cli, dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(report_to.importlib.util, "find_spec", lambda name: None)
    assert_one_line_error(cli("pretrain", "--data", dataset, "--report-to", "tensorboard", "--out", tmp_path / "r"),
                          "pip install 'noisecli[tensorboard]'")
    assert not (tmp_path / "r").exists()


def test_lm_eval_runs_offline_on_an_export(cli, runs, tmp_path):
    pytest.importorskip("lm_eval")
    out = tmp_path / "hf"
    assert cli("export", runs[0] / "clean", out).exit_code == 0
    rows = [{"question": q, "choices": c, "answer": 0} for q, c in (
        ("The capital of France is", [" Paris", " banana"]), ("Two plus two equals", [" four", " purple"]),
        ("The sky is", [" blue", " seven"]), ("Water is", [" wet", " loud"]))]
    (tmp_path / "tiny.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "tiny.yaml").write_text(
        "task: noisecli_tiny\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {tmp_path / 'tiny.jsonl'}\ntest_split: test\noutput_type: multiple_choice\n"
        "doc_to_text: \"{{question}}\"\ndoc_to_choice: \"{{choices}}\"\ndoc_to_target: \"{{answer}}\"\n"
        "metric_list:\n  - metric: acc\n")
    r = subprocess.run([sys.executable, "-m", "lm_eval", "--model", "hf", "--model_args", f"pretrained={out}",
                        "--tasks", "noisecli_tiny", "--include_path", str(tmp_path), "--device", "cpu",
                        "--batch_size", "4", "--output_path", str(tmp_path / "res")], capture_output=True, text=True,
                       env={**__import__("os").environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(next((tmp_path / "res").rglob("results_*.json")).read_text())
    assert 0.0 <= result["results"]["noisecli_tiny"]["acc,none"] <= 1.0


@pytest.mark.parametrize("placement", ["append", "interleave"])
def test_from_tokens_gives_the_bytes_of_a_full_prepare(cli, small_jsonl, tmp_path, placement):
    clean, full, reuse = tmp_path / "clean", tmp_path / "full", tmp_path / "reuse"
    assert cli("prepare", small_jsonl, "--out", clean, "--workers", "1").exit_code == 0
    noise = ["--alpha", "0.2", "--dist", "gaussian", "--placement", placement]
    assert cli("prepare", small_jsonl, "--out", full, "--workers", "2", *noise).exit_code == 0
    r = cli("prepare", "--from-tokens", clean, "--out", reuse, *noise)
    assert r.exit_code == 0, r
    for name in ("train.bin", "val.bin", "noise.bin"):
        assert (full / name).read_bytes() == (reuse / name).read_bytes()
    a, b = (json.loads((x / "meta.json").read_text()) for x in (full, reuse))
    assert a["sha256"] == b["sha256"] and a["documents"] == b["documents"] and b["from_tokens"]["split_seed"] == 1337
    assert_one_line_error(cli("prepare", "--from-tokens", full, "--out", tmp_path / "x", "--alpha", "0.1"),
                          "holds noise")


def test_a_nanogpt_folder_trains_with_alpha_unknown(cli, dataset, tmp_path):
    nano = tmp_path / "nano"
    nano.mkdir()
    for name in ("train.bin", "val.bin"):
        (nano / name).write_bytes((dataset / name).read_bytes())
    r = cli("pretrain", "--data", nano, *FAST, "--max-iters", "2", "--eval-every", "2", "--out", tmp_path / "run")
    assert r.exit_code == 0, r
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["alpha"] is None and run["noise"] is None
    r = cli("pretrain", "--data", nano, *FAST, "--max-iters", "4", "--eval-every", "2", "--out", tmp_path / "run",
            "--resume")
    assert r.exit_code == 0, r
    (nano / "meta.json").write_text("{}")   # a manifest that says nothing is not a dataset of ours
    assert_one_line_error(cli("pretrain", "--data", nano, *FAST, "--max-iters", "2", "--out", tmp_path / "r2"),
                          "meta.json lacks")


def test_extract_takes_parquet_tsv_and_any_datasets_folder(cli, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    texts = [f"this film number {i} was " + ("great fun" if i % 2 else "a dull mess") for i in range(60)]
    labels = ["pos" if i % 2 else "neg" for i in range(60)]
    pq.write_table(pa.table({"sentence": texts, "y": labels}), tmp_path / "t.parquet")
    (tmp_path / "t.tsv").write_text("sentence\ty\n" + "".join(f"{t}\t{y}\n" for t, y in zip(texts, labels)))
    hub = tmp_path / "hubds"   # what `datasets` loads from a folder: its train/test files
    hub.mkdir()
    pq.write_table(pa.table({"sentence": texts[:40], "y": labels[:40]}), hub / "train.parquet")
    pq.write_table(pa.table({"sentence": texts[40:], "y": labels[40:]}), hub / "test.parquet")
    for name, task in (("parquet", tmp_path / "t.parquet"), ("tsv", tmp_path / "t.tsv"), ("hub", f"hf:{hub}")):
        out = tmp_path / f"f_{name}"
        r = cli("extract", "--backbone", "hf:sentence-transformers/all-MiniLM-L6-v2", "--task", task,
                "--text-field", "sentence", "--label-field", "y", "--out", out)
        assert r.exit_code == 0, r
        meta = json.loads((out / "extract.json").read_text())
        assert meta["labels"] == ["neg", "pos"]
        counts = {s: v["samples"] for s, v in meta["splits"].items()}
        assert sum(counts.values()) == 60 and (name != "hub" or counts["test"] == 20)
    assert_one_line_error(cli("extract", "--backbone", "hf:sentence-transformers/all-MiniLM-L6-v2", "--task",
                              f"hf:{hub}", "--text-field", "body", "--out", tmp_path / "bad"), "no column 'body'")
