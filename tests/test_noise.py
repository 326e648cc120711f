"""The noise distributions: a contract every registered one keeps (parametrised over the registry, so a
new distribution is tested by adding its file), then each distribution's own shape."""

import json
import math

import numpy as np
import pytest

from noisecli.what.noise import DRAW_CHUNK, NOISES, NoiseOptions, entropy, make_noise, probabilities
from noisecli.what.noise.mojibake import garble
from noisecli.what.noise.random import spike_ids
from noisecli.what.prepare import PrepareConfig, prepare
from noisecli.what.tokenizer import EOT, VOCAB_SIZE, decode
from tests.conftest import assert_one_line_error, tokens


@pytest.fixture(scope="module")
def clean_dir(tmp_path_factory, small_jsonl):
    """A prepared clean dataset (400 real English Wikipedia documents), for noises read from one."""
    out = tmp_path_factory.mktemp("noise") / "clean"
    prepare(PrepareConfig(source=str(small_jsonl), out=out, workers=1))
    return out


def options(cls, clean_dir) -> NoiseOptions:
    return NoiseOptions(noise_from=clean_dir if cls.needs_noise_from else None)


@pytest.mark.parametrize("name", NOISES.names())
def test_contract_draws_are_exact_deterministic_and_in_the_vocabulary(name, clean_dir):
    cls = NOISES.get(name)
    assert cls.name == name and cls.summary
    a, b = make_noise(name, 11, options(cls, clean_dir)), make_noise(name, 11, options(cls, clean_dir))
    pieces = [a.draw(n) for n in (0, 1, 999, DRAW_CHUNK, DRAW_CHUNK)]
    assert [len(p) for p in pieces] == [0, 1, 999, DRAW_CHUNK, DRAW_CHUNK]
    assert all(p.dtype == np.uint16 for p in pieces)
    whole = np.concatenate(pieces)
    assert np.array_equal(whole, b.draw(len(whole)))                  # same seed, same stream, any cut
    assert whole.max() < VOCAB_SIZE
    lo, hi = a.params.get("support", [0, VOCAB_SIZE - 1])
    assert lo <= whole.min() and whole.max() <= hi
    other = make_noise(name, 12, options(cls, clean_dir)).draw(10_000)
    assert not np.array_equal(other, whole[:10_000])                  # the seed matters
    # chunks drawn in any order give the stream
    c = make_noise(name, 11, options(cls, clean_dir))
    assert np.array_equal(np.concatenate([c.chunk(1), c.chunk(0)]),
                          np.concatenate([whole[DRAW_CHUNK:2 * DRAW_CHUNK], whole[:DRAW_CHUNK]]))
    assert json.loads(json.dumps(a.params))["dist"] == name          # meta.json can record it


@pytest.mark.parametrize("name", NOISES.names())
def test_contract_prepare_counts_exactly_and_parallel_equals_serial(name, small_jsonl, clean_dir, tmp_path):
    cls = NOISES.get(name)
    metas = [prepare(PrepareConfig(source=str(small_jsonl), out=tmp_path / f"w{w}", alpha=0.05, dist=name,
                                   noise_from=options(cls, clean_dir).noise_from, workers=w)) for w in (1, 2)]
    assert metas[0]["sha256"] == metas[1]["sha256"]
    clean, noise = metas[0]["tokens"]["clean_train"], tokens(tmp_path / "w1/noise.bin")
    assert len(noise) == round(0.05 / 0.95 * clean) == metas[0]["tokens"]["noise"]
    assert metas[0]["noise"]["dist"] == name


def test_unknown_distribution_lists_the_registry(cli, small_jsonl, tmp_path, clean_dir):
    r = cli("prepare", small_jsonl, "--out", tmp_path / "d", "--alpha", 0.1, "--dist", "pink")
    assert_one_line_error(r, "pink", "mojibake")
    assert not (tmp_path / "d").exists()
    r = cli("prepare", small_jsonl, "--out", tmp_path / "d", "--alpha", 0.1, "--dist", "tokens")
    assert_one_line_error(r, "--noise-from")
    r = cli("prepare", small_jsonl, "--out", tmp_path / "d", "--alpha", 0.1, "--dist", "uniform", "--noise-from", clean_dir)
    assert_one_line_error(r, "--noise-from is read by mojibake, tokens noise")   # not silently ignored
    assert not (tmp_path / "d").exists()


