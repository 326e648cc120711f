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
                                                                      "random-0.2", "gaussian-0.05", "uniform-0.05",
                                                                      "french-0.2")}
    table1_md = report.split("## How: Table 1")[1].split("## How: Table 5")[0]
    for name in ("clean", "french-0.2"):   # one table row per run and method
        assert table1_md.count(f"| gpt:{name}@12 | baseline |") == 1 and table1_md.count(f"| gpt:{name}@12 | lgm |") == 1
    for ext in ("json", "csv"):
        assert (out / "report" / f"ntp_final.{ext}").is_file() and (out / "report" / f"findings.{ext}").is_file()
    summary = json.loads((out / "report" / "findings.json").read_text())
    findings = summary["findings"]
    assert [f["name"] for f in findings] == [
        "loss rise (random noise)", "trend of the gap over training", "loss on the noise vs its exact entropy",
        "Gaussian against random noise", "other corpora", "k ≫ 1", "Proposition 1",
        "multilingual case (our extension of §3.5)", "Gaussian model's downstream cost", "LGM gain (Table 1)",
        "BERT (Table 9)", "LGM in full fine-tuning (Table 4)"]
    # the report opens with the table of findings, the gate stated once
    assert "| finding | the paper's claim | measured here (95 % interval, seeds) | verdict |" in report
    assert report.count("**Gate.**") == 1 and report.index("| finding |") < report.index("### loss rise")
    # a micro model is barely trained: no finding may claim agreement or disagreement (Table 4's MiniLM is a
    # real model, but 3 steps of fine-tuning leave LGM's gain at most inside the seeds' noise)
    assert summary["margin_nats"] < 1.0 and summary["unigram_cross_entropy"] > 7
    assert all(f["status"] == "not decidable" for f in findings if "Table 4" not in f["name"])
    assert next(f for f in findings if "Table 4" in f["name"])["status"] in ("not decidable", "within noise")
    table4 = json.loads((out / "finetune" / "results.json").read_text())   # Table 4's layout: method ± LGM × task
    assert table4["status"] == "finished" and table4["tasks"] == ["amazon", "movie-rating"]
    assert table4["methods"] == [m for r in ("l2sp", "smart", "lnsr") for m in (r, r + "+lgm")]
    assert all(r["seeds"] == 2 for r in table4["rows"]) and "## How: Table 4" in report
    assert "Verdict: agrees" not in report and f"{summary['unigram_cross_entropy']:.3f}" in report
    assert summary["clean_seeds"] == ["clean", "clean-seed2", "clean-seed3"] and summary["seed_spread"][1] == 2
    entropy = next(f for f in findings if f["name"] == "loss on the noise vs its exact entropy")["data"]["runs"]
    assert {r["run"]: round(r["entropy"], 3) for r in entropy if r["run"].startswith("uniform")} == {"uniform-0.05": 10.825}
    ntp = json.loads((out / "report" / "ntp_final.json").read_text())["rows"]
    assert {r["run"] for r in ntp} == {"random-0.01", "random-0.05", "random-0.2", "gaussian-0.05", "uniform-0.05",
                                       "french-0.2", "clean-seed2", "clean-seed3"}
    bert = json.loads((out / "eval-bert" / "results.json").read_text())   # Table 9: MLM losses, fixed masks
    assert {r["objective"] for r in bert["rows"] + bert["baseline_rows"]} == {"mlm"}
    assert "## What: BERT under noise (Table 9)" in report
    table9 = next(f for f in findings if f["name"] == "BERT (Table 9)")
    assert table9["data"]["unigram_cross_entropy"] > 7 and "clean BERT" in table9["text"]
    for row in ntp:   # each number in the report is the one eval-ntp measured
        assert f"{row['noisy_loss']:.4f}" in report
    # six noisy runs and the clean one with the same seed and iterations, and the clean one with two more seeds
    runs = {p.name: json.loads((p / "run.json").read_text()) for p in (out / "runs").iterdir()}
    gpt = {n: r for n, r in runs.items() if r["arch"] == "gpt"}
    assert len(gpt) == 9 and {r["seed"] for n, r in gpt.items() if not n.startswith("clean-seed")} == {1337}
    assert runs["clean-seed2"]["seed"] == runs["bert-clean-seed2"]["seed"] == 1338 and runs["clean-seed3"]["seed"] == 1339
    assert {n for n, r in runs.items() if r["arch"] == "bert"} == {"bert-clean", "bert-random-0.05", "bert-clean-seed2"}
    manifest = json.loads((out / "reproduce.json").read_text())
    assert manifest["budget"] == "micro" and all(not s["skipped"] for s in manifest["stages"])
    # runs are trained two at a time (one thread each), each a full run of its own
    assert "pretrain clean + random-0.01" in {s["stage"] for s in manifest["stages"]}
    assert all(json.loads((out / "runs" / n / "summary.json").read_text())["status"] == "finished" for n in runs)
    # each run is scored on its own noise only, the other corpora at the last checkpoint only; the clean
    # baseline scores every noise at every checkpoint (k needs it)
    ev = json.loads((out / "eval" / "results.json").read_text())
    assert {r["dataset"] for r in ev["rows"] if r["run"] == "random-0.05"} == {"clean/val", "random-0.05/noise",
                                                                              "other/nyt", "other/movie"}
    assert {r["iter"] for r in ev["rows"] if r["dataset"] == "other/nyt"} == {12}
    assert {r["iter"] for r in ev["baseline_rows"] if r["dataset"] == "random-0.2/noise"} == {6, 12}

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
    assert "--compile --gpus 8" in text and "openwebtext" in text and "--lgm" in text
    assert "--preset gpt2-774m" in text                                    # Table 8
    root = tmp_path / "p"
    assert f"--final-only {root}/data/other/arxiv,{root}/data/other/wikipedia" in text   # Figure 4
    assert "hf:meta-llama/Meta-Llama-3-8B --task wic" in text              # Table 2
    assert "timm:vit_large_patch14_clip_224.laion2b --task rendered-sst2" in text   # Table 3
    assert not (tmp_path / "p").exists()
    assert_one_line_error(cli("reproduce", "--budget", "huge"), "budget")
    import torch
    if not torch.cuda.is_available():   # the gpu budget asks for CUDA before any work
        assert_one_line_error(cli("reproduce", "--budget", "gpu", "--out", tmp_path / "g"), "no CUDA device")
        assert not (tmp_path / "g").exists()
    assert_one_line_error(cli("reproduce", "--budget", "micro", "--launch"), "launch")
