"""The README's "Use LGM in your own code" examples run as written (each in a fresh interpreter, offline),
on features that `extract` wrote where the README's command would put them."""

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

EXAMPLES = dict(re.findall(r"<!-- example:(\w+) -->\n```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S))


def test_the_readme_has_the_three_examples():
    assert set(EXAMPLES) == {"pytorch", "sklearn", "trainer"}


@pytest.mark.parametrize("name", ["pytorch", "sklearn", "trainer"])
def test_readme_example_runs(name, minilm_features, tmp_path):
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "movie").symlink_to(minilm_features)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", EXAMPLES[name]], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    printed = r.stdout.strip().splitlines()[-1]
    if name == "pytorch":
        assert float(printed.split()[-1]) > 0.6               # it learned (chance: 0.5)
    elif name == "sklearn":
        assert float(printed.split()[-1]) > 0.6
    else:
        assert "eval_loss" in printed and (tmp_path / "results" / "lgm-trainer").is_dir()
