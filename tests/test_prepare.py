"""`noisecli prepare` through the CLI on small real data."""

import gzip
import json
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from noisecli.what import tokenizer
from noisecli.what.noise import Noise
from noisecli.what.token_files import open_tokens
from tests.conftest import assert_one_line_error, tokens, wiki_docs

EOT = tokenizer.EOT


def prep(cli, src, out, *args):
    r = cli("prepare", src, "--out", out, "--workers", "1", *args)
    assert r.exit_code == 0, r
    return json.loads((out / "meta.json").read_text())


def no_leftovers(parent):
    return [p.name for p in parent.iterdir() if ".partial-" in p.name or p.name.endswith(".tmp")] == []


@pytest.mark.parametrize("placement", ["append", "interleave"])
@pytest.mark.parametrize("alpha", [0.01, 0.05, 0.2, 0.5])
def test_exact_noise_counts(cli, small_jsonl, tmp_path, alpha, placement):
    meta = prep(cli, small_jsonl, tmp_path / "d", "--alpha", alpha, "--placement", placement)
    train, noise = tokens(tmp_path / "d/train.bin"), tokens(tmp_path / "d/noise.bin")
    clean = meta["tokens"]["clean_train"]
    assert len(noise) == round(alpha / (1 - alpha) * clean) == meta["tokens"]["noise"]
    assert len(train) == clean + len(noise)
    assert abs(len(noise) / len(train) - alpha) < 1 / len(train)
    assert meta["alpha"] == alpha and meta["placement"] == placement
    prep(cli, small_jsonl, tmp_path / "c", "--alpha", 0)
    clean_run = tokens(tmp_path / "c/train.bin")
    assert len(clean_run) == clean  # the clean part does not depend on α
    if placement == "append":
        assert np.array_equal(train[:clean], clean_run) and np.array_equal(train[clean:], noise)
    else:
        # every clean token and every noise token is there, and the noise is not just at the end
        assert np.array_equal(np.bincount(train, minlength=EOT + 1),
                              np.bincount(clean_run, minlength=EOT + 1) + np.bincount(noise, minlength=EOT + 1))
        assert not np.array_equal(train[:clean], clean_run)
        assert noise[-1] == EOT and meta["documents"]["noise"] == int((noise == EOT).sum()) > 1


def test_val_never_contains_noise_and_is_whole_documents(cli, small_jsonl, tmp_path):
    meta = prep(cli, small_jsonl, tmp_path / "d", "--alpha", 0.3, "--dist", "gaussian")
    val = tokens(tmp_path / "d/val.bin")
    docs = set(wiki_docs("en", 400))
    pieces = np.split(val, np.flatnonzero(val == EOT) + 1)[:-1]
    assert len(pieces) == meta["documents"]["val"] >= 1
    for piece in pieces:
        assert piece[-1] == EOT and tokenizer.decode(piece[:-1]) in docs
    # ~5% of 400 documents
    assert 5 <= meta["documents"]["val"] <= 40
    assert meta["documents"]["train"] + meta["documents"]["val"] == 400


def test_shard_round_trip_through_memmap(cli, small_jsonl, tmp_path):
    meta = prep(cli, small_jsonl, tmp_path / "d", "--val-fraction", 0)
    mm = np.memmap(tmp_path / "d/train.bin", dtype=np.uint16, mode="r")
    assert mm.dtype == np.uint16 and len(mm) == meta["tokens"]["train"]
    assert int((mm == EOT).sum()) == meta["documents"]["train"] == 399  # one doc always goes to val
    text = tokenizer.decode(mm)
    expected = wiki_docs("en", 400)
    assert text.split("<|endoftext|>")[:3] == expected[:3]
    assert np.array_equal(open_tokens(tmp_path / "d/train.bin"), mm)
    for name, digest in meta["sha256"].items():
        import hashlib
        assert hashlib.sha256((tmp_path / "d" / name).read_bytes()).hexdigest() == digest


def test_determinism(cli, small_jsonl, tmp_path):
    args = ("--alpha", 0.2, "--dist", "random", "--placement", "interleave", "--seed", 7)
    a = prep(cli, small_jsonl, tmp_path / "a", *args)
    r = cli("prepare", small_jsonl, "--out", tmp_path / "b", "--workers", "2", *args)  # worker count is irrelevant
    assert r.exit_code == 0, r
    b = json.loads((tmp_path / "b/meta.json").read_text())
    assert a["sha256"] == b["sha256"]
    c = prep(cli, small_jsonl, tmp_path / "c", *args[:-1], 8)
    assert c["sha256"]["noise.bin"] != a["sha256"]["noise.bin"]


