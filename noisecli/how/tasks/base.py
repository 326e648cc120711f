"""What a task is (`Task`, `Split`), the registry of named tasks (`TASKS`, filled by `register`), and the
splits every task gets: a source's own train/test are kept; a source without splits is cut 80/20 into
train/test by a seeded permutation; 10 % of train becomes validation where the source has none. The same
seed always gives the same splits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from noisecli.core.errors import InputError

TASK_SPLITS = ("train", "val", "test")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.1
NEWS_PROMPT = "Please classify the topic of the following news: {text} Answer:"   # Table 11's, for news

Raw = dict[str, tuple[list, np.ndarray]]   # split name ("all" if the source has none) -> (inputs, labels)


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


@dataclass
class TaskSource:
    """One registered task: what `load_task(name)` builds, and `load()`, which reads its samples."""
    name: str
    modality: str
    prompt: str
    description: str
    load: Callable[[], tuple[Raw, list[str]]]   # -> (samples by split, label names)
    label_rule: str = ""
    regression: bool = False
    metrics: tuple[str, ...] = ()
    offline: bool = True                         # shipped with noisecli (no network)

    def task(self, seed: int) -> Task:
        raw, labels = self.load()
        task = Task(self.name, self.modality, self.prompt, self.description, self.label_rule, list(labels),
                    regression=self.regression, metrics=list(self.metrics))
        task.splits = with_splits(raw, seed)
        return task


TASKS: dict[str, TaskSource] = {}   # in the order `--help` lists them: offline first, then the hub's


def register(name: str, modality: str, prompt: str, description: str, label_rule: str = "", **kw):
    """Decorator: `load` (no arguments, returning (samples by split, label names)) becomes the task `name`."""
    def add(load: Callable[[], tuple[Raw, list[str]]]):
        TASKS[name] = TaskSource(name, modality, prompt, description, load, label_rule, **kw)
        return load
    return add


def _cut(inputs: list, labels: np.ndarray, fraction: float, rng: np.random.Generator) -> tuple[Split, Split]:
    """Split off `fraction` of the samples (at least one) by a seeded permutation: (rest, cut)."""
    n = len(labels)
    order = rng.permutation(n)
    k = max(1, int(round(n * fraction)))
    if n - k < 1:
        raise InputError(f"too few samples ({n}) to split off a {fraction:.0%} part")
    pick = lambda idx: Split([inputs[i] for i in sorted(idx)], labels[np.sort(idx)])  # noqa: E731
    return pick(order[k:]), pick(order[:k])


def with_splits(raw: Raw, seed: int) -> dict[str, Split]:
    """train/val/test from a source's own splits, cut where it has none (see the module's docstring)."""
    rng = np.random.default_rng([seed, 2024])
    if "train" not in raw:
        cut = dict(zip(("train", "test"), ((s.inputs, s.labels) for s in _cut(*raw["all"], TEST_FRACTION, rng))))
        raw = {**cut, **({"val": raw["val"]} if "val" in raw else {})}
    splits = {k: Split(*v) for k, v in raw.items()}
    if "val" not in splits:
        splits["train"], splits["val"] = _cut(splits["train"].inputs, splits["train"].labels, VAL_FRACTION, rng)
    return {k: splits[k] for k in TASK_SPLITS}


def label_ids(values: list) -> tuple[np.ndarray, list[str]]:
    """Labels as ids: integer labels keep their values (0..max), others are numbered in sorted order."""
    try:
        floats = [float(v) for v in values]
        if any(not np.isfinite(f) for f in floats):
            raise InputError(f"label {next(v for v, f in zip(values, floats) if not np.isfinite(f))!r} is not a class: "
                             "labels must be class ids 0..C-1 or names")
        if any(f != int(f) for f in floats):
            raise InputError(f"label {next(v for v, f in zip(values, floats) if f != int(f))} is not a whole "
                             "number; labels must be class ids 0..C-1 or names")
        ints = np.array([int(v) for v in floats], dtype=np.int64)
        if (ints < 0).any():
            raise InputError(f"label {ints.min()} is negative; labels must be 0..C-1 or names")
        present = len(np.unique(ints))
        if int(ints.max()) + 1 > max(4 * present, present + 100):   # e.g. 0 and 1,000,000: not class ids
            raise InputError(f"labels run to {int(ints.max())} but only {present} distinct values occur: give class "
                             "ids 0..C-1, or names")
        return ints, [str(i) for i in range(int(ints.max()) + 1)]
    except (TypeError, ValueError, OverflowError):
        names = sorted({str(v) for v in values})
        index = {n: i for i, n in enumerate(names)}
        return np.array([index[str(v)] for v in values], dtype=np.int64), names
