"""`noisecli reproduce --budget micro`: the whole pipeline end to end, its report, and resuming."""

import json
import re

from tests.conftest import assert_one_line_error


def test_micro_reproduction_writes_the_report_and_resumes(cli, tmp_path):
    out = tmp_path / "micro"
    r = cli("reproduce", "--budget", "micro", "--out", out)
    assert r.exit_code == 0, r
    report = (out / "report.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", report)
    assert len(figures) >= 4 and all((out / f).stat().st_size > 5_000 for f in figures)
    for name in ("fig2a_loss_vs_iter.png", "fig3a_loss_on_noise.png", "fig4_datasets.png"):
        assert f"eval/{name}" in figures
    assert "theory/random-0.2/k.png" in figures                      # Figure 7(a)
    for table in ("table1", "table5"):
        for ext in ("json", "csv", "md"):
            assert (out / "probe" / table / f"results.{ext}").is_file()
    assert "| backbone | method | movie (linear) | movie (mlp) | wiki-topic (linear)" in report
    table1 = json.loads((out / "probe" / "table1" / "results.json").read_text())["rows"]
    assert {r["backbone"] for r in table1} == {f"gpt:{n}@12" for n in ("clean", "random-0.01", "random-0.05",
                                                                      "random-0.2", "gaussian-0.05", "french-0.2")}
    table1_md = report.split("Table 1")[1].split("Table 5")[0]
    for name in ("clean", "french-0.2"):   # one table row per run and method
        assert table1_md.count(f"| gpt:{name}@12 | baseline |") == 1 and table1_md.count(f"| gpt:{name}@12 | lgm |") == 1
    for ext in ("json", "csv"):
        assert (out / "report" / f"ntp_final.{ext}").is_file() and (out / "report" / f"findings.{ext}").is_file()
    findings = json.loads((out / "report" / "findings.json").read_text())["findings"]
    assert {f["finding"] for f in findings} == {"loss rise relative to α", "loss on the noise vs ln 50257",
                                                  "Gaussian against uniform-like noise", "k", "multilingual case",
                                                  "LGM gain"}
    ntp = json.loads((out / "report" / "ntp_final.json").read_text())["rows"]
    assert {r["run"] for r in ntp} == {"random-0.01", "random-0.05", "random-0.2", "gaussian-0.05", "french-0.2"}
    for row in ntp:   # each number in the report is the one eval-ntp measured
        assert f"{row['noisy_loss']:.4f}" in report
    # five noisy runs and the clean one, trained with the same seed and iterations
    runs = {p.name: json.loads((p / "run.json").read_text()) for p in (out / "runs").iterdir()}
    assert len(runs) == 6 and len({r["seed"] for r in runs.values()}) == 1
    manifest = json.loads((out / "reproduce.json").read_text())
    assert manifest["budget"] == "micro" and all(not s["skipped"] for s in manifest["stages"])

    # rerun after removing eval-ntp's results: only eval-ntp and what is derived from it are redone
    (out / "eval" / "results.json").unlink()
    r = cli("reproduce", "--budget", "micro", "--out", out)
    assert r.exit_code == 0, r
    stages = {s["stage"]: s for s in json.loads((out / "reproduce.json").read_text())["stages"]}
    redone = {name for name, s in stages.items() if not s["skipped"]}
    assert redone == {"eval-ntp", "theory k + predict (from eval-ntp's losses)", "report"}
    assert (out / "eval" / "results.json").is_file()

    assert_one_line_error(cli("reproduce", "--budget", "small", "--out", out), "micro")


def test_paper_budget_prints_the_full_plan(cli, tmp_path):
    r = cli("reproduce", "--budget", "paper", "--out", tmp_path / "p")
    assert r.exit_code == 0, r
    text = " ".join(r.stdout.split())
    assert "--preset gpt2-124m --gpus 8" in text and "openwebtext" in text and "--lgm" in text
    assert not (tmp_path / "p").exists()
    assert_one_line_error(cli("reproduce", "--budget", "huge"), "budget")
    assert_one_line_error(cli("reproduce", "--budget", "micro", "--launch"), "launch")
