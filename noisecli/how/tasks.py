"""Downstream tasks: a registry of loaders with label names, fixed seeded splits and prompt templates.

    offline (shipped in data/):  movie, movie-fine, amazon, nyt, wiki-topic      text
                                 movie-rating (a regression)                     text
                                 digits (scikit-learn), fashion-mnist (Debian)   images
    on the Hugging Face hub:     the paper's 8 NLU and 14 vision tasks, GLUE's RTE/MRPC/CoLA/STS-B, and
                                 hf:DATASET_ID for any other (hub_tasks.py)
    local:                       a .csv/.tsv/.jsonl/.parquet file (text or text-pair column + label column),
                                 or an image folder (class sub-folders, optionally under train/ and test/)

A prompt template is a format string over the sample's text fields ({text}, or {text1} and {text2}).
Splits: a source's own train/test are kept; a source without splits is cut 80/20 into train/test by a
seeded permutation; 10 % of train becomes validation where the source has none. The same seed always
gives the same splits.
"""

from __future__ import annotations

import csv
import gzip
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what.corpus import data_path

SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
NEWS_PROMPT = "Please classify the topic of the following news: {text} Answer:"   # Table 11's, for news
FIVE_CLASSES = ["very negative", "negative", "neutral", "positive", "very positive"]
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot"]


@dataclass
class Split:
    inputs: list[Any]      # texts (dicts of fields) or images (uint8 arrays, HxW or HxWx3)
    labels: np.ndarray     # int64 class ids, or float32 targets of a regression task


@dataclass
class Task:
    name: str
    modality: str                       # "text" or "image"
    prompt: str                         # format string over the text fields; "" for images
    description: str
    label_rule: str = ""
    labels: list[str] = field(default_factory=list)
    splits: dict[str, Split] = field(default_factory=dict)
    regression: bool = False            # a real-valued target (STS-B), no classes
    metrics: list[str] = field(default_factory=list)   # what `finetune` reports, headline first

    def scores(self) -> list[str]:
        return self.metrics or (["spearman", "pearson"] if self.regression else ["accuracy"])

    def render(self, sample: dict) -> tuple[str, str]:
        """The prompt for one sample as (body, tail): the tail is the template after its last field
        (e.g. " this movie is"), which backbones keep whole when they truncate a long body."""
        cut = self.prompt.rfind("}") + 1
        return self.prompt[:cut].format(**sample), self.prompt[cut:].format(**sample)


# ---------------------------------------------------------------- offline text tasks

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


def _binary(texts: list[str], ratings: np.ndarray) -> tuple[list[dict], np.ndarray]:
    keep = np.flatnonzero(ratings != 0)
    return [{"text": texts[i]} for i in keep], (ratings[keep] > 0).astype(np.int64)


def _five(texts: list[str], ratings: np.ndarray) -> tuple[list[dict], np.ndarray]:
    edges = np.linspace(-4, 4, 6)[1:-1]          # -2.4, -0.8, 0.8, 2.4
    return [{"text": t} for t in texts], np.digitize(ratings, edges).astype(np.int64)


def _rating() -> tuple[list[dict], np.ndarray]:
    texts, ratings = _vader("movieReviewSnippets")
    return [{"text": t} for t in texts], ratings.astype(np.float32)


def _sentiment(file: str, five: bool) -> Callable[[], tuple[list, np.ndarray]]:
    return lambda: (_five if five else _binary)(*_vader(file))


def _wiki_topic() -> tuple[list[dict], np.ndarray, list[str]]:
    records = []
    with gzip.open(data_path("corpus/wiki_en.jsonl.gz"), "rt", encoding="utf-8") as f:
        for line in f:
            r = json.loads(line)
            if r["topic"] != "Uncategorized" and r["text"].strip():
                records.append(r)
    names = sorted({r["topic"] for r in records})
    index = {n: i for i, n in enumerate(names)}
    return [{"text": r["text"]} for r in records], np.array([index[r["topic"]] for r in records]), names


# ---------------------------------------------------------------- offline image tasks

def _digits() -> tuple[list[np.ndarray], np.ndarray]:
    from sklearn.datasets import load_digits
    d = load_digits()
    images = np.round(d.images * (255 / 16)).astype(np.uint8)    # 8x8 grey levels 0..16 -> 0..255
    return list(images), d.target.astype(np.int64)


def _idx(path: Path) -> np.ndarray:
    """An idx-ubyte(.gz) array (the MNIST format)."""
    with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _fashion_mnist() -> dict[str, tuple[list, np.ndarray]]:
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
    return out


# ---------------------------------------------------------------- local files and folders

LOCAL_TABLES = (".csv", ".tsv", ".jsonl", ".parquet")

