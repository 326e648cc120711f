"""The command line itself (cli.py): options generated from config dataclasses, typed lists parsed once,
choices from the registries in --help, TOML defaults, and a start that imports no torch."""

import json
import subprocess
import sys
from dataclasses import dataclass

import pytest
import typer
from typer.testing import CliRunner

from noisecli.cli import _Group, stage_command
from noisecli.core.options import opt
from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.what.noise import NOISES
from tests.conftest import assert_one_line_error


@dataclass
class _Config:
    rates: list[float] = opt([0.5], "Rates.")
    kinds: list[str] = opt([], "Kinds.", choices=["a", "b", "c"])
    mode: str = opt("x", "Mode.", choices=["x", "y"])
    fast: bool = opt(False, "A switch.")


def _app(seen: list):
    app = typer.Typer(cls=_Group, add_completion=False)
    stage_command("go", _Config, seen.append, "Go.", parent=app)

    @app.command("other")
    def other() -> None:  # a second command, so `go` stays a subcommand
        pass
    return app


def _invoke(app, *args):
    from tests.conftest import Result
    return Result(CliRunner().invoke(app, [str(a) for a in args]))


def test_list_options_take_commas_or_repeats_and_become_typed_lists(tmp_path):
    seen: list = []
    app = _app(seen)
    assert _invoke(app, "go", "--rates", "1e-3,2", "--rates", "3", "--kinds", "a,c", "--mode", "y").exit_code == 0
    assert seen[-1] == _Config(rates=[1e-3, 2.0, 3.0], kinds=["a", "c"], mode="y")
    assert _invoke(app, "go").exit_code == 0 and seen[-1] == _Config()       # defaults stay lists
    (tmp_path / "c.toml").write_text('rates = [0.1, 0.2]\nkinds = "b"\n')
    assert _invoke(app, "go", "--config", tmp_path / "c.toml").exit_code == 0
    assert seen[-1] == _Config(rates=[0.1, 0.2], kinds=["b"])
    assert_one_line_error(_invoke(app, "go", "--rates", "1,x"), "'x' is not a valid float")
    assert_one_line_error(_invoke(app, "go", "--kinds", "a,z"), "'z' is not one of a, b, c")
    assert_one_line_error(_invoke(app, "go", "--mode", "z"), "'z'")
    assert len(seen) == 3


def test_help_shows_the_registries_choices(cli):
    prepare, probe = cli("prepare", "--help").stdout, cli("probe", "--help").stdout
    assert all(name in prepare for name in NOISES.names())
    assert all(name in probe for name in HEADS.names() + REGULARISERS.names())


@pytest.mark.parametrize("args", [["--help"], ["pretrain", "--help"], ["probe", "--help"], ["extract", "--help"],
                                  ["eval-ntp", "--help"], ["theory", "k", "--help"]])
