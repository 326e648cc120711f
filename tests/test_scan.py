"""`noisecli scan` against the truth: small corpora with noise inserted at known offsets (the random-noise
targets of issue #27), clean corpora, shards that merge into one pass, a clean copy `prepare` reads, a
prepared dataset's tokens, and bad input."""

import json

import numpy as np
import pytest

from noisecli.scan.groundtruth import DETECTED_AS, measure, noisy_corpus
from tests.conftest import assert_one_line_error, wiki_docs


def _jsonl(path, docs):
    path.write_text("".join(json.dumps({"text": d}) + "\n" for d in docs))
    return path


def _rows(out):
    return [json.loads(line) for line in (out / "documents.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def french():
    return wiki_docs("fr", 200)


@pytest.mark.parametrize("kind, alpha, span", [("uniform", 0.05, 64), ("random", 0.2, 32), ("uniform", 0.01, 256)])
def test_random_token_noise_is_found_within_the_targets(cli, tmp_path, french, kind, alpha, span):
    docs, truth = noisy_corpus(wiki_docs("en", 300), kind, alpha, span, seed=3, french=french)
    out = tmp_path / "scan"
    r = cli("scan", _jsonl(tmp_path / "noisy.jsonl", docs), "--out", out)
    assert r.exit_code == 0, r
    m = measure(docs, truth, _rows(out), DETECTED_AS[kind])
    # the targets for spans of ≥ 32 tokens: α̂ within 10 % (relative) or 0.002, token-level F1 ≥ 0.9
    assert abs(m["alpha_hat"] - m["alpha"]) <= max(0.1 * m["alpha"], 0.002), m
    assert m["f1"] >= 0.9, m
    result = json.loads((out / "scan.json").read_text())
    share = result["shares"]["random noise (all kinds)"]["share_of_tokens"]
    assert share["value"] == pytest.approx(m["alpha_hat"]) and share["lo"] <= share["value"] <= share["hi"]
    assert result["documents"] == 300 and (share["lo"] > 0 or result["shares"]["random noise (all kinds)"]["documents"] < 5)
    examples = (out / "examples.md").read_text()
    assert "The most confident random-noise spans" in examples and (out / "scores.png").stat().st_size > 5_000


@pytest.mark.parametrize("lang, other", [("en", "fr"), ("fr", "en")])
def test_clean_corpora_are_almost_never_flagged(cli, tmp_path, lang, other):
    out = tmp_path / lang
    r = cli("scan", lang, "--reference", lang, "--other", other, "--limit", "1500", "--out", out)
    assert r.exit_code == 0, r
    share = json.loads((out / "scan.json").read_text())["shares"]["random noise (all kinds)"]["share_of_tokens"]
    assert share["value"] <= 0.005


def test_shards_merge_into_one_pass(cli, tmp_path, french):
    docs, _ = noisy_corpus(wiki_docs("en", 120), "uniform", 0.05, 48, seed=5, french=french)
    src = _jsonl(tmp_path / "noisy.jsonl", docs)
    assert cli("scan", src, "--out", tmp_path / "one").exit_code == 0
    for i in range(3):
        assert cli("scan", src, "--shard", f"{i}/3", "--out", tmp_path / f"s{i}").exit_code == 0
    r = cli("scan", "merge", tmp_path / "s2", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "merged")
    assert r.exit_code == 0, r
    one, merged = (json.loads((tmp_path / n / "scan.json").read_text()) for n in ("one", "merged"))
    assert merged["shares"] == one["shares"] and merged["tokens"] == one["tokens"]
    assert (tmp_path / "merged" / "documents.jsonl").read_text() == (tmp_path / "one" / "documents.jsonl").read_text()
    assert_one_line_error(cli("scan", "merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "m2"),
                          "need shards 0..2")
    assert cli("scan", src, "--shard", "0/2", "--out", tmp_path / "other0").exit_code == 0
    assert_one_line_error(cli("scan", "merge", tmp_path / "s0", tmp_path / "s1", tmp_path / "other0",
                              "--out", tmp_path / "m3"), "another scan")


def test_the_clean_copy_is_clean_and_prepare_reads_it(cli, tmp_path, french):
    docs, _ = noisy_corpus(wiki_docs("en", 150), "uniform", 0.1, 64, seed=7, french=french)
    clean = tmp_path / "clean"
    r = cli("scan", _jsonl(tmp_path / "noisy.jsonl", docs), "--out", tmp_path / "scan", "--write-clean", clean)
    assert r.exit_code == 0, r
    removed = json.loads((clean / "clean.json").read_text())["removed_tokens_per_kind"]
    assert removed["random-tokens"] + removed["random-bytes"] > 1000
    assert cli("scan", clean / "clean.jsonl", "--out", tmp_path / "rescan").exit_code == 0
    again = json.loads((tmp_path / "rescan" / "scan.json").read_text())["shares"]["random noise (all kinds)"]
    assert again["share_of_tokens"]["value"] < 0.002
    r = cli("prepare", clean / "clean.jsonl", "--out", tmp_path / "prepared")
    assert r.exit_code == 0, r
    assert cli("scan", clean / "clean.jsonl", "--write-clean", tmp_path / "docs", "--drop", "documents",
               "--out", tmp_path / "s2").exit_code == 0


def test_a_prepared_datasets_tokens(cli, tmp_path, small_jsonl):
    data = tmp_path / "data"
    r = cli("prepare", small_jsonl, "--out", data, "--alpha", "0.05", "--dist", "random", "--placement", "interleave")
    assert r.exit_code == 0, r
    r = cli("scan", data, "--out", tmp_path / "scan")
    assert r.exit_code == 0, r
    meta = json.loads((data / "meta.json").read_text())
    share = json.loads((tmp_path / "scan" / "scan.json").read_text())["shares"]["random noise (all kinds)"]
    assert share["share_of_tokens"]["value"] == pytest.approx(meta["alpha_actual"], rel=0.1, abs=0.002)


def test_bad_input_is_one_line(cli, tmp_path):
    assert_one_line_error(cli("scan", tmp_path / "missing.jsonl", "--out", tmp_path / "o"), "missing.jsonl")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"body": "no text field"}\n')
    assert_one_line_error(cli("scan", bad, "--out", tmp_path / "o2"), "text")
    assert not (tmp_path / "o2").exists()
    assert_one_line_error(cli("scan", "en", "--shard", "3/2", "--out", tmp_path / "o3"), "--shard")
    assert_one_line_error(cli("scan", "en", "--reference", tmp_path, "--out", tmp_path / "o4"), "--reference")
    (tmp_path / "odd.bin").write_bytes(b"\x01" * 1001)
    assert_one_line_error(cli("scan", "en", "--reference", tmp_path / "odd.bin", "--out", tmp_path / "o5"), "malformed")
    np.full(10, 60000, np.uint16).tofile(tmp_path / "big.bin")
    assert_one_line_error(cli("scan", tmp_path / "big.bin", "--out", tmp_path / "o6"), "id 60000")
    assert_one_line_error(cli("scan", "en", "--script", "klingon", "--out", tmp_path / "o7"), "--script klingon")
    assert_one_line_error(cli("scan", "en", "--out", tmp_path / "o8", "--write-clean", tmp_path / "o8" / "clean"),
                          "separate folders")
    assert not any((tmp_path / f"o{i}").exists() for i in range(2, 9))


def test_merge_refuses_shards_that_were_tampered_with(cli, tmp_path):
    import shutil
    src = _jsonl(tmp_path / "c.jsonl", wiki_docs("en", 60))
    for i in range(2):
        assert cli("scan", src, "--shard", f"{i}/2", "--out", tmp_path / f"s{i}").exit_code == 0

    def tampered(name, change):
        shutil.copytree(tmp_path / "s1", tmp_path / name)
        change(tmp_path / name)
        return tmp_path / name

    def state(edit):
        def change(folder):
            d = json.loads((folder / "state.json").read_text())
            edit(d)
            (folder / "state.json").write_text(json.dumps(d))
        return change
    cases = [
        (state(lambda d: d["tally"].update(rep_tokens=[1, 2, 3])), "field 'tally.rep_tokens'"),
        (state(lambda d: d["tally"].pop("most")), "field 'tally.most'"),
        (state(lambda d: d["tally"].update(seed=5)), "its tally's seed 5 is not its --seed 0"),
        (lambda f: (f / "documents.jsonl").write_text((f / "documents.jsonl").read_text()[:200]),
         "is not a row of documents.jsonl"),
    ]
    for n, (change, needle) in enumerate(cases):
        bad = tampered(f"bad{n}", change)
        assert_one_line_error(cli("scan", "merge", tmp_path / "s0", bad, "--out", tmp_path / f"m{n}"), needle,
                              "state.json" if "tally" in needle else "")
        assert not (tmp_path / f"m{n}").exists()


def test_the_datatrove_step_runs_in_the_local_executor_and_merges(cli, tmp_path, french):
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.readers import JsonlReader

    from noisecli.scan.datatrove import NoiseScan
    docs, _ = noisy_corpus(wiki_docs("en", 120), "uniform", 0.05, 48, seed=5, french=french)
    src = tmp_path / "src"
    src.mkdir()
    _jsonl(src / "a.jsonl", docs[:60])
    _jsonl(src / "b.jsonl", docs[60:])
    kept = []

    def collect(data, rank=0, world_size=1):
        for doc in data:
            kept.append((doc.metadata["noisecli_noise"], doc.text))
            yield doc
    LocalPipelineExecutor([JsonlReader(str(src)), NoiseScan(str(tmp_path / "dt"), remove=True), collect],
                          tasks=2, workers=1, logging_dir=str(tmp_path / "logs")).run()
    assert len(kept) == 120 and any(noise.get("random-tokens") for noise, _ in kept)
    r = cli("scan", "merge", tmp_path / "dt" / "00000", tmp_path / "dt" / "00001", "--out", tmp_path / "merged")
    assert r.exit_code == 0, r
    assert cli("scan", _jsonl(tmp_path / "all.jsonl", docs), "--out", tmp_path / "one").exit_code == 0
    one, merged = (json.loads((tmp_path / n / "scan.json").read_text()) for n in ("one", "merged"))
    for kind in ("random-tokens", "random noise (all kinds)"):    # the same documents, the same spans
        assert merged["shares"][kind]["tokens"] == one["shares"][kind]["tokens"] > 0
    assert merged["tokens"] == one["tokens"]


def test_with_a_model_it_says_what_the_noise_would_cost(cli, tmp_path, french, runs):
    docs, truth = noisy_corpus(wiki_docs("en", 80), "uniform", 0.05, 64, seed=9, french=french)
    src = _jsonl(tmp_path / "noisy.jsonl", docs)
    out = tmp_path / "scan"
    r = cli("scan", src, "--model", runs[0] / "clean", "--out", out)
    assert r.exit_code == 0, r
    m = measure(docs, truth, _rows(out), DETECTED_AS["uniform"])
    assert m["f1"] >= 0.9, m                    # a barely trained model costs the detector little
    cost = json.loads((out / "scan.json").read_text())["cost"]
    assert cost["noise_tokens_scored"] > 0 and 0 < cost["p_n"] < cost["p_c"] < 1
    assert cost["conclusion"].startswith("no conclusion without k") and cost["k_min_for_3"] > 0
    assert "What it would cost" in r.stdout
    r = cli("scan", src, "--model", runs[0] / "clean", "--k", "1e6", "--out", tmp_path / "k")
    assert r.exit_code == 0, r
    cost = json.loads((tmp_path / "k" / "scan.json").read_text())["cost"]
    assert [c["number"] for c in cost["prediction"]["conclusions"]] == ["1", "2", "3"] and cost["conclusion"]
    assert_one_line_error(cli("scan", src, "--model", "hf:sentence-transformers/all-MiniLM-L6-v2",
                              "--out", tmp_path / "bad"), "hf:sentence-transformers/all-MiniLM-L6-v2")


def test_a_document_that_cannot_be_decoded_is_counted_not_a_crash(cli, tmp_path):
    src = tmp_path / "mixed.jsonl"
    good = [json.dumps({"text": d}).encode() for d in wiki_docs("en", 20)]
    src.write_bytes(b"\n".join(good[:10] + [b'{"text": "caf\xe9 \xff\xfe"}', b"{not json"] + good[10:]) + b"\n")
    r = cli("scan", src, "--out", tmp_path / "scan")
    assert r.exit_code == 0, r
    result = json.loads((tmp_path / "scan" / "scan.json").read_text())
    assert result["documents"] == 20 and result["undecodable_documents"] == 2
    assert result["undecodable_first"][0].endswith(":11") or "line 11" in result["undecodable_first"][0]
    assert_one_line_error(cli("prepare", src, "--out", tmp_path / "p"), "not UTF-8")   # prepare stays strict


def test_token_files_split_at_eot_across_chunks(tmp_path):
    import numpy as np

    from noisecli.scan.scan import _token_documents
    from noisecli.what.tokenizer import EOT, decode, encode
    docs = wiki_docs("en", 5)
    ids = np.concatenate([np.append(encode(d), np.uint16(EOT)) for d in docs] + [encode("a tail")]).astype(np.uint16)
    ids.tofile(tmp_path / "t.bin")
    want = [decode(encode(d)) for d in docs] + ["a tail"]
    for chunk in (7, 64, 1 << 24):     # EOTs on and across chunk boundaries
        assert list(_token_documents(ids, chunk)) == want


def test_the_embedded_references_are_counted_once_and_cached(tmp_path, monkeypatch):
    """The reference unigrams are kept in the user's cache folder; a damaged cache file is counted again."""
    import numpy as np

    from noisecli.scan.detect import _embedded_counts
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    counts = _embedded_counts("fr")
    cached = list((tmp_path / "noisecli").glob("unigram-fr-*.npy"))
    assert len(cached) == 1 and counts.sum() > 100_000
    assert (_embedded_counts("fr") == counts).all()
    cached[0].write_bytes(b"damaged")
    assert (_embedded_counts("fr") == counts).all() and np.load(cached[0]).shape == counts.shape


def test_a_batch_gives_what_each_document_alone_gives(french):
    """batch.py decides most documents clean with whole-batch numpy; every row must equal Detector.spans on its
    document alone (every kind of noise, another script, an empty document, control characters)."""
    from noisecli.scan.batch import CLEAN_ROW, detect_batch
    from noisecli.scan.detect import Detector, char_spans, char_suspects, embedded_logp
    from noisecli.scan.tally import dumps, span_dict
    docs = []
    for kind in ("random", "bytes", "mojibake", "french"):
        docs += noisy_corpus(wiki_docs("en", 60), kind, 0.1, 32, seed=7, french=french)[0]
    docs += ["", "Москва — столица России. Tokyo (東京) is in Japan.", "tab\tand\x07bell", "Ã©tÃ© naïve café"]
    det = Detector(embedded_logp("en"), embedded_logp("fr"))
    batch = detect_batch(det, list(range(100, 100 + len(docs))), docs, seed=0)
    rows = [json.loads(line) for line in batch.lines.splitlines()]
    assert len(rows) == len(docs)
    for i, (doc, row) in enumerate(zip(docs, rows)):
        ids, spans = det.spans(doc)
        assert row["id"] == 100 + i and row["tokens"] == len(ids)
        assert row["spans"] == [span_dict(s) for s in spans] == batch.spans.get(i, [])
    assert 0 < len(batch.spans) < len(docs)
    assert batch.tally.documents == len(docs) and batch.tally.tokens == sum(r["tokens"] for r in rows)
    # the character prefilter never misses a document with a character span
    marked = char_suspects(docs, "LATIN")
    assert all(marked[i] for i, d in enumerate(docs) if char_spans(d, "LATIN"))
    assert CLEAN_ROW % (3, 17) == dumps({"id": 3, "tokens": 17, "noisy": {}, "spans": [], "score": 0.0})


def test_stretch_max_is_kadane_for_every_document():
    import numpy as np

    from noisecli.scan.detect import stretch_max

    def kadane(gain):
        best = run = 0.0
        for g in gain:
            run = max(0.0, run + g)
            best = max(best, run)
        return best
    rng = np.random.default_rng(0)
    for _ in range(200):
        lengths = rng.integers(0, 40, size=rng.integers(1, 10))
        gain = rng.normal(-0.5, 3.0, size=lengths.sum()).astype(np.float32)
        starts = np.cumsum(lengths) - lengths
        want = [kadane(gain[a:a + n].astype(np.float64)) for a, n in zip(starts, lengths)]
        assert np.allclose(stretch_max(gain, lengths), want, atol=1e-9)
