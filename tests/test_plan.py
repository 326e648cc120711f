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
    assert runs == [*DATASETS, "clean-seed2"]
    assert table5_regularisers()[:len(TABLE5)] == TABLE5
