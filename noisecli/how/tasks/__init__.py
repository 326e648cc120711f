"""Downstream tasks: a registry of loaders with label names, fixed seeded splits and prompt templates.

    base.py      Task, Split, the registry (TASKS, `register`) and the seeded splits
    offline.py   shipped in data/: movie, movie-fine, amazon, nyt, movie-rating, wiki-topic (text);
                 digits (scikit-learn), fashion-mnist (Debian) (images)
    hub.py       the Hugging Face hub: the paper's 8 NLU and 14 vision tasks, GLUE's RTE/MRPC/CoLA/STS-B,
                 and hf:DATASET_ID for any other
    local.py     a .csv/.tsv/.jsonl/.parquet file (text or text-pair column + label column), or an image
                 folder (class sub-folders, optionally under train/ and test/)
    scores.py    the metrics a task reports

A new named task is one `register`ed loader. A prompt template is a format string over the sample's text
fields ({text}, or {text1} and {text2}).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.how.tasks import hub, offline  # noqa: F401  (their loaders register themselves)
from noisecli.how.tasks.base import TASK_SPLITS, TASKS, Split, Task, with_splits
from noisecli.how.tasks.local import LOCAL_TABLES, image_folder_task, table_task

__all__ = ["TASK_SPLITS", "TASKS", "Split", "Task", "load_task"]

_ordered = sorted(TASKS.items(), key=lambda item: not item[1].offline)   # offline first, each in its file's order
TASKS.clear()
TASKS.update(_ordered)


def load_task(name: str, seed: int = 0, text_fields: list[str] | str = "text", label_field: str = "label",
              prompt: str | None = None, limit: int | None = None) -> Task:
    """Load a task by name (a key of TASKS) or a local path, with train/val/test splits.
    `text_fields`: a local file's text column, or two for text pairs. `limit` keeps a seeded random N
    samples of each split (quick runs); `prompt` replaces the template."""
    text_fields = [text_fields] if isinstance(text_fields, str) else list(text_fields)
    path = Path(name)
    if name in TASKS:
        task = TASKS[name].task(seed)
    else:
        if name.startswith("hf:"):
            task, raw = hub.any_hub_dataset(name[3:], text_fields, label_field)
        elif path.is_dir():
            task, raw = image_folder_task(path)
        elif path.is_file() and path.suffix in LOCAL_TABLES:
            task, raw = table_task(path, text_fields, label_field)
        else:
            raise InputError(f"unknown task '{name}' (choose from {', '.join(TASKS)}, "
                             "hf:DATASET_ID, a .csv/.tsv/.jsonl/.parquet file or an image folder)")
        task.splits = with_splits(raw, seed)
    if prompt is not None:
        if task.modality != "text":
            raise InputError(f"--prompt applies to text tasks; '{name}' is an image task")
        task.prompt = prompt
    _check(task, name)
    if limit is not None:  # a seeded random subset, in the split's order
        rng = np.random.default_rng([seed, 7])
        for k, s in task.splits.items():
            keep = np.sort(rng.permutation(len(s.labels))[:limit])
            task.splits[k] = Split([s.inputs[i] for i in keep], s.labels[keep])
    return task


def _check(task: Task, name: str) -> None:
    """The prompt fits the samples' fields, and there is something to classify."""
    if task.modality == "text":
        if "{" not in task.prompt:
            raise InputError(f"prompt '{task.prompt}' has no field such as {{text}}: every sample would read the same")
        try:
            task.render(task.splits["train"].inputs[0])
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(f"prompt '{task.prompt}' does not fit the task's fields "
                             f"({', '.join(task.splits['train'].inputs[0])}): {e}") from None
    if not task.regression and len(np.unique(task.splits["train"].labels)) < 2:
        raise InputError(f"task '{name}' has a single class in its training split: nothing to classify")
