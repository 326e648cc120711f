"""Downstream tasks from the Hugging Face hub: the paper's 8 NLU tasks (Table 11's prompts), its 14 vision
tasks (Table 12), the GLUE tasks of Table 4 (full fine-tuning), and `hf:DATASET_ID` for any other dataset
with text and label columns. Each loads through `datasets`, and needs the network unless cached (or a local
folder of data files is given as hf:PATH)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.hub import hub_missing
from noisecli.how.tasks.base import NEWS_PROMPT, TASK_SPLITS, TASKS, Raw, Task, label_ids, register


@dataclass
class HubSpec:
    dataset: str
    prompt: str
    fields: dict[str, str]              # template field -> dataset column ("image" for vision)
    label: str = "label"
    config: str | None = None
    test_split: str = "test"            # where a dataset's test labels are hidden, its validation split
    regression: bool = False
    metrics: tuple[str, ...] = ()


HUB_TEXT = {   # the paper's 8 NLU tasks with its Table 11 prompts, verbatim; maintained parquet copies on the hub
    "sst2": HubSpec("SetFit/sst2", "{text} this movie is", {"text": "text"}),
    "sst-fine": HubSpec("SetFit/sst5", "{text} this movie is", {"text": "text"}),
    "20newsgroup": HubSpec("SetFit/20_newsgroups", "{text} This article is about", {"text": "text"}),
    "cr": HubSpec("SetFit/CR", "{text} the sentiment is", {"text": "text"}),
    "bbc": HubSpec("SetFit/bbc-news", NEWS_PROMPT, {"text": "text"}),
    "balanced-copa": HubSpec("pkavumba/balanced-copa",
                             "Given the premise: {premise} Find the most plausible alternative for the "
                             "{question}. Option 1: {choice1} Option 2: {choice2} Which option is more plausible?",
                             {"premise": "premise", "question": "question", "choice1": "choice1",
                              "choice2": "choice2"}),
    "mrpc": HubSpec("SetFit/mrpc", "Sentence 1: {text1} Sentence 2: {text2} Is this a paraphrase?",
                    {"text1": "text1", "text2": "text2"}),
    "wic": HubSpec("aps/super_glue", "Task: Determine if the word {phrase1} has the same meaning in the two "
                   "sentences below. Sentence 1: {sentence1} Sentence 2: {sentence2} Your answer:",
                   {"phrase1": "word", "sentence1": "sentence1", "sentence2": "sentence2"},
                   config="wic", test_split="validation"),
}
_PAIR = {"text1": "sentence1", "text2": "sentence2"}
HUB_GLUE = {   # the paper's Table 4 tasks (full fine-tuning); GLUE's test labels are hidden, so its validation is test
    "glue-rte": HubSpec("nyu-mll/glue", "{text1} {text2}", _PAIR, config="rte", test_split="validation"),
    "glue-mrpc": HubSpec("nyu-mll/glue", "{text1} {text2}", _PAIR, config="mrpc", test_split="validation",
                         metrics=("f1", "accuracy")),
    "glue-cola": HubSpec("nyu-mll/glue", "{text}", {"text": "sentence"}, config="cola", test_split="validation",
                         metrics=("matthews", "accuracy")),
    "glue-stsb": HubSpec("nyu-mll/glue", "{text1} {text2}", _PAIR, config="stsb", test_split="validation",
                         regression=True, metrics=("spearman", "pearson")),
}
_IMG = {"image": "image"}
HUB_VISION = {  # the paper's 14 vision tasks (its Table 12), in its order
    "cars": HubSpec("tanganke/stanford_cars", "", _IMG),
    "caltech101": HubSpec("Donghyun99/Caltech-101", "", _IMG),
    "cifar10": HubSpec("uoft-cs/cifar10", "", {"image": "img"}),
    "cifar100": HubSpec("uoft-cs/cifar100", "", {"image": "img"}, label="fine_label"),
    "dtd": HubSpec("tanganke/dtd", "", _IMG),
    "eurosat": HubSpec("tanganke/eurosat", "", _IMG),
    "aircraft": HubSpec("HuggingFaceM4/FGVC-Aircraft", "", _IMG, label="variant"),
    "flowers102": HubSpec("nelorth/oxford-flowers", "", _IMG),
    "food101": HubSpec("ethz/food101", "", _IMG, test_split="validation"),
    "pets": HubSpec("timm/oxford-iiit-pet", "", _IMG),
    "pcam": HubSpec("1aurent/PatchCamelyon", "", _IMG),
    "resisc45": HubSpec("tanganke/resisc45", "", _IMG),
    "rendered-sst2": HubSpec("nateraw/rendered-sst2", "", _IMG),
    "svhn": HubSpec("ufldl-stanford/svhn", "", _IMG, config="cropped_digits"),
}


def hub_samples(name: str, spec: HubSpec, modality: str) -> tuple[Raw, list[str]]:
    """A registered hub task's samples by split, and its label names."""
    if hub_missing():
        raise InputError(f"task '{name}' loads {spec.dataset} from the Hugging Face hub, which is "
                         "unreachable (offline?); offline tasks: " + ", ".join(n for n, t in TASKS.items() if t.offline))
    import datasets
    try:
        ds = datasets.load_dataset(spec.dataset, spec.config)
    except Exception as e:  # datasets raises many types
        raise InputError(f"could not load {spec.dataset}: {str(e).splitlines()[0] if str(e) else e!r}") from None
    feature = ds["train"].features[spec.label]
    names = [] if spec.regression else list(feature.names) if hasattr(feature, "names") else \
        sorted({int(v) for v in ds["train"][spec.label]})

    def convert(split) -> tuple[list, np.ndarray]:
        labels = np.array(split[spec.label], dtype=np.float32 if spec.regression else np.int64)
        keep = np.flatnonzero(labels >= 0)           # hidden test labels are -1 (STS-B's scores are 0..5)
        if modality == "image":
            col = spec.fields["image"]
            inputs = [np.asarray(split[int(i)][col].convert("RGB")) for i in keep]
        else:
            cols = {k: split[c] for k, c in spec.fields.items()}
            inputs = [{k: str(v[i]) for k, v in cols.items()} for i in keep]
        return inputs, labels[keep]

    raw = {"train": convert(ds["train"]), "test": convert(ds[spec.test_split])}
    if "validation" in ds and spec.test_split != "validation":
        raw["val"] = convert(ds["validation"])
    return raw, [str(n) for n in names]


