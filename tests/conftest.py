import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from noisecli.cli import app
from noisecli.corpus import data_path

ROOT = Path(__file__).resolve().parents[1]


def wiki_docs(lang: str = "en", n: int | None = None) -> list[str]:
    """Real documents from the embedded corpus (the first n)."""
    docs = []
    with gzip.open(data_path(f"corpus/wiki_{lang}.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line)["text"])
            if n and len(docs) == n:
                break
    return docs


class Result:
    def __init__(self, r):
        self.exit_code, self.stdout, self.stderr, self.exception = r.exit_code, r.stdout, r.stderr, r.exception

    def __repr__(self):
        return f"exit={self.exit_code}\nstdout={self.stdout}\nstderr={self.stderr}"


@pytest.fixture
def cli():
    """Run `noisecli ARGS...` in-process; returns exit code, stdout and stderr."""
    def run(*args):
        return Result(CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True))
    return run


@pytest.fixture(scope="session")
def small_jsonl(tmp_path_factory) -> Path:
    """400 real English Wikipedia lead sections as JSONL."""
    path = tmp_path_factory.mktemp("src") / "wiki400.jsonl"
    path.write_text("".join(json.dumps({"text": t, "id": i}) + "\n" for i, t in enumerate(wiki_docs("en", 400))))
    return path


def tokens(path) -> np.ndarray:
    return np.fromfile(path, dtype=np.uint16)


def assert_one_line_error(result, *needles):
    assert result.exit_code == 2, result
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result
    assert lines[0].startswith("noisecli: error:"), result
    assert "Traceback" not in result.stderr + result.stdout
    for needle in needles:
        assert needle in lines[0], result
