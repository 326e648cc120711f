"""The experiment's one list of steps (paper/plan.py): every printed command of the paper plan, and of a
budget, parses back through the CLI into exactly the config that the step holds, so what is printed is
what runs."""

import shlex

import pytest
import typer
from typer.testing import CliRunner

from noisecli.cli import _Group, stage_command
from noisecli.paper.plan import DATASETS, TABLE5, command_line, experiment, paper_scale, table5_regularisers
from noisecli.paper.reproduce import BUDGETS, ReproduceConfig, budget_scale


def _parsed(step):
    """The config the CLI builds from the step's printed command line."""
    seen = []
    app = typer.Typer(cls=_Group, add_completion=False)
    words = step.command.split()
    parent = app
    if len(words) == 2:
        parent = typer.Typer()
        app.add_typer(parent, name=words[0])
    stage_command(words[-1], type(step.config), seen.append, "", parent=parent)
    app.command("unused")(lambda: None)
    args = shlex.split(command_line(step))[1:]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, (command_line(step), r.output)
    return seen[0]


def _scales(tmp_path):
    cfg = ReproduceConfig(out=tmp_path / "micro", budget="micro")
    return {"paper": paper_scale(tmp_path / "paper"), "micro": budget_scale(cfg, BUDGETS["micro"])}


@pytest.mark.parametrize("scale", ["paper", "micro"])
def test_every_command_parses_back_into_its_config(scale, tmp_path):
    steps = experiment(_scales(tmp_path)[scale])
    commands = [s for s in steps if s.command is not None]
    assert {s.command for s in commands} >= {"prepare", "pretrain", "eval-ntp", "extract", "probe", "theory lemma1"}
    for step in commands:
        assert _parsed(step) == step.config, step.name
    if scale == "paper":   # nothing at paper scale needs a step of a budget's own
        assert len(commands) == len(steps)


def test_the_plan_covers_every_dataset_and_run_once(tmp_path):
    steps = experiment(paper_scale(tmp_path))
    prepared = [s.config.out.name for s in steps if s.command == "prepare"]
    assert set(DATASETS) <= set(prepared) and len(prepared) == len(set(prepared))
    runs = [s.config.out.name for s in steps if s.command == "pretrain" and s.config.preset == "gpt2-124m"]
    assert runs == [*DATASETS, "clean-seed2", "clean-seed3"]
    assert table5_regularisers()[:len(TABLE5)] == TABLE5


def _rendered(tmp_path) -> dict[str, dict]:
    """Each step of the paper plan by name: its printed command line, split into words, parsed back."""
    steps = experiment(paper_scale(tmp_path))
    return {s.name: {"words": shlex.split(command_line(s)), "config": _parsed(s)} for s in steps}


def _flag(words: list[str], flag: str) -> str | None:
    return words[words.index(flag) + 1] if flag in words else None


def test_the_rendered_plan_has_the_papers_settings_for_tables_2_5_6_and_9(tmp_path):
    plan = _rendered(tmp_path)
    # Table 2 (E.1.3): batch 8; linear heads lr 6e-4, MLP heads lr 1e-4; γ and λ grid-searched on validation
    for head, lr in (("linear", "0.0006"), ("mlp", "0.0001")):
        step = plan[f"probe table2 {head}"]
        assert (_flag(step["words"], "--lr"), _flag(step["words"], "--batch-size")) == (lr, "8")
        assert step["config"].head == [head]
        assert "--select-gamma-lam" in step["words"] and "--lgm" in step["words"]
        cfg = step["config"]
        assert len(cfg.gamma) > 1 and len(cfg.lam) > 1 and cfg.select_gamma_lam
        assert len(cfg.features) == 5 * 4          # five LLMs × bbc, balanced-copa, mrpc, wic
    # Table 5: on SST-2 with the clean GPT-2, the norm and cosine ablations and L_gm beside the baseline
    t5 = plan["probe Table 5 (ablation)"]
    assert _flag(t5["words"], "--reg") == "gradnorm,cosine,lgm"
    assert [f.name for f in t5["config"].features] == ["clean__sst2"]
    # Table 6: DTD with ConvNeXt-L at (γ, λ) = (0.001, 0.001), (0.05, 0.05), (0.1, 0.1)
    t6 = plan["probe table6 (DTD, ConvNeXt-L)"]["config"]
    assert [f.name for f in t6.features] == ["convnext_large_mlp.clip_laion2b_augreg_ft_in1k__dtd"]
    assert all(g in t6.gamma and lam in t6.lam for g, lam in [(0.001, 0.001), (0.05, 0.05), (0.1, 0.1)])
    assert t6.reg == ["lgm"] and t6.head == ["linear", "mlp"]
    # Table 9: BERT-base read at 1M, 5M and 10M iterations
    bert = [s for name, s in plan.items() if name.startswith("pretrain bert-")]
    assert len(bert) == 3
    for step in bert:
        assert _flag(step["words"], "--milestones") == "1000000,5000000,10000000"
        assert step["config"].max_iters == 10_000_000 and step["config"].preset == "bert-base"