for _names, _modality in ((HUB_TEXT, "text"), (HUB_GLUE, "text"), (HUB_VISION, "image")):
    for _name, _spec in _names.items():
        register(_name, _modality, _spec.prompt, f"hub {_spec.dataset}" + (f" ({_spec.config})" if _spec.config else ""),
                 regression=_spec.regression, metrics=_spec.metrics, offline=False)(
            lambda name=_name, spec=_spec, modality=_modality: hub_samples(name, spec, modality))


def any_hub_dataset(spec: str, text_fields: list[str], label_field: str) -> tuple[Task, Raw]:
    """`hf:DATASET_ID[:CONFIG]`: any `datasets` dataset (or a local folder of data files) with one or two
    text columns (--text-field) and a label column (--label-field); its splits kept (validation as val)."""
    import datasets
    ident, _, config = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    if not Path(ident).exists() and hub_missing():
        raise InputError(f"hf:{spec} is not a local folder and the Hugging Face hub is unreachable (offline?)")
    try:
        ds = datasets.load_dataset(ident, config or None)
    except Exception as e:  # datasets raises many types
        raise InputError(f"could not load hf:{spec}: {str(e).splitlines()[0] if str(e) else e!r}") from None
    raw, names = {}, None
    first = ds[next(iter(ds))]
    for col in [*text_fields, label_field]:
        if col not in first.column_names:
            raise InputError(f"hf:{spec} has no column '{col}' (columns: {', '.join(first.column_names)}); "
                             "set --text-field/--label-field")
    feature = first.features[label_field]
    keys = ["text"] if len(text_fields) == 1 else [f"text{i + 1}" for i in range(len(text_fields))]
    for split, part in ds.items():
        target = {"validation": "val", "valid": "val"}.get(split, split)
        if target not in TASK_SPLITS:
            continue
        cols = [part[c] for c in text_fields]
        inputs = [{k: str(v[i]) for k, v in zip(keys, cols)} for i in range(len(part))]
        values = part[label_field]
        if hasattr(feature, "names"):
            names = list(feature.names)
            raw[target] = (inputs, np.array(values, dtype=np.int64))
        else:
            raw[target] = (inputs, values)
    if "train" not in raw:
        raise InputError(f"hf:{spec} has no train split (splits: {', '.join(ds)})")
    if names is None:   # plain values: numbered in sorted order over all splits together
        order = [k for k in raw]
        ids, names = label_ids([v for k in order for v in raw[k][1]])
        cut = np.cumsum([len(raw[k][1]) for k in order])[:-1]
        raw = {k: (raw[k][0], part) for k, part in zip(order, np.split(ids, cut))}
    if "test" not in raw:   # cut from train (the source's validation, if any, stays validation)
        raw["all"] = raw.pop("train")
    template = "{text}" if len(keys) == 1 else " ".join(f"{{{k}}}" for k in keys)
    return Task(spec, "text", template, f"hub dataset {spec}", f"column '{label_field}'", [str(n) for n in names]), raw