def _local_table(path: Path, text_cols: list[str], label_field: str) -> tuple[list[dict], list, list | None]:
    if path.suffix in (".csv", ".tsv"):
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ","))
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            rows = pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a file that is not parquet
            raise InputError(f"{path} is not a readable parquet file ({str(e).splitlines()[0]})") from None
    else:
        rows = []
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as e:
                        raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
    if not rows:
        raise InputError(f"{path} has no rows")
    for col in [*text_cols, label_field]:
        if col not in rows[0]:
            raise InputError(f"{path} has no column '{col}' (columns: {', '.join(rows[0])}); "
                             "set --text-field/--label-field")
    for n, r in enumerate(rows, 2 if path.suffix in (".csv", ".tsv") else 1):
        missing = [c for c in [*text_cols, label_field] if r.get(c) is None]
        if missing:
            raise InputError(f"{path}: row {n} has no '{missing[0]}' (a ragged or incomplete row)")
    keys = ["text"] if len(text_cols) == 1 else [f"text{i + 1}" for i in range(len(text_cols))]
    inputs = [{k: str(r[c]) for k, c in zip(keys, text_cols)} for r in rows]
    splits = [r["split"] for r in rows] if "split" in rows[0] else None
    return inputs, [r[label_field] for r in rows], splits


def label_ids(values: list) -> tuple[np.ndarray, list[str]]:
    """Labels as ids: integer labels keep their values (0..max), others are numbered in sorted order."""
    try:
        floats = [float(v) for v in values]
        if any(f != int(f) for f in floats):
            raise InputError(f"label {next(v for v, f in zip(values, floats) if f != int(f))} is not a whole "
                             "number; labels must be class ids 0..C-1 or names")
        ints = np.array([int(v) for v in floats], dtype=np.int64)
        if (ints < 0).any():
            raise InputError(f"label {ints.min()} is negative; labels must be 0..C-1 or names")
        return ints, [str(i) for i in range(int(ints.max()) + 1)]
    except (TypeError, ValueError, OverflowError):
        names = sorted({str(v) for v in values})
        index = {n: i for i, n in enumerate(names)}
        return np.array([index[str(v)] for v in values], dtype=np.int64), names


def _image_folder(root: Path) -> tuple[dict[str, tuple[list, np.ndarray]], list[str]]:
    from PIL import Image
    parts = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()} or {"all": root}
    classes = sorted({c.name for p in parts.values() for c in p.iterdir() if c.is_dir()})
    if not classes:
        raise InputError(f"{root} has no class sub-folders (expected ROOT/CLASS/IMAGE or ROOT/train/CLASS/IMAGE)")
    out = {}
    for split, folder in parts.items():
        images, labels = [], []
        for label, cls in enumerate(classes):
            for f in sorted((folder / cls).glob("*")) if (folder / cls).is_dir() else []:
                try:
                    images.append(np.asarray(Image.open(f).convert("RGB")))
                except OSError:
                    continue  # not an image
                labels.append(label)
        out[split] = (images, np.array(labels, dtype=np.int64))
    return out, classes


# ---------------------------------------------------------------- registry and splits

OFFLINE: dict[str, tuple[str, str, str, str]] = {   # name -> (modality, prompt, description, label rule)
    "movie": ("text", "{text} this movie is", "Rotten Tomatoes sentences (vaderSentiment ground truth)",
              "binary: sign of the mean rating, ratings of exactly 0 dropped"),
    "movie-fine": ("text", "{text} this movie is", "Rotten Tomatoes sentences (vaderSentiment ground truth)",
                   "five classes: rating binned into five equal-width bins over [-4, 4]"),
    "amazon": ("text", "{text} the sentiment is", "product review sentences (Hu & Liu 2004, vaderSentiment)",
               "binary: sign of the mean rating, ratings of exactly 0 dropped"),
    "nyt": ("text", "{text} this opinion is", "New York Times editorial sentences (vaderSentiment)",
            "binary: sign of the mean rating, ratings of exactly 0 dropped"),
    "movie-rating": ("text", "{text} this movie is", "Rotten Tomatoes sentences (vaderSentiment ground truth)",
                     "regression: the mean rating in [-4, 4]"),
    "wiki-topic": ("text", NEWS_PROMPT, "English Wikipedia lead sections with topic labels (embedded corpus)",
                   "topic label; 'Uncategorized' dropped"),
    "digits": ("image", "", "scikit-learn's 1,797 8x8 handwritten digits", "digit"),
    "fashion-mnist": ("image", "", "Fashion-MNIST from the Debian package dataset-fashion-mnist", "class"),
}
_VADER = {"movie": ("movieReviewSnippets", False), "movie-fine": ("movieReviewSnippets", True),
          "amazon": ("amazonReviewSnippets", False), "nyt": ("nytEditorialSnippets", False)}


def task_names() -> list[str]:
    from noisecli.how.hub_tasks import HUB_GLUE, HUB_TEXT, HUB_VISION
    return [*OFFLINE, *HUB_TEXT, *HUB_GLUE, *HUB_VISION]