def test_mojibake_is_utf8_read_as_windows_1252():
    assert garble("café") == "cafÃ©"
    assert garble("naïve “quotes”") == "naÃ¯ve â€œquotesâ€\x9d"   # 0x9D is undefined in CP1252: Latin-1
    assert garble("plain ASCII") == "plain ASCII"
    noise = make_noise("mojibake", 1)
    text = decode(noise.draw(5_000))
    assert "Ã©" in text and "é" not in text                          # every é of the French text is garbled
    assert noise.params["from"] == "fr" and noise.params["documents"] > 9000
    assert noise.capacity > 1_000_000 and noise.params["documents_unchanged"] >= 0
def chi_square_uniform(x, n_bins, low, high):
    counts = np.histogram(x, bins=n_bins, range=(low, high))[0]
    expected = len(x) / n_bins
    return ((counts - expected) ** 2 / expected).sum()


def test_gaussian_is_centred_on_the_papers_mean():
    y = make_noise("gaussian", 3).draw(1_000_000).astype(float)
    assert abs(y.mean() - 25128) < 2 and abs(y.std() - 500) < 2


def test_uniform_distribution():
    x = make_noise("uniform", 1).draw(2_000_000)
    assert x.min() >= 0 and x.max() < EOT
    # 100 bins of 502.56 ids each; chi-square with 99 degrees of freedom: the 0.1% critical value is 148.2
    assert chi_square_uniform(x, 100, 0, EOT) < 148.2
    skewed = np.concatenate([x, np.zeros(20_000, np.uint16)])  # the test can fail: 1% extra mass at 0
    assert chi_square_uniform(skewed, 100, 0, EOT) > 148.2


def test_random_distribution_shape():
    source = make_noise("random", 5)
    spikes, probs = spike_ids(5), probabilities(source.params)
    x = source.draw(3_000_000)
    counts = np.bincount(x, minlength=EOT)
    assert len(spikes) == 100 and len(set(spikes.tolist())) == 100
    spike_mass = counts[spikes].sum() / len(x)
    assert abs(spike_mass - probs[spikes].sum()) < 0.003 and spike_mass > 0.05
    others = np.ones(EOT, bool)
    others[spikes] = False
    low = others.copy()
    low[1001:] = False
    high = others.copy()
    high[:1001] = False
    ratio = counts[low].mean() / counts[high].mean()
    assert 2.85 < ratio < 3.15  # ids 0..1000 are three times as frequent as the rest
    assert counts[spikes].mean() / counts[high].mean() > 40


@pytest.mark.parametrize("dist, expected", [("uniform", math.log(50256)), ("random", 10.5537),
                                            ("gaussian", 0.5 * math.log(2 * math.pi * math.e * 500 ** 2))])
def test_noise_entropy_is_the_distributions_own(dist, expected):
    """The entropy comes from the distribution, not a sample: ln 50256 for uniform; for Gaussian
    μ=25128 σ=500 the discretised normal's entropy equals the continuous one's to 1e-6 (σ ≫ 1)."""
    src = make_noise(dist, 1337)
    assert entropy(src.params) == pytest.approx(expected, abs=1e-4)
    p = probabilities(src.params)
    assert p.shape == (50256,) and p.sum() == pytest.approx(1.0)
    # the drawn stream follows these probabilities: a G-test of 2M draws over 500 equal-mass bins
    draws = np.concatenate([src.chunk(0), src.chunk(1)])
    bins = np.minimum((np.cumsum(p) * 500).astype(int), 499)
    observed = np.bincount(bins[draws], minlength=500)
    expected_counts = np.bincount(bins, weights=p, minlength=500) * len(draws)
    keep = expected_counts > 0
    g = 2 * (observed[keep] * np.log(np.maximum(observed[keep], 1) / expected_counts[keep])).sum()
    assert g < keep.sum() + 6 * math.sqrt(2 * keep.sum()), g   # χ² with ~500 dof: mean 500, sd ≈ 32
    # a sample's plug-in entropy is far below the truth for small samples (why we never use it)
    sample = draws[:497]
    c = np.bincount(sample)[np.bincount(sample) > 0] / len(sample)
    if dist != "gaussian":
        assert -(c * np.log(c)).sum() < expected - 3
