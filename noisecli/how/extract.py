"""`noisecli extract`: frozen features of a task's splits from any backbone, one safetensors file per split.

    OUT/train.safetensors, val.safetensors, test.safetensors   `features` [N, d], `labels` [N] (int64),
                                                              metadata: backbone, hash, task, prompt, ...
    OUT/extract.json                                           the manifest `probe` reads (written last)

Samples are sorted by length so batches carry little padding; features come back in the split's order.
A split whose file exists with the same settings is skipped, so an interrupted run resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, StrictInt

from noisecli.core.errors import InputError
from noisecli.core.manifest import Record, atomic_path, check_output, provenance, write_json
from noisecli.core.options import SEED_DOWNSTREAM, as_dict, check_choices, device_opt, opt, seed_opt
from noisecli.core.stage import Stage, written
from noisecli.how.backbones import POOLS
from noisecli.how.tasks import TASK_SPLITS, TASKS, Task, load_task


class ExtractManifest(Record):
    """extract.json as `probe` reads it back (extract writes more; other keys pass)."""
    backbone: str | None = None      # features made elsewhere may name neither (probe then uses the folder's name)
    task: str | None = None
    modality: str = "text"
    num_classes: StrictInt | None = Field(None, ge=1)

if TYPE_CHECKING:
    import torch

    from noisecli.how.backbones.base import Backbone


HELP = ("Frozen features of a task's train/val/test splits from a backbone (our GPT-2 checkpoints with prompt "
        "templates, transformers models, timm vision models) to safetensors.")   # `noisecli --help`


@dataclass
class ExtractConfig:
    backbone: str = opt(None, "Backbone as KIND:NAME, KIND one of the README's table (one file each in "
                        "noisecli/how/backbones/): gpt:RUN_OR_CHECKPOINT (our GPT-2), hf:PATH_OR_ID "
                        "(transformers; a .gguf file works), timm:NAME (vision).")
    task: str = opt(None, "Task: offline " + ", ".join(n for n, t in TASKS.items() if t.offline) + "; from the "
                    "hub " + ", ".join(n for n, t in TASKS.items() if not t.offline) + "; hf:DATASET_ID, a "
                    ".csv/.tsv/.jsonl/.parquet file or an image folder (how/tasks/).")
    out: Path = opt(None, "Output folder for train/val/test.safetensors and extract.json.")
    pool: str = opt("auto", "Text pooling: last (token), mean, cls, or auto (last for causal LMs, mean for "
                    "encoders).", choices=POOLS)
    prompt: str | None = opt(None, "Prompt template over the sample's fields ({text}, {text1}, {text2}); "
                             "default: the task's (the paper's Table 11).")
    text_field: list[str] = opt(["text"], "Local files: the text column, or two (comma-separated) for text pairs.")
    label_field: str = opt("label", "Local files: the label column.")
    weights: str | None = opt(None, "timm: a .safetensors/.pth state dict, or 'random' for seeded random "
                              "weights (default: pretrained from the hub, online only).")
    batch_size: int = opt(32, "Samples per forward pass.")
    max_length: int = opt(512, "Longest prompt in tokens (further capped by the model's context); the same "
                          "option as finetune's. (eval-ntp's --max-tokens is how many tokens of a file to score.)")
    limit: int | None = opt(None, "Keep a seeded random N samples per split (quick runs).")
    float16: bool = opt(False, "Store features as float16 instead of float32.")
    device: str = device_opt()
    seed: int = seed_opt(SEED_DOWNSTREAM, "the task's splits (and of random timm weights)")


def read_split(path: Path) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """(features, labels, metadata) of one split file."""
    from safetensors import safe_open
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
            return f.get_tensor("features"), f.get_tensor("labels"), meta
    except Exception as e:  # safetensors raises its own error types for corrupt files
        raise InputError(f"{path} is not a features file ({type(e).__name__}: {e})") from None


def _meta(backbone: Backbone, task: Task, cfg: ExtractConfig, split: str) -> dict[str, str]:
    meta = {**backbone.describe(), "task": task.name, "prompt": task.prompt, "split": split,
            "seed": cfg.seed, "limit": cfg.limit, "labels": task.labels, "label_rule": task.label_rule,
            "noisecli_version": provenance()["noisecli_version"]}
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in meta.items()}


SAME = ("backbone_sha256", "task", "prompt", "pool", "seed", "limit")


def extract(cfg: ExtractConfig) -> dict:
    """Write OUT/{train,val,test}.safetensors and OUT/extract.json. Returns the manifest."""
    import torch
    from safetensors.torch import save_file

    from noisecli.how.backbones import load_backbone
    from noisecli.training.distributed import pick_device
    for name in ("backbone", "task", "out"):
        if getattr(cfg, name) is None:
            raise InputError(f"--{name} is required")
    check_choices(cfg)   # choices, and every number within its name's limits
    check_output(cfg.out)
    task = load_task(cfg.task, cfg.seed, cfg.text_field, cfg.label_field, cfg.prompt, cfg.limit)
    if task.regression:
        raise InputError(f"task '{cfg.task}' is a regression task; probe heads classify (fine-tune it with "
                         "`noisecli finetune`)")
    backbone = load_backbone(cfg.backbone, cfg.pool, cfg.max_length, cfg.weights, cfg.seed, pick_device(cfg.device))
    if backbone.modality != task.modality:
        raise InputError(f"{cfg.backbone} reads {backbone.modality}s but task '{cfg.task}' holds {task.modality}s")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    splits, t0 = {}, time.perf_counter()
    for split in TASK_SPLITS:
        path = out / f"{split}.safetensors"
        meta = _meta(backbone, task, cfg, split)
        if path.is_file():
            _, labels, old = read_split(path)
            if all(old.get(k) == meta[k] for k in SAME):
                splits[split] = {"samples": int(labels.numel()), "skipped": True}
                continue
            raise InputError(f"{path} was extracted with other settings (backbone, task, prompt, pool, seed "
                             "or limit); use another --out or delete it")
        data = task.splits[split]
        feats = backbone.featurize(task, data.inputs, cfg.batch_size, f"extract {task.name}/{split}")
        with atomic_path(path) as tmp:
            save_file({"features": feats.half() if cfg.float16 else feats,
                       "labels": torch.from_numpy(np.asarray(data.labels, dtype=np.int64))}, str(tmp), metadata=meta)
        splits[split] = {"samples": len(data.labels), "skipped": False}
    manifest = {**provenance(), **backbone.describe(), "task": task.name, "task_description": task.description,
                "modality": task.modality, "prompt": task.prompt, "labels": task.labels,
                "num_classes": len(task.labels), "label_rule": task.label_rule, "dim": int(feats_dim(out)),
                "splits": splits, "config": as_dict(cfg), "elapsed_s": round(time.perf_counter() - t0, 2)}
    write_json(out / "extract.json", manifest)
    return manifest


def feats_dim(out: Path) -> int:
    from safetensors import safe_open
    with safe_open(str(out / "train.safetensors"), "pt") as f:
        return f.get_slice("features").get_shape()[1]


def _show(cfg: ExtractConfig, m: dict) -> None:
    from noisecli.core.tables import console
    for split, info in m["splits"].items():
        console.print(f"{split}: {info['samples']:,} samples" + (" (already there, skipped)" if info["skipped"] else ""))
    console.print(f"{m['backbone']} on {m['task']}: d = {m['dim']}, {m['num_classes']} classes, "
                  f"{m['elapsed_s']:.1f} s; manifest {cfg.out}/extract.json")


STAGE = Stage("extract", ExtractConfig, extract, HELP, done=written("extract.json"), show=_show)