def test_help_imports_no_torch(args):
    script = ("import sys\nfrom typer.testing import CliRunner\nfrom noisecli.cli import app\n"
              f"r = CliRunner().invoke(app, {args!r})\nassert r.exit_code == 0, r.output\n"
              "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_prints_and_exits_zero(cli):
    import noisecli
    r = cli("--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"noisecli {noisecli.__version__}"


def test_a_nested_toml_table_configures_a_subcommand(cli, tmp_path):
    (tmp_path / "c.toml").write_text("[theory.prop1]\nalpha = 0.3\npc = 0.5\npn = 0.001\nk = 20\njson = true\n"
                                     "[theory.curve]\npoints = 5\n")
    r = cli("theory", "prop1", "--config", tmp_path / "c.toml")
    assert r.exit_code == 0, r
    assert json.loads(r.stdout)["alpha"] == 0.3          # read from [theory.prop1], not ignored
    (tmp_path / "bad.toml").write_text("[theory.prop1]\nalpah = 0.3\n")
    assert_one_line_error(cli("theory", "prop1", "--config", tmp_path / "bad.toml"), "unknown option 'alpah'")


def test_switches_have_a_no_form_that_overrides_the_config_file(tmp_path):
    seen: list = []
    app = _app(seen)
    assert _invoke(app, "go", "--fast").exit_code == 0 and seen[-1].fast is True
    (tmp_path / "c.toml").write_text("fast = true\n")
    assert _invoke(app, "go", "--config", tmp_path / "c.toml").exit_code == 0 and seen[-1].fast is True
    assert _invoke(app, "go", "--config", tmp_path / "c.toml", "--no-fast").exit_code == 0 and seen[-1].fast is False
    help_text = _invoke(app, "go", "--help").stdout
    line = next(line for line in help_text.splitlines() if "--fast" in line)
    assert "--no-fast" in line and "<bool>" not in line


def test_print_config_shows_the_resolved_config_as_toml_that_config_reads(cli, tmp_path):
    (tmp_path / "c.toml").write_text('[finetune]\nlr = 3e-5\ntask = ["amazon", "nyt"]\n')
    r = cli("finetune", "--config", tmp_path / "c.toml", "--seeds", "5", "--print-config")
    assert r.exit_code == 0, r
    import tomllib
    resolved = tomllib.loads(r.stdout)
    assert resolved["lr"] == 3e-5 and resolved["task"] == ["amazon", "nyt"] and resolved["seeds"] == 5
    (tmp_path / "again.toml").write_text(r.stdout)   # and it reads back to the same config
    assert cli("finetune", "--config", tmp_path / "again.toml", "--print-config").stdout == r.stdout


@pytest.mark.parametrize("toml,needle", [
    ("[bogus]\nx = 1\n", "unknown table [bogus]"),
    ("[theory.nope]\nx = 1\n", "unknown table [theory.nope]"),
    ("[theory.prop1.deeper]\nx = 1\n", "unknown table [theory.prop1.deeper]"),
    ("[theory.prop1]\nalphaa = 0.2\n", "unknown option 'alphaa'"),
])
def test_unknown_toml_tables_and_keys_are_one_line(cli, tmp_path, toml, needle):
    (tmp_path / "c.toml").write_text(toml)
    assert_one_line_error(cli("theory", "prop1", "--config", tmp_path / "c.toml", "--alpha", "0.2", "--pc", "0.5",
                              "--pn", "0.1"), needle)


def test_an_option_name_means_one_thing_in_every_command():
    """The same option name has the same type everywhere (--plot was a switch in two commands and a file
    in a third; --max-tokens meant three things), and every number's name has one set of limits."""
    from typing import get_args, get_type_hints

    from noisecli.cli import app

    def base(hint):   # X of X, X | None, list[X]: a grid (list) or an optional value means the same thing
        while get_args(hint):
            hint = next(a for a in get_args(hint) if a is not type(None))
        return hint

    def callbacks(group):
        for cmd in group.registered_commands:
            yield cmd.name, cmd.callback
        for sub in group.registered_groups:
            yield from callbacks(sub.typer_instance)
    seen: dict[str, tuple] = {}
    for name, callback in callbacks(app):
        for p, hint in get_type_hints(callback.config_cls).items():
            hint = base(hint)
            if p in seen and seen[p][0] != hint:
                raise AssertionError(f"--{p}: {seen[p][0]} in {seen[p][1]}, {hint} in {name}")
            seen.setdefault(p, (hint, name))
    assert {"plot", "max_tokens", "max_length", "out", "lr"} <= set(seen)


def test_every_command_is_one_stage_record_and_every_list_names_it(cli):
    """Commands come from their `Stage` records (core/stage.py); `noisecli --help`, the package's docstring and
    the README name each one, so none of those lists can go stale."""
    import noisecli
    from noisecli.cli import stages
    from tests.conftest import ROOT
    records = stages()
    assert len({s.name for s in records}) == len(records)
    top = " ".join(cli("--help").stdout.split())
    theory = " ".join(cli("theory", "--help").stdout.split())
    readme = (ROOT / "README.md").read_text()
    for s in records:
        group, _, name = s.name.rpartition(" ")
        assert name in (theory if group else top), s.name
        assert name in noisecli.__doc__, s.name
        assert f"noisecli {s.name}" in readme, s.name
        assert s.config.__dataclass_fields__ and callable(s.run) and s.help


def test_a_config_that_is_a_folder_and_an_empty_path_are_one_line(cli, tmp_path):
    r = cli("theory", "curve", "--config", tmp_path, "--out", tmp_path / "c.csv")
    assert r.exit_code == 2 and r.stderr.startswith("noisecli: error: --config") and "Traceback" not in r.stderr
    r = cli("theory", "curve", "--out", "")
    assert r.exit_code == 2 and "--out: must not be empty" in r.stderr
