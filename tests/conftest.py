import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from noisecli.cli import app
from noisecli.what.corpus import data_path

ROOT = Path(__file__).resolve().parents[1]

# transformers and huggingface_hub add a StreamHandler on sys.stderr the first time they log. Inside a
# CliRunner call that is a captured stream, closed when the call ends, and every later log line would then
# print "--- Logging error ---" and a traceback. Let them bind to the real stderr now, before any test.
import huggingface_hub.utils.logging  # noqa: E402
import transformers.utils.logging  # noqa: E402

transformers.utils.logging.get_logger()
huggingface_hub.utils.logging.get_logger()


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


@pytest.fixture(scope="session")
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


FAST = ["--preset", "tiny", "--n-layer", "2", "--n-embd", "64", "--n-head", "2", "--block-size", "32",
        "--batch-size", "2", "--grad-accum", "2", "--warmup-iters", "2", "--eval-windows", "8",
        "--log-every", "1", "--dtype", "float32"]


@pytest.fixture(scope="session")
def dataset(tmp_path_factory, small_jsonl):
    """400 real Wikipedia documents (~45k tokens) with 10 % uniform noise."""
    out = tmp_path_factory.mktemp("data") / "wiki_a0.1"
    r = CliRunner().invoke(app, ["prepare", str(small_jsonl), "--out", str(out), "--alpha", "0.1", "--workers", "1"])
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="session")
def runs(cli, dataset, small_jsonl, tmp_path_factory):
    """A clean run and a noisy run (10 % noise) of 4 iterations on the same documents, checkpoints at 2
    and 4, and a 2-iteration BERT on the clean data (`bert-clean`). Returns (their folder, the clean dataset)."""
    root = tmp_path_factory.mktemp("runs")
    clean_data = root / "clean"
    assert cli("prepare", small_jsonl, "--out", clean_data, "--workers", "1").exit_code == 0
    for name, data in (("clean", clean_data), ("noisy", dataset)):
        r = cli("pretrain", "--data", data, *FAST, "--max-iters", "4", "--save-every", "2", "--keep-last", "5",
                "--eval-every", "4", "--out", root / name)
        assert r.exit_code == 0, r
    r = cli("pretrain", "--data", clean_data, "--arch", "bert", "--preset", "bert-tiny", "--n-embd", "64",
            "--block-size", "32", "--batch-size", "2", "--grad-accum", "2", "--warmup-iters", "2", "--eval-windows", "8",
            "--dtype", "float32", "--max-iters", "2", "--eval-every", "2", "--out", root / "bert-clean")
    assert r.exit_code == 0, r
    return root, clean_data


MINILM = "hf:sentence-transformers/all-MiniLM-L6-v2"


@pytest.fixture(scope="session")
def gpt_features(cli, runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "gpt_movie"
    r = cli("extract", "--backbone", f"gpt:{runs[0] / 'clean'}", "--task", "movie", "--limit", "80", "--out", out)
    assert r.exit_code == 0, r
    return out


@pytest.fixture(scope="session")
def minilm_features(cli, tmp_path_factory):
    out = tmp_path_factory.mktemp("feat") / "minilm_movie"
    r = cli("extract", "--backbone", MINILM, "--task", "movie", "--limit", "240", "--out", out)
    assert r.exit_code == 0, r
    return out
