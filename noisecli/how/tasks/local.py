"""A user's own task: a .csv/.tsv/.jsonl/.parquet file (a text or text-pair column and a label column, and
optionally a `split` column of train/val/validation/test), or an image folder (class sub-folders,
optionally under train/, val/ and test/)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.text import read_text
from noisecli.how.tasks.base import Raw, Task, label_ids

LOCAL_TABLES = (".csv", ".tsv", ".jsonl", ".parquet")


def _rows(path: Path) -> list[dict]:
    if path.suffix in (".csv", ".tsv"):
        reader = csv.reader(io.StringIO(read_text(path), newline=""), delimiter="\t" if path.suffix == ".tsv" else ",")
        try:
            header, *body = list(reader)
        except ValueError:
            return []
        except csv.Error as e:
            raise InputError(f"{path}: not a readable table ({e})") from None
        if len(set(header)) != len(header):
            raise InputError(f"{path}: the header names a column twice ({', '.join(header)})")
        for n, row in enumerate(body, 2):
            if row and len(row) != len(header):
                raise InputError(f"{path}: row {n} has {len(row)} fields, the header {len(header)}")
        return [dict(zip(header, row)) for row in body if row]
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq
        try:
            return pq.read_table(path).to_pylist()
        except Exception as e:  # pyarrow raises several types for a file that is not parquet
            raise InputError(f"{path} is not a readable parquet file ({str(e).splitlines()[0]})") from None
    rows = []
    for n, line in enumerate(io.StringIO(read_text(path), newline=None), 1):   # \n, \r\n or \r, as JSON lines end
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                raise InputError(f"{path}:{n}: not valid JSON ({e.msg})") from None
            if not isinstance(record, dict):
                raise InputError(f"{path}:{n}: a JSON line must be an object with the text and label fields")
            rows.append(record)
    return rows


def _table(path: Path, text_cols: list[str], label_field: str) -> tuple[list[dict], list, list | None]:
    rows = _rows(path)
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


def table_task(path: Path, text_fields: list[str], label_field: str) -> tuple[Task, Raw]:
    inputs, values, split_col = _table(path, text_fields, label_field)
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
    return Task(path.stem, "text", template, f"local file {path}", f"column '{label_field}'", labels), raw


def image_folder_task(root: Path) -> tuple[Task, Raw]:
    from PIL import Image
    parts = {s: root / s for s in ("train", "val", "test") if (root / s).is_dir()} or {"all": root}
    classes = sorted({c.name for p in parts.values() for c in p.iterdir() if c.is_dir()})
    if not classes:
        raise InputError(f"{root} has no class sub-folders (expected ROOT/CLASS/IMAGE or ROOT/train/CLASS/IMAGE)")
    raw = {}
    for split, folder in parts.items():
        images, labels = [], []
        for label, cls in enumerate(classes):
            for f in sorted((folder / cls).glob("*")) if (folder / cls).is_dir() else []:
                try:
                    images.append(np.asarray(Image.open(f).convert("RGB")))
                except OSError:
                    continue  # not an image
                labels.append(label)
        raw[split] = (images, np.array(labels, dtype=np.int64))
    return Task(root.name, "image", "", f"image folder {root}", "class sub-folder", classes), raw
