"""`noisecli eval-ntp`: exact losses, baseline differences, figures, bad input."""

import csv
import json

import numpy as np
import pytest

from noisecli.training import checkpoint
from noisecli.what.models.gpt import GPT, GPTConfig
from tests.conftest import assert_one_line_error


def test_eval_ntp_with_baseline_and_figures(cli, runs, dataset, tmp_path):
    root, clean_data = runs
    out = tmp_path / "eval"
    r = cli("eval-ntp", root / "noisy", "--data", clean_data, "--data", dataset / "noise.bin",
            "--baseline", root / "clean", "--out", out, "--plot", "--batch-size", "4")
    assert r.exit_code == 0, r
    res = json.loads((out / "results.json").read_text())
    rows, base = res["rows"], res["baseline_rows"]
    assert [(x["iter"], x["dataset"]) for x in rows] == [(2, "clean/val"), (2, "wiki_a0.1/noise"),
                                                          (4, "clean/val"), (4, "wiki_a0.1/noise")]
    assert all(x["alpha"] == 0.1 and x["dist"] == "uniform" for x in rows)
    val_tokens = len(np.fromfile(clean_data / "val.bin", np.uint16))
    assert rows[0]["tokens"] == val_tokens - -(-val_tokens // 33)  # minus one first token per window
    for x in rows:
        b = next(y for y in base if y["iter"] == x["iter"] and y["dataset"] == x["dataset"])
        assert x["diff_same_iter"] == pytest.approx(x["loss"] - b["loss"])
    # iteration 4 at α = 0.1 has seen the clean tokens the baseline saw at iteration 3.6
    row = rows[2]
    assert row["baseline_iter_calibrated"] == pytest.approx(3.6)
    b2, b4 = (next(y["loss"] for y in base if y["iter"] == i and y["dataset"] == "clean/val") for i in (2, 4))
    assert row["diff_calibrated"] == pytest.approx(row["loss"] - (b2 + 0.8 * (b4 - b2)))
    assert rows[0]["diff_calibrated"] is None  # 1.8 is before the baseline's first checkpoint
    # the model has learned something about clean text, and nothing useful about uniform noise
    assert rows[2]["loss"] < rows[0]["loss"] and rows[1]["loss"] > 10.5
    with open(out / "results.csv") as f:
        assert len(list(csv.DictReader(f))) == len(rows) + len(base)
    for name in ("fig2a_loss_vs_iter.png", "fig2b_diff_same_iter.png", "fig2c_diff_calibrated.png",
                 "fig3a_loss_on_noise.png", "fig4_datasets.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG", name
    # several runs with different noise distributions (here: none vs uniform) get Figure 3(b)/(c)
    r = cli("eval-ntp", root / "clean", root / "noisy", "--data", clean_data, "--data", dataset / "noise.bin",
            "--out", tmp_path / "both", "--plot")
    assert r.exit_code == 0, r
    assert (tmp_path / "both/fig3bc_by_distribution.png").read_bytes()[:4] == b"\x89PNG"
    # a single checkpoint and a capped file
    r = cli("eval-ntp", checkpoint.resolve(root / "noisy"), "--data", clean_data, "--max-tokens", "100",
            "--out", tmp_path / "one")
    assert r.exit_code == 0, r
    one = json.loads((tmp_path / "one/results.json").read_text())["rows"]
    assert len(one) == 1 and one[0]["capped"] and one[0]["tokens"] == 100 - 4


def test_eval_ntp_bad_input(cli, runs, tmp_path):
    root, clean_data = runs
    out = tmp_path / "o"
    assert_one_line_error(cli("eval-ntp", root / "noisy", "--out", out), "--data")
    assert_one_line_error(cli("eval-ntp", "--data", clean_data, "--out", out), "checkpoint")
    assert_one_line_error(cli("eval-ntp", tmp_path, "--data", clean_data, "--out", out), "neither")
    assert_one_line_error(cli("eval-ntp", root / "noisy", "--data", tmp_path / "x.bin", "--out", out), "does not exist")
    (tmp_path / "empty.bin").write_bytes(b"")
    assert_one_line_error(cli("eval-ntp", root / "noisy", "--data", tmp_path / "empty.bin", "--out", out), "empty")
    np.full(100, 60000, np.uint16).tofile(tmp_path / "big.bin")
    assert_one_line_error(cli("eval-ntp", root / "noisy", "--data", tmp_path / "big.bin", "--out", out), "vocabulary")
    small = GPT(GPTConfig(n_layer=1, n_head=1, n_embd=16, block_size=16, vocab_size=1000))
    checkpoint.save_checkpoint(tmp_path / "small_vocab", small, 1, {"tokens": 0})
    assert_one_line_error(cli("eval-ntp", tmp_path / "small_vocab", "--data", clean_data, "--out", out),
                          "vocabulary of 50257 tokens")
    assert not out.exists()


def test_eval_ntp_own_noise_only_and_final_only(cli, runs, dataset, tmp_path):
    """--own-noise-only drops the cross pairs (a run on another dataset's noise), never the baseline's;
    --final-only files are scored at each run's newest checkpoint only."""
    root, clean_data = runs
    out, other = tmp_path / "eval", tmp_path / "other"
    other.mkdir()
    (other / "noise.bin").write_bytes((dataset / "noise.bin").read_bytes())   # another dataset's noise
    r = cli("eval-ntp", root / "noisy", "--data", clean_data, "--data", other / "noise.bin",
            "--data", dataset / "noise.bin", "--final-only", dataset / "val.bin", "--own-noise-only",
            "--baseline", root / "clean", "--out", out)
    assert r.exit_code == 0, r
    res = json.loads((out / "results.json").read_text())
    mine = [(x["iter"], x["dataset"]) for x in res["rows"]]
    assert mine == [(2, "clean/val"), (2, "wiki_a0.1/noise"), (4, "clean/val"), (4, "wiki_a0.1/noise"),
                    (4, "wiki_a0.1/val")]
    base = [(x["iter"], x["dataset"]) for x in res["baseline_rows"]]
    assert base == [(i, d) for i in (2, 4) for d in ("clean/val", "other/noise", "wiki_a0.1/noise")] + \
        [(4, "wiki_a0.1/val")]
