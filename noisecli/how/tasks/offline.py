"""The tasks shipped with noisecli (data/ and scikit-learn; no network), one registered loader each:

    movie, movie-fine, amazon, nyt, movie-rating   Hutto & Gilbert's sentences (vaderSentiment ground truth)
    wiki-topic                                     the embedded Wikipedia corpus's topic labels
    digits, fashion-mnist                          images (scikit-learn; the Debian package)

Their prompts are those of the paper's task each stands in for (Table 11: sst2 for movie, CR for amazon).
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.how.tasks.base import NEWS_PROMPT, register
from noisecli.what.corpus import data_path

FIVE_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]
VADER = "Rotten Tomatoes sentences (vaderSentiment ground truth)"
BINARY = "binary: sign of the mean rating, ratings of exactly 0 dropped"


def _vader(file: str) -> tuple[list[str], np.ndarray]:
    """Hutto & Gilbert's sentences: id <TAB> mean rating in [-4, 4] <TAB> text, CRLF line ends."""
    texts, ratings = [], []
    with gzip.open(data_path(f"tasks/vader/{file}_GroundTruth.txt.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\r\n").split("\t")
            if len(parts) == 3:
                ratings.append(float(parts[1]))
                texts.append(parts[2])
    return texts, np.array(ratings)


def _binary(file: str):
    texts, ratings = _vader(file)
    keep = np.flatnonzero(ratings != 0)
    return {"all": ([{"text": texts[i]} for i in keep], (ratings[keep] > 0).astype(np.int64))}, ["negative", "positive"]


register("movie", "text", "{text} this movie is", VADER, BINARY)(lambda: _binary("movieReviewSnippets"))


@register("movie-fine", "text", "{text} this movie is", VADER,
          "five classes: rating binned into five equal-width bins over [-4, 4]")
def _movie_fine():
    texts, ratings = _vader("movieReviewSnippets")
    edges = np.linspace(-4, 4, 6)[1:-1]          # -2.4, -0.8, 0.8, 2.4
    return {"all": ([{"text": t} for t in texts], np.digitize(ratings, edges).astype(np.int64))}, FIVE_CLASSES


register("amazon", "text", "{text} the sentiment is", "product review sentences (Hu & Liu 2004, vaderSentiment)",
         BINARY)(lambda: _binary("amazonReviewSnippets"))
register("nyt", "text", "{text} this opinion is", "New York Times editorial sentences (vaderSentiment)",
         BINARY)(lambda: _binary("nytEditorialSnippets"))


@register("movie-rating", "text", "{text} this movie is", VADER, "regression: the mean rating in [-4, 4]",
          regression=True)
def _movie_rating():
    texts, ratings = _vader("movieReviewSnippets")
    return {"all": ([{"text": t} for t in texts], ratings.astype(np.float32))}, []


@register("wiki-topic", "text", NEWS_PROMPT, "English Wikipedia lead sections with topic labels (embedded corpus)",
          "topic label; 'Uncategorized' dropped")
def _wiki_topic():
    records = []
    with gzip.open(data_path("corpus/wiki_en.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["topic"] != "Uncategorized" and r["text"].strip():
                records.append(r)
    names = sorted({r["topic"] for r in records})
    index = {n: i for i, n in enumerate(names)}
    return {"all": ([{"text": r["text"]} for r in records], np.array([index[r["topic"]] for r in records]))}, names


@register("digits", "image", "", "scikit-learn's 1,797 8x8 handwritten digits", "digit")
def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)    # 8x8 grey levels 0..16 -> 0..255
    return {"all": (list(images), d.target.astype(np.int64))}, [str(i) for i in range(10)]


def _idx(path: Path) -> np.ndarray:
    """An idx-ubyte(.gz) array (the MNIST format)."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


@register("fashion-mnist", "image", "", "Fashion-MNIST from the Debian package dataset-fashion-mnist", "class")
def _fashion_mnist():
    def find(stem: str) -> Path:
        for name in (f"{stem}.gz", stem):
            if (FASHION_MNIST_DIR / name).is_file():
                return FASHION_MNIST_DIR / name
        raise InputError(f"fashion-mnist needs the Debian package dataset-fashion-mnist "
                         f"(apt install dataset-fashion-mnist): {FASHION_MNIST_DIR}/{stem}.gz not found")
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = _idx(find(f"{prefix}-images-idx3-ubyte"))
        out[split] = (list(images), _idx(find(f"{prefix}-labels-idx1-ubyte")).astype(np.int64))
    return out, FASHION_MNIST_CLASSES
