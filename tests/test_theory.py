"""`noisecli theory`: Proposition 1 against hand-computed values, properties of f, and k / Lemma 1 /
predict on real checkpoints."""

import json
import math

import numpy as np
import pytest

from noisecli.why import proposition
from tests.conftest import assert_one_line_error


def test_prop1_regime_1_by_hand():
    p = proposition.proposition1(alpha=0.01, pc=0.5, pn=0.01, k=1.0)
    assert p.eta == pytest.approx(0.01 * 0.5 - 0.99 * 0.01)  # -0.0049
    assert p.threshold == pytest.approx(0.01 / 0.51)
    assert p.regime == 1 and p.clean_loss_bound == pytest.approx(-math.log(0.5))


def test_prop1_regime_2_by_hand_appendix_d3(cli):
    # Appendix D.3 / Figure 9: α = 0.55, k = 1, L_c = 2.9, L_n = 2.8
    r = cli("theory", "prop1", "--alpha", 0.55, "--loss-clean", 2.9, "--loss-noise", 2.8, "--k", 1, "--json")
    assert r.exit_code == 0, r
    res = json.loads(r.stdout)
    pc, pn = math.exp(-2.9), math.exp(-2.8)
    assert res["eta"] == pytest.approx(0.55 * pc - 0.45 * pn) and res["eta"] == pytest.approx(0.0028982, abs=1e-7)
    assert res["threshold"] == pytest.approx(pn / (pc + pn))
    assert res["regime"] == 2 and res["bound_multiplier"] == 2  # α > 1/2
    assert res["clean_loss_bound"] == pytest.approx(-math.log(pc - 2 * res["eta"]))
    assert res["clean_loss_at_eta"] == pytest.approx(-math.log(pc - res["eta"]))
    assert proposition.proposition1(0.2, 0.5, 1e-4, 400.0).bound_multiplier == 3   # k > k_min ≈ 357
    assert proposition.proposition1(0.2, 0.5, 1e-4, 2.0).bound_multiplier is None   # k too small for (3)
    assert proposition.proposition1(0.4, 0.5, 1e-4, 2.0).bound_multiplier is None


def test_f_is_maximal_at_eta_and_the_inequalities_hold():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(3000):
        alpha, pc, pn, k = rng.uniform(0.01, 0.99), rng.uniform(0.01, 1), 10 ** rng.uniform(-5, 0), rng.uniform(0.1, 50)
        e = proposition.eta(alpha, pc, pn, k)
        if not 0 < e < pc:
            assert alpha <= proposition.threshold(pc, pn, k) or e >= pc
            continue
        checked += 1
        f_eta = proposition.f(e, alpha, pc, pn, k)
        assert f_eta > 0  # 0 < ε* = η strictly lowers the mixed loss
        for eps in rng.uniform(0, pc, size=5):
            assert proposition.f(eps, alpha, pc, pn, k) <= f_eta + 1e-12
        lo, hi = e * 0.999, min(e * 1.001, pc * 0.9999)
        assert proposition.f(lo, alpha, pc, pn, k) <= f_eta and proposition.f(hi, alpha, pc, pn, k) <= f_eta
        if alpha > 0.5 and 2 * e < pc:
            assert proposition.f(2 * e, alpha, pc, pn, k) <= 1e-12  # moving 2η or more is worse than nothing
    assert checked > 200