def _cut(inputs: list, labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[Split, Split]:
    """Split off `fraction` of the samples (at least one) by a seeded permutation: (rest, cut)."""
    n = len(labels)
    order = rng.permutation(n)
    k = max(1, int(round(n * fraction)))
    if n - k < 1:
        raise InputError(f"too few samples ({n}) to split off a {fraction:.0%} part")
    pick = lambda idx: Split([inputs[i] for i in sorted(idx)], labels[np.sort(idx)])  # noqa: E731
    return pick(order[k:]), pick(order[:k])


def _with_splits(raw: dict[str, tuple[list, np.ndarray]], seed: int) -> dict[str, Split]:
    rng = np.random.default_rng([seed, 2024])
    if "train" not in raw:
        cut = dict(zip(("train", "test"), ((s.inputs, s.labels) for s in _cut(*raw["all"], TEST_FRACTION, rng))))
        raw = {**cut, **({"val": raw["val"]} if "val" in raw else {})}
    splits = {k: Split(*v) for k, v in raw.items()}
    if "val" not in splits:
        splits["train"], splits["val"] = _cut(splits["train"].inputs, splits["train"].labels, VAL_FRACTION, rng)
    return {k: splits[k] for k in SPLITS}


def load_task(name: str, seed: int = 0, text_fields: list[str] | str = "text", label_field: str = "label",
              prompt: str | None = None, limit: int | None = None) -> Task:
    """Load a task by name (see `task_names()`) or a local path, with train/val/test splits.
    `text_fields`: a local file's text column, or two for text pairs. `limit` keeps a seeded random N
    samples of each split (quick runs); `prompt` replaces the template."""
    from noisecli.how.hub_tasks import HUB_GLUE, HUB_TEXT, HUB_VISION, any_hub_dataset, hub_task
    text_fields = [text_fields] if isinstance(text_fields, str) else list(text_fields)
    path = Path(name)
    if name in OFFLINE:
        modality, template, description, rule = OFFLINE[name]
        labels: list[str] = []
        if name == "movie-rating":
            raw = {"all": _rating()}
        elif name in _VADER:
            inputs, y = _sentiment(*_VADER[name])()
            raw = {"all": (inputs, y)}
            labels = FIVE_CLASSES if _VADER[name][1] else ["negative", "positive"]
        elif name == "wiki-topic":
            inputs, y, labels = _wiki_topic()
            raw = {"all": (inputs, y)}
        elif name == "digits":
            raw, labels = {"all": _digits()}, [str(i) for i in range(10)]
        else:
            raw, labels = _fashion_mnist(), FASHION_MNIST_CLASSES
        task = Task(name, modality, template, description, rule, labels, regression=name == "movie-rating")
        task.splits = _with_splits(raw, seed)
    elif name in HUB_TEXT or name in HUB_GLUE or name in HUB_VISION:
        text = name not in HUB_VISION
        task = hub_task(name, {**HUB_TEXT, **HUB_GLUE, **HUB_VISION}[name], "text" if text else "image")
        task.splits = _with_splits({k: (s.inputs, s.labels) for k, s in task.splits.items()}, seed)
    elif path.is_dir():
        raw, labels = _image_folder(path)
        task = Task(path.name, "image", "", f"image folder {path}", "class sub-folder", labels)
        task.splits = _with_splits(raw, seed)
    elif name.startswith("hf:"):
        task = any_hub_dataset(name[3:], text_fields, label_field)
        task.splits = _with_splits({k: (s.inputs, s.labels) for k, s in task.splits.items()}, seed)
    elif path.is_file() and path.suffix in LOCAL_TABLES:
        inputs, values, split_col = _local_table(path, text_fields, label_field)
        y, labels = label_ids(values)
        if split_col is not None:
            bad = sorted(set(split_col) - {"train", "val", "validation", "test"})
            if bad:
                raise InputError(f"{path}: unknown split '{bad[0]}' (use train, val/validation, test)")
            raw = {}
            for s in ("train", "val", "validation", "test"):
                idx = [i for i, v in enumerate(split_col) if v == s]
                if idx:
                    raw["val" if s == "validation" else s] = ([inputs[i] for i in idx], y[idx])
            if "train" not in raw or "test" not in raw:
                raise InputError(f"{path}: the split column needs both train and test rows")
        else:
            raw = {"all": (inputs, y)}
        template = "{text}" if "text" in inputs[0] else " ".join(f"{{{k}}}" for k in inputs[0])
        task = Task(path.stem, "text", template, f"local file {path}", f"column '{label_field}'", labels)
        task.splits = _with_splits(raw, seed)
    else:
        raise InputError(f"unknown task '{name}' (choose from {', '.join(task_names())}, "
                         "hf:DATASET_ID, a .csv/.tsv/.jsonl/.parquet file or an image folder)")
    if prompt is not None:
        if task.modality != "text":
            raise InputError(f"--prompt applies to text tasks; '{name}' is an image task")
        task.prompt = prompt
    if task.modality == "text":
        try:
            task.render(task.splits["train"].inputs[0])
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(f"prompt '{task.prompt}' does not fit the task's fields "
                             f"({', '.join(task.splits['train'].inputs[0])}): {e}") from None
    if not task.regression and len(np.unique(task.splits["train"].labels)) < 2:
        raise InputError(f"task '{name}' has a single class in its training split: nothing to classify")
    if limit is not None:  # a seeded random subset, in the split's order
        rng = np.random.default_rng([seed, 7])
        for k, s in task.splits.items():
            keep = np.sort(rng.permutation(len(s.labels))[:limit])
            task.splits[k] = Split([s.inputs[i] for i in keep], s.labels[keep])
    return task
