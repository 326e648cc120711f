"""Registries (core/registry.py): names without imports, lookups with one-line errors, classes registered
from a user's own code, and the README's tables generated from them."""

import subprocess
import sys

import pytest

from noisecli.catalog import readme_tables
from noisecli.core.errors import InputError
from noisecli.what.noise import NOISES, Noise, make_noise
from tests.conftest import ROOT


def test_readme_tables_are_the_registries():
    text = (ROOT / "README.md").read_text()
    assert readme_tables(text) == text, "run `python -m noisecli.catalog` to regenerate the README's tables"
    for name in NOISES.names():
        assert f"| `{name}` | {NOISES.get(name).summary} |" in text


def test_names_come_without_importing_the_entries():
    script = ("import sys\nfrom noisecli.how.probe.heads import HEADS\nfrom noisecli.how.probe.regularisers import REGULARISERS\n"
              "from noisecli.how.backbones import BACKBONES\n"
              "print(HEADS.names(), REGULARISERS.names(), BACKBONES.names(), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("['linear', 'mlp'] ['cosine', 'gradnorm', 'l2', 'lgm', 'none'] "
                           "['bert', 'gpt', 'hf', 'timm'] False")


def test_unknown_names_are_one_line_errors_and_user_classes_register():
    with pytest.raises(InputError, match="unknown noise distribution 'pink' .*uniform"):
        make_noise("pink", 0)

    @NOISES.register("constant-7", "always id 7")
    class Constant(Noise):      # a user's own distribution, from outside the package
        def chunk(self, j):
            import numpy as np
            return np.full(1 << 20, 7, np.uint16)
    try:
        assert "constant-7" in NOISES.names()
        assert set(make_noise("constant-7", 0).draw(5).tolist()) == {7}
    finally:
        NOISES._classes.pop("constant-7")
