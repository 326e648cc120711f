"""`noisecli probe` on extracted features, and its batched training (vectorised AdamW, stacked grids)
against plain one-model training."""

import json

import pytest
import torch
from safetensors.torch import save_file

from noisecli.how.probe.train_heads import train_heads
from tests.conftest import assert_one_line_error


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
    # Table 2: the same grid, (γ, λ) chosen on validation like lr and batch size: one LGM row, the best
    r = cli("probe", gpt_features, "--head", "linear", "--reg", "lgm", "--gamma", "0.001,0.1", "--lam", "0,0.15",
            "--seeds", "2", "--batch-size", "8", "--epochs", "2", "--select-gamma-lam", "--out", tmp_path / "t2")
    assert r.exit_code == 0, r
    chosen = [row for row in json.loads((tmp_path / "t2" / "results.json").read_text())["rows"] if row["method"] == "lgm"]
    assert len(chosen) == 1 and chosen[0]["variant"] is None
    best = max(lgm.values(), key=lambda row: row["val_acc"])
    assert chosen[0]["val_acc"] == best["val_acc"] and chosen[0]["test_acc"] == best["test_acc"]
    grid = json.loads((tmp_path / "t2" / "grid.json").read_text())["grid"]
    assert len({(g["method"], g["gamma"], g["lam"]) for g in grid}) == 5     # every pair is still in the grid
    assert_one_line_error(cli("probe", gpt_features, "--lgm", "--gamma", "nan", "--out", tmp_path / "x"), "--gamma")


def _features(folder, splits):
    folder.mkdir(parents=True, exist_ok=True)
    for name, (x, y) in splits.items():
        save_file({"features": x, "labels": y}, str(folder / f"{name}.safetensors"))
    return folder


def test_bad_features_fail_with_one_line(cli, tmp_path):
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


def test_the_grid_reports_each_learning_rate_and_seed_as_trained_alone():
    from noisecli.how.probe.command import Features, ProbeConfig, fit
    from noisecli.how.probe.train_heads import accuracy
    g = torch.Generator().manual_seed(0)
    splits = {}
    for name, n in (("train", 120), ("val", 40), ("test", 40)):
        x = torch.randn(n, 8, generator=g)
        splits[name] = (x, (x[:, 0] + 0.3 * torch.randn(n, generator=g) > 0).long())
    cfg = ProbeConfig(features=[], seeds=2, lr=[1e-5, 3e-2], batch_size=[16], epochs=2)
    grid = fit(Features("f", "b", "t", 2, splits), "linear", "lgm", cfg, torch.device("cpu"))["grid"]
    for point in grid:   # lr 1e-5 barely moves from chance, lr 3e-2 learns: a mix-up would show
        alone = [accuracy(train_heads(*splits["train"], "linear", 2, [point["lr"]], [sd], 16, 2, 0.01, "lgm"),
                          *splits["val"])[0].item() for sd in (0, 1)]
        assert point["val_acc"] == pytest.approx(alone, abs=1e-6)
    assert grid[1]["val_acc"][0] > grid[0]["val_acc"][0] + 0.1


def test_a_diverging_learning_rate_is_never_a_result(cli, gpt_features, tmp_path):
    # 1e30: non-finite weights; 1e6: finite weights, but a training loss that grew (accuracy near chance)
    r = cli("probe", gpt_features, "--seeds", "1", "--batch-size", "8", "--epochs", "2", "--lr", "1e-3,1e6,1e30",
            "--out", tmp_path / "p")
    assert r.exit_code == 0, r
    grid = json.loads((tmp_path / "p" / "grid.json").read_text())["grid"]
    assert [g["diverged"] for g in grid] == [False, True, True]
    assert json.loads((tmp_path / "p" / "results.json").read_text())["rows"][0]["lr"] == 1e-3
    assert_one_line_error(cli("probe", gpt_features, "--seeds", "1", "--batch-size", "8", "--epochs", "2",
                              "--lr", "1e30", "--out", tmp_path / "q"), "diverged")
    assert not (tmp_path / "q").exists()