def test_gaussian_distribution(cli, small_jsonl, tmp_path):
    meta = prep(cli, small_jsonl, tmp_path / "d", "--alpha", 0.5, "--dist", "gaussian", "--mean", 1000,
                "--std", 800)
    x = tokens(tmp_path / "d/noise.bin").astype(float)
    assert x.min() >= 0  # below 0 is redrawn: a truncated Gaussian
    # truncation at 0 (1.25 std below the mean) shifts the mean up; compare with the truncated-normal mean
    a = (-0.5 - 1000) / 800
    phi = math.exp(-a * a / 2) / math.sqrt(2 * math.pi)
    truncated_mean = 1000 + 800 * phi / (1 - 0.5 * (1 + math.erf(a / math.sqrt(2))))
    assert abs(x.mean() - truncated_mean) < 10
    assert meta["noise"]["mean"] == 1000 and meta["noise"]["std"] == 800


def test_every_source_type(cli, tmp_path):
    docs = wiki_docs("en", 30)
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.txt").write_text("\n\n".join(docs[:10]) + "\n")
    (src / "b.jsonl").write_text("".join(json.dumps({"body": d}) + "\n" for d in docs[10:15]))
    (src / "c.json").write_text(json.dumps([{"body": d} for d in docs[15:20]]))
    pq.write_table(pa.table({"body": docs[20:25]}), src / "d.parquet")
    with gzip.open(src / "e.jsonl.gz", "wt") as f:
        f.write("".join(json.dumps({"body": d}) + "\n" for d in docs[25:30]))
    meta = prep(cli, src, tmp_path / "folder", "--text-field", "body", "--val-fraction", 0)
    assert meta["documents"]["train"] + meta["documents"]["val"] == 30
    train = tokens(tmp_path / "folder/train.bin")
    assert tokenizer.decode(train).split("<|endoftext|>")[:2] == docs[:2]
    # .txt files as one document per file
    txts = tmp_path / "txts"
    txts.mkdir()
    for i in range(3):
        (txts / f"{i}.txt").write_text("\n\n".join(docs[3 * i:3 * i + 3]))
    meta = prep(cli, txts, tmp_path / "files", "--txt-unit", "file", "--val-fraction", 0)
    assert (meta["documents"]["train"], meta["documents"]["val"]) == (2, 1)
    assert tokenizer.decode(tokens(tmp_path / "files/train.bin")).split("<|endoftext|>")[0] == "\n\n".join(docs[:3])
    # json object of records, like the shipped Wikipedia dump
    (tmp_path / "obj.json").write_text(json.dumps({f"t{i}": {"text": d} for i, d in enumerate(docs)}))
    meta = prep(cli, tmp_path / "obj.json", tmp_path / "obj")
    assert meta["documents"]["train"] + meta["documents"]["val"] == 30
    # the embedded French corpus
    meta = prep(cli, "fr", tmp_path / "fr", "--val-fraction", 0.5)
    assert meta["source"]["name"] == "wiki_fr" and meta["documents"]["train"] + meta["documents"]["val"] == 9955


def test_batch_boundaries_do_not_matter(cli, small_jsonl, tmp_path, monkeypatch):
    """Workers read byte ranges of a .jsonl file themselves; lines cut by a range boundary belong to
    the range they start in, so tiny ranges give byte-identical outputs."""
    from noisecli.what import corpus
    a = prep(cli, small_jsonl, tmp_path / "a", "--alpha", 0.1)
    monkeypatch.setattr(corpus, "BATCH_BYTES", 997)
    b = prep(cli, small_jsonl, tmp_path / "b", "--alpha", 0.1)
    assert a["sha256"] == b["sha256"] and b["documents"]["train"] + b["documents"]["val"] == 400


def test_txt_file_as_single_document_is_refused(cli, tmp_path):
    (tmp_path / "one.txt").write_text("A single document.\n\nWith two paragraphs.")
    assert_one_line_error(cli("prepare", tmp_path / "one.txt", "--out", tmp_path / "o", "--txt-unit", "file"),
                          "too few documents")
    assert not (tmp_path / "o").exists() and no_leftovers(tmp_path)


