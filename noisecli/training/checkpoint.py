"""Checkpoints of any model: weights as safetensors + a config JSON (no pickle), training state loadable
with `torch.load(weights_only=True)`, each checkpoint a folder written atomically.

    RUN_DIR/checkpoints/iter_0000300/model.safetensors   weights (tied tensors stored once)
                                     noisecli.json       architecture, its config, iteration, what the
                                                         trainer records (tokens seen, data hash, ...)
                                     state.pt            optimizer, iteration, RNG states (resume only)

A model is saved with its config dict (`model.config_dict()`, or given) under an architecture name;
loading takes a `build` function from the manifest to a fresh model (the trainer's own: pre-trained
checkpoints are rebuilt by `what.architectures.load_model`, fine-tuning's by `finetune`), so this module
knows no model.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from noisecli.core.errors import InputError
from noisecli.core.manifest import Record, check_schema, read_manifest, staging_dir

if TYPE_CHECKING:   # finding and reading checkpoints needs no torch; saving and loading them imports it
    import torch
    import torch.nn as nn

PATTERN = re.compile(r"^iter_(\d+)$")


class CheckpointManifest(Record):
    """noisecli.json as loading reads it (the trainer's own keys pass; each kind of model checks its config)."""
    arch: str = "gpt"
    model: dict
    iter: StrictInt = Field(ge=0)


class TrainingState(BaseModel):
    """What state.pt must hold for --resume (tensors are not checked here; torch.load checks their form)."""
    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)
    iter: StrictInt = Field(ge=0)
    optimizer: dict
MANIFEST = "noisecli.json"   # not config.json, which Hugging Face tools would take for theirs (`export` makes theirs)


def manifest(folder: Path) -> Path:
    """A checkpoint's manifest: noisecli.json (config.json in checkpoints from before it was renamed)."""
    folder = Path(folder)
    return folder / MANIFEST if (folder / MANIFEST).is_file() or not (folder / "config.json").is_file() \
        else folder / "config.json"


def checkpoint_dir(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"iter_{iteration:07d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run (those with their manifest), oldest first."""
    root = Path(run_dir) / "checkpoints"
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = PATTERN.match(p.name)
            if m and manifest(p).is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(run_dir: Path, model: nn.Module, iteration: int, info: dict, state: dict | None = None,
                    config: dict | None = None, arch: str | None = None) -> Path:
    """Write a checkpoint folder atomically (its manifest last: its presence marks completeness). The
    model's config and architecture name default to its own `config_dict()` and `arch`."""
    import torch
    from safetensors.torch import save_model
    out = checkpoint_dir(run_dir, iteration)
    if out.exists():
        shutil.rmtree(out)
    with staging_dir(out) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        if state is not None:
            torch.save(state, tmp / "state.pt")
        (tmp / MANIFEST).write_text(json.dumps(
            {"arch": arch or model.arch, "model": model.config_dict() if config is None else config,
             "iter": iteration, **info}, indent=2) + "\n")
    return out


def remove_leftovers(run_dir: Path) -> None:
    """Staging folders and temporary files that a killed process left in a run folder (SIGKILL runs no
    cleanup): nothing in them is complete, and nothing reads them."""
    run_dir = Path(run_dir)
    for folder in (run_dir, run_dir / "checkpoints"):
        for p in folder.glob(".*") if folder.is_dir() else []:
            if ".partial-" in p.name or ".tmp-" in p.name:
                shutil.rmtree(p, ignore_errors=True) if p.is_dir() else p.unlink(missing_ok=True)


def prune_checkpoints(run_dir: Path, keep_last: int, milestones: set[int]) -> None:
    """Keep the newest `keep_last` checkpoints and every milestone iteration."""
    ckpts = list_checkpoints(run_dir)
    for it, path in ckpts[:max(len(ckpts) - keep_last, 0)]:
        if it not in milestones:
            shutil.rmtree(path, ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its newest checkpoint)."""
    path = Path(path)
    if manifest(path).is_file() and (path / "model.safetensors").is_file():
        return path
    ckpts = list_checkpoints(path)
    if not ckpts:
        raise InputError(f"{path} is neither a checkpoint nor a run folder with checkpoints")
    return ckpts[-1][1]


def damage(folder: Path, state: bool = False) -> str | None:
    """Why a checkpoint folder cannot be loaded, or None: its manifest readable, model.safetensors' header
    whole and its tensors inside the file, and (with `state`) state.pt loadable."""
    import json as json_
    import struct
    try:
        read_manifest(manifest(folder), ("model",), CheckpointManifest)
        weights = folder / "model.safetensors"
        size = weights.stat().st_size
        with open(weights, "rb") as f:
            n = struct.unpack("<Q", f.read(8))[0]
            if n > size - 8:
                return "model.safetensors is truncated (its header runs past the end)"
            header = json_.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        if 8 + n + end != size:
            return f"model.safetensors is {size} bytes, its header says {8 + n + end}"
        if state:
            load_state(folder)
    except InputError as e:
        return str(e)
    except Exception as e:  # struct, JSON, pickle, zip and OS errors all mean: damaged
        return f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}"
    return None


def newest_loadable(run_dir: Path) -> Path:
    """The newest checkpoint of a run that loads, weights and training state (what --resume needs); each
    damaged one newer than it is named in a warning line. None loads: one InputError line."""
    from noisecli.core.errors import warn
    damaged = []
    for _, folder in reversed(list_checkpoints(run_dir)):
        why = damage(folder, state=True)
        if why is None:
            for bad, reason in damaged:
                warn(f"checkpoint {bad} is damaged ({reason}); resuming from {folder.name}")
            return folder
        damaged.append((folder, why))
    raise InputError(f"{run_dir}: no checkpoint that loads" + (": " + "; ".join(f"{f.name}: {w}" for f, w in damaged)
                                                                 if damaged else " (none saved)"))


def read_info(path: str | Path) -> dict:
    return read_manifest(manifest(resolve(path)), ("model",), CheckpointManifest)


def load_checkpoint(path: str | Path, build: Callable[[dict], nn.Module],
                    device: str | torch.device = "cpu") -> tuple[nn.Module, dict]:
    """Load a checkpoint (or a run's newest) in eval mode, the model made by `build(manifest)`.
    Returns (model, its manifest)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_model
    folder = resolve(path)
    why = damage(folder)
    if why is not None:
        raise InputError(f"checkpoint {folder} is damaged: {why}")
    info = read_manifest(manifest(folder), ("model",), CheckpointManifest)
    model = build(info)
    try:
        load_model(model, str(folder / "model.safetensors"), device=str(device))
    except (RuntimeError, ValueError, KeyError, SafetensorError) as e:   # tensors missing, of other shapes, unreadable
        raise InputError(f"checkpoint {folder} does not fit its config: {str(e).splitlines()[0]}") from None
    return model.to(device).eval(), info


def load_state(folder: Path) -> dict:
    """state.pt, loaded without pickle (weights_only) and checked: one InputError line if it is not ours."""
    import pickle

    import torch
    try:
        state = torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError) as e:
        raise InputError(f"{folder / 'state.pt'} cannot be loaded safely ({str(e).splitlines()[0][:120]})") from None
    check_schema(state, TrainingState, str(folder / "state.pt"))
    return state
