"""Layers point down (pyproject.toml's [tool.importlinter] contract, checked by import-linter): core imports
no stage, training no what/how/why/paper, what/why/how no paper; and the check fails on a deliberate
violation, so it cannot pass by checking nothing."""

import os

from importlinter.cli import lint_imports

from tests.conftest import ROOT


def _lint() -> bool:
    here = os.getcwd()
    os.chdir(ROOT)            # import-linter reads pyproject.toml and the package from the working folder
    try:
        return lint_imports(no_cache=True, no_logo=True) == 0   # the CLI's function: 0 when every contract holds
    finally:
        os.chdir(here)


def test_layers_point_down():
    assert _lint()


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract():
    probe = ROOT / "noisecli" / "core" / "_layer_probe.py"
    probe.write_text("from noisecli.paper import report  # noqa: F401  a violation, for this test only\n")
    try:
        assert not _lint()
    finally:
        probe.unlink()
    assert _lint()


def _names_in_strings(package: str, higher: tuple[str, ...]) -> list[str]:
    """Where a module of `package` names a higher layer's module in a string (import-linter sees imports only)."""
    import re
    found = []
    for path in sorted((ROOT / "noisecli" / package).rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name in re.findall(r"""["'](noisecli\.\w+)""", line):
                if name.startswith(higher):
                    found.append(f"{path.relative_to(ROOT)}:{number}: {name}")
    return found


def test_no_lower_layer_names_a_higher_one_in_a_string():
    stages = ("noisecli.what", "noisecli.how", "noisecli.why", "noisecli.scan", "noisecli.paper", "noisecli.cli")
    assert _names_in_strings("core", ("noisecli.training", *stages)) == []
    assert _names_in_strings("training", stages) == []
    for layer in ("what", "why", "how"):
        assert _names_in_strings(layer, ("noisecli.paper", "noisecli.scan", "noisecli.cli")) == []
    assert _names_in_strings("what", ("noisecli.how", "noisecli.why")) == []