def test_noise_from_another_dataset(cli, tmp_path, small_jsonl):
    fr = tmp_path / "fr"
    (tmp_path / "fr.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in wiki_docs("fr", 300)))
    prep(cli, tmp_path / "fr.jsonl", fr)
    meta = prep(cli, small_jsonl, tmp_path / "mix", "--alpha", 0.2, "--noise-from", fr)
    fr_train, noise = tokens(fr / "train.bin"), tokens(tmp_path / "mix/noise.bin")
    start = meta["noise"]["start"]
    assert np.array_equal(noise, np.take(fr_train, np.arange(start, start + len(noise)), mode="wrap"))
    assert "Le" in tokenizer.decode(noise) or "la" in tokenizer.decode(noise)
    r = cli("prepare", small_jsonl, "--out", tmp_path / "big", "--alpha", 0.9, "--noise-from", fr)
    assert_one_line_error(r, "lower --alpha")
    r = cli("prepare", small_jsonl, "--out", tmp_path / "x", "--alpha", 0.2, "--noise-from", tmp_path / "mix")
    assert_one_line_error(r, "already holds noise")


def test_plot(cli, small_jsonl, tmp_path):
    prep(cli, small_jsonl, tmp_path / "d", "--alpha", 0.1, "--plot")
    png = (tmp_path / "d/token_hist.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_config_file(cli, small_jsonl, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[prepare]\nalpha = 0.25\ndist = "gaussian"\nval-fraction = 0.1\nworkers = 1\n')
    r = cli("prepare", small_jsonl, "--out", tmp_path / "a", "--config", cfg)
    assert r.exit_code == 0, r
    meta = json.loads((tmp_path / "a/meta.json").read_text())
    assert (meta["alpha"], meta["noise"]["dist"], meta["val_fraction"]) == (0.25, "gaussian", 0.1)
    r = cli("prepare", small_jsonl, "--out", tmp_path / "b", "--config", cfg, "--alpha", 0.1)  # flag wins
    assert r.exit_code == 0, r
    assert json.loads((tmp_path / "b/meta.json").read_text())["alpha"] == 0.1
    cfg.write_text("alfa = 0.2\n")
    assert_one_line_error(cli("prepare", small_jsonl, "--out", tmp_path / "c", "--config", cfg), "alfa")
    cfg.write_text("alpha = [\n")
    assert_one_line_error(cli("prepare", small_jsonl, "--out", tmp_path / "c", "--config", cfg), "TOML")


@pytest.mark.parametrize("args,needle", [
    (["--alpha", "1"], "--alpha"),
    (["--alpha", "-0.1"], "--alpha"),
    (["--alpha", "abc"], "alpha"),
    (["--dist", "poisson"], "poisson"),
    (["--dist", "gaussian", "--std", "0"], "--std"),
    (["--placement", "middle"], "placement"),
    (["--text-field", "body"], "body"),
])
def test_bad_options(cli, small_jsonl, tmp_path, args, needle):
    r = cli("prepare", small_jsonl, "--out", tmp_path / "o", "--workers", "1", *args)
    assert_one_line_error(r, needle)
    assert not (tmp_path / "o").exists() and no_leftovers(tmp_path)


def small_jsonl_of(tmp_path):
    path = tmp_path / "ten.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in wiki_docs("en", 10)))
    return path


def test_bad_sources(cli, tmp_path, monkeypatch):
    out = tmp_path / "o"
    assert_one_line_error(cli("prepare", tmp_path / "missing.jsonl", "--out", out), "does not exist")
    (tmp_path / "empty.jsonl").write_text("")
    assert_one_line_error(cli("prepare", tmp_path / "empty.jsonl", "--out", out), "empty")
    (tmp_path / "blank.jsonl").write_text("\n\n")
    assert_one_line_error(cli("prepare", tmp_path / "blank.jsonl", "--out", out), "no documents")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9\n\nna\xefve".encode("latin-1"))
    assert_one_line_error(cli("prepare", tmp_path / "latin1.txt", "--out", out), "UTF-8")
    (tmp_path / "bad.jsonl").write_text('{"text": "ok"}\n{not json\n')
    assert_one_line_error(cli("prepare", tmp_path / "bad.jsonl", "--out", out), "bad.jsonl:2")
    (tmp_path / "x.csv").write_text("a,b\n")
    assert_one_line_error(cli("prepare", tmp_path / "x.csv", "--out", out), "unsupported")
    (tmp_path / "emptydir").mkdir()
    assert_one_line_error(cli("prepare", tmp_path / "emptydir", "--out", out), "no .txt")
    (tmp_path / "fake.jsonl.gz").write_bytes(b"not gzip at all")
    assert_one_line_error(cli("prepare", tmp_path / "fake.jsonl.gz", "--out", out), "Not a gzipped file")
    (tmp_path / "list.jsonl").write_text('{"text": "ok"}\n{"text": ["a", "b"]}\n')
    assert_one_line_error(cli("prepare", tmp_path / "list.jsonl", "--out", out), "list.jsonl:2: field 'text' holds list")
    pq.write_table(pa.table({"text": [1, 2, 3]}), tmp_path / "ints.parquet")
    assert_one_line_error(cli("prepare", tmp_path / "ints.parquet", "--out", out), "column 'text' holds int64, not text")
    assert_one_line_error(cli("prepare", small_jsonl_of(tmp_path), "--out", ""), "--out: must not be empty")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert_one_line_error(cli("prepare", "--hf", "openwebtext", "--out", out), "openwebtext")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setenv("HF_ENDPOINT", "https://hub.invalid")
    assert_one_line_error(cli("prepare", "--hf", "openwebtext", "--out", out), "cannot reach")
    assert not out.exists() and no_leftovers(tmp_path)


def test_existing_output_needs_force(cli, small_jsonl, tmp_path):
    meta = prep(cli, small_jsonl, tmp_path / "d", "--alpha", 0.1)
    r = cli("prepare", small_jsonl, "--out", tmp_path / "d", "--alpha", 0.3)
    assert_one_line_error(r, "--force")
    assert json.loads((tmp_path / "d/meta.json").read_text())["sha256"] == meta["sha256"]  # untouched
    meta2 = prep(cli, small_jsonl, tmp_path / "d", "--alpha", 0.3, "--force")
    assert meta2["alpha"] == 0.3 and no_leftovers(tmp_path)


def test_interrupted_run_leaves_nothing(cli, small_jsonl, tmp_path, monkeypatch):
    def interrupt(self, n):
        raise KeyboardInterrupt
    monkeypatch.setattr(Noise, "draw", interrupt)
    r = cli("prepare", small_jsonl, "--out", tmp_path / "d", "--alpha", 0.2, "--workers", "1")
    assert r.exit_code == 130, r
    assert not (tmp_path / "d").exists() and no_leftovers(tmp_path)


def test_python_module_entry_point(small_jsonl, tmp_path):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "noisecli", "prepare", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--alpha" in r.stdout and "--config" in r.stdout




@pytest.mark.parametrize("name, encode", [
    ("bom.txt", lambda t: b"\xef\xbb\xbf" + t.encode()),
    ("utf16.txt", lambda t: t.encode("utf-16")),
    ("utf16be.txt", lambda t: b"\xfe\xff" + t.encode("utf-16-be")),
    ("utf16.txt.gz", lambda t: gzip.compress(t.encode("utf-16"))),
    ("bom.jsonl", lambda t: b"\xef\xbb\xbf" + _as_jsonl(t).encode()),
    ("utf16.jsonl", lambda t: _as_jsonl(t).encode("utf-16")),
])
def test_every_corpus_encoding_core_text_reads_gives_the_same_tokens(cli, tmp_path, name, encode):
    """prepare reads corpora through core/text.py, as the task tables are read: UTF-8 with or without a
    byte-order mark, UTF-16 with its mark (gzipped or not), as .txt and as JSON lines."""
    text = "\n\n".join(wiki_docs("fr", 40))          # accents, typographic quotes: bytes that differ by encoding
    (tmp_path / "plain.txt").write_text(text, encoding="utf-8")
    (tmp_path / name).write_bytes(encode(text))
    assert cli("prepare", tmp_path / "plain.txt", "--out", tmp_path / "a").exit_code == 0
    r = cli("prepare", tmp_path / name, "--out", tmp_path / "b")
    assert r.exit_code == 0, r
    assert (tmp_path / "a" / "train.bin").read_bytes() == (tmp_path / "b" / "train.bin").read_bytes()


def _as_jsonl(text: str) -> str:
    return "".join(json.dumps({"text": p}, ensure_ascii=False) + "\n" for p in text.split("\n\n"))


def test_a_corpus_in_another_encoding_is_one_line_with_the_byte_offset(cli, tmp_path):
    text = "x" * 2_000_000 + "\n\nCafé crème, à la française."      # the first bad byte past a reader's chunk
    path = tmp_path / "latin1.txt"
    path.write_bytes(text.encode("latin-1"))
    r = cli("prepare", path, "--out", tmp_path / "out")
    assert_one_line_error(r, f"{path}: not UTF-8 text (byte {2_000_000 + 2 + 3}: invalid continuation byte)")
    assert not (tmp_path / "out").exists()