def test_curve_csv_and_plot(cli, tmp_path):
    r = cli("theory", "curve", "--alpha", 0.55, "--loss-clean", 2.9, "--loss-noise", 2.8, "--k", 1,
            "--out", tmp_path / "f.csv", "--figure", tmp_path / "f.png", "--points", 2000, "--json")
    assert r.exit_code == 0, r
    lines = (tmp_path / "f.csv").read_text().splitlines()
    assert lines[0] == "epsilon,f" and len(lines) == 2001
    eps, f = np.loadtxt(tmp_path / "f.csv", delimiter=",", skiprows=1).T
    res = json.loads(r.stdout)
    assert abs(eps[np.argmax(f)] - res["eta"]) < 2 * (eps[1] - eps[0])
    assert (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("args,needle", [
    (["prop1", "--alpha", 1, "--pc", 0.5, "--pn", 0.1], "--alpha"),
    (["prop1", "--alpha", 0, "--pc", 0.5, "--pn", 0.1], "--alpha"),
    (["prop1", "--alpha", 0.2, "--pc", 1.5, "--pn", 0.1], "--pc must be in (0, 1]"),
    (["prop1", "--alpha", 0.2, "--pc", 0.5, "--pn", 0], "--pn must be in (0, 1]"),
    (["prop1", "--alpha", 0.2, "--pc", 0.5, "--pn", 0.1, "--k", 0], "--k"),
    (["prop1", "--alpha", 0.2, "--pc", 0.5], "--pn"),
    (["prop1", "--alpha", 0.2, "--pc", 0.5, "--loss-clean", 1, "--pn", 0.1], "one of each"),
    (["curve", "--alpha", 0.2, "--pc", 0.5, "--pn", 0.1], "--out"),
    (["k", "--clean", "nowhere", "--noisy", "nowhere"], "nowhere"),
])
def test_bad_input(cli, args, needle):
    assert_one_line_error(cli("theory", *args), needle)


def test_k_lemma1_predict_on_real_checkpoints(cli, runs, dataset, tmp_path):
    root, _ = runs
    r = cli("theory", "k", "--clean", root / "clean", "--noisy", root / "noisy", "--out", tmp_path / "k", "--json")
    assert r.exit_code == 0, r
    rows = json.loads(r.stdout)["rows"]
    assert [x["iter"] for x in rows] == [2, 4]
    for x in rows:
        e = math.exp(-x["Lc_clean"]) - math.exp(-x["Lc_noisy"])
        ek = math.exp(-x["Ln_noisy"]) - math.exp(-x["Ln_clean"])
        assert x["epsilon"] == pytest.approx(e)
        assert (x["k"] == pytest.approx(e / ek)) if ek > 0 else (x["k"] is None and "undefined" in x["note"])
    assert {p.name for p in (tmp_path / "k").iterdir()} == {"k.json", "k.csv", "k.png", "k.pdf"}

    r = cli("theory", "lemma1", "--checkpoint", root / "noisy", "--data", dataset, "--json")
    assert r.exit_code == 0, r
    lem = json.loads(r.stdout)
    assert lem["L_clean"] < lem["L_mixture"] < lem["L_noise"]
    assert abs(lem["gap"]) < 0.02 and lem["alpha_in_segment"] == pytest.approx(0.1, abs=0.01)
    clean_dir = runs[1]
    assert_one_line_error(cli("theory", "lemma1", "--checkpoint", root / "noisy", "--data", clean_dir), "noise appended")

    r = cli("theory", "predict", "--clean", root / "clean", "--alpha", 0.1, "--noisy", root / "noisy", "--json")
    assert r.exit_code == 0, r
    pred = json.loads(r.stdout)
    row = rows[-1]
    assert pred["measured_rise"] == pytest.approx(row["Lc_noisy"] - row["Lc_clean"])
    assert pred["clean_loss"] == pytest.approx(row["Lc_clean"]) and "regime" in pred
    r = cli("theory", "predict", "--clean", root / "clean", "--alpha", 0.1, "--json")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["p_n"] == pytest.approx(1 / 50256)


def test_prop1_conclusion_3_needs_the_papers_condition_on_k(cli):
    # α = 0.2, L_c = 3, L_n = 10.8: (3) needs k > α(1−3α)p_c/((1−α)(2−3α)p_n) ≈ 174 (Proposition 1 (3))
    pc, pn = math.exp(-3), math.exp(-10.8)
    k_min = 0.2 * 0.4 * pc / (0.8 * 1.4 * pn)
    assert k_min == pytest.approx(174.3, abs=0.1)
    low = proposition.proposition1(0.2, pc, pn, 1.0)
    c = {x.number: x for x in low.conclusions}
    assert low.regime == 2 and c["2"].holds and not c["3"].holds and c["3"].statement is None
    assert low.clean_loss_bound is None and low.bound_multiplier is None
    assert proposition.f(3 * low.eta, 0.2, pc, pn, 1.0) > 0   # the bound would indeed be false here
    r = cli("theory", "prop1", "--alpha", 0.2, "--loss-clean", 3, "--loss-noise", 10.8, "--k", 1, "--json")
    res = json.loads(r.stdout)
    assert res["clean_loss_bound"] is None and "rises at most" not in res["conclusion"]
    assert "does not apply" in res["conclusion"]
    r = cli("theory", "prop1", "--alpha", 0.2, "--loss-clean", 3, "--loss-noise", 10.8, "--k", 1)
    assert r.exit_code == 0 and "rises at most" not in r.stdout and "not concluded" in r.stdout
    high = proposition.proposition1(0.2, pc, pn, 200.0)
    c = {x.number: x for x in high.conclusions}
    assert c["3"].holds and high.bound_multiplier == 3 and high.f_at_m_eta < 0
    assert high.clean_loss_bound == pytest.approx(-math.log(pc - 3 * high.eta))
    # 1/3 ≤ α ≤ 1/2: (3) says nothing at any k
    assert not {x.number: x for x in proposition.proposition1(0.4, 0.5, 1e-4, 1e6).conclusions}["3"].holds


def test_prop1_3_holds_exactly_where_f_of_m_eta_is_negative():
    rng = np.random.default_rng(1)
    for _ in range(2000):
        alpha, pc, pn, k = rng.uniform(0.01, 0.99), rng.uniform(0.01, 1), 10 ** rng.uniform(-5, 0), 10 ** rng.uniform(-1, 4)
        p = proposition.proposition1(alpha, pc, pn, k)
        c3 = {x.number: x for x in p.conclusions}["3"]
        if c3.holds:   # then the paper's claim must be true: f(ε) < 0 for every ε in [mη, p_c)
            m = p.bound_multiplier
            for eps in np.linspace(m * p.eta, pc, 7, endpoint=False):
                assert proposition.f(eps, alpha, pc, pn, k) < 1e-12


@pytest.mark.parametrize("k", ["-1", "inf", "nan"])
def test_prop1_refuses_undefined_k(cli, k):
    assert_one_line_error(cli("theory", "prop1", "--alpha", 0.2, "--pc", 0.5, "--pn", 0.1, "--k", k), "--k")


def test_predict_reports_undefined_k_without_a_conclusion():
    row = {"iter": 10, "Lc_clean": 3.0, "Lc_noisy": 3.1, "Ln_noisy": 10.9, "Ln_clean": 10.8}  # worse on noise
    pred = proposition.predict_from_losses(row, 0.2)
    assert pred["k"] is None and pred["k_estimated"] is None and "undefined" in pred["k_note"]
    assert pred["predicted_rise_bound"] is None and pred["conclusions"] == []


def test_curve_checks_its_figure_path_before_writing_anything(cli, tmp_path):
    (tmp_path / "afile").write_text("")
    args = ["theory", "curve", "--alpha", "0.1", "--pc", "0.5", "--pn", "0.01", "--out", tmp_path / "c.csv"]
    assert_one_line_error(cli(*args, "--figure", tmp_path / "afile" / "x.png"), "is a file")
    assert_one_line_error(cli(*args, "--figure", tmp_path / "x.xyz"), ".png")
    assert not (tmp_path / "c.csv").exists()
    r = cli(*args, "--figure", tmp_path / "f.png")
    assert r.exit_code == 0 and (tmp_path / "f.png").is_file() and (tmp_path / "c.csv").read_text().startswith("epsilon,f")


def test_k_refuses_one_run_as_both_and_warns_of_a_noisy_clean_run(cli, runs, tmp_path):
    root, _ = runs
    r = cli("theory", "k", "--clean", root / "noisy", "--noisy", f"{root / 'noisy'}/", "--out", tmp_path / "k")
    assert_one_line_error(r, "--clean and --noisy are the same run")
    assert not (tmp_path / "k").exists()
    r = cli("theory", "k", "--clean", root / "noisy", "--noisy", root / "clean", "--out", tmp_path / "k2")
    assert "noisecli: warning: --clean" in r.stderr and "trained with noise" in r.stderr
