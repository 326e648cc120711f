"""Checkpoints: weights as safetensors + a config JSON (no pickle), training state loadable with
`torch.load(weights_only=True)`, each checkpoint a folder written atomically.

    RUN_DIR/checkpoints/iter_0000300/model.safetensors   weights (tied embeddings stored once)
                                     config.json         model config, iteration, tokens seen, data hash
                                     state.pt            optimizer, iteration, RNG states (resume only)
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import torch
from safetensors.torch import load_model, save_model

from noisecli.core.errors import InputError
from noisecli.core.manifest import read_manifest, staging_dir
from noisecli.what.gpt import GPT, GPTConfig

PATTERN = re.compile(r"^iter_(\d+)$")


def checkpoint_dir(run_dir: Path, iteration: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"iter_{iteration:07d}"


def list_checkpoints(run_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run (those with config.json), oldest first."""
    root = Path(run_dir) / "checkpoints"
    found = []
    if root.is_dir():
        for p in root.iterdir():
            m = PATTERN.match(p.name)
            if m and (p / "config.json").is_file():
                found.append((int(m.group(1)), p))
    return sorted(found)


def save_checkpoint(run_dir: Path, model: GPT, iteration: int, info: dict,
                    state: dict | None = None) -> Path:
    """Write a checkpoint folder atomically (config.json last: its presence marks completeness)."""
    out = checkpoint_dir(run_dir, iteration)
    if out.exists():
        shutil.rmtree(out)
    with staging_dir(out) as tmp:
        save_model(model, str(tmp / "model.safetensors"))
        if state is not None:
            torch.save(state, tmp / "state.pt")
        (tmp / "config.json").write_text(json.dumps(
            {"model": model.config.to_dict(), "iter": iteration, **info}, indent=2) + "\n")
    return out


def prune_checkpoints(run_dir: Path, keep_last: int, milestones: set[int]) -> None:
    """Keep the newest `keep_last` checkpoints and every milestone iteration."""
    ckpts = list_checkpoints(run_dir)
    for it, path in ckpts[:max(len(ckpts) - keep_last, 0)]:
        if it not in milestones:
            shutil.rmtree(path, ignore_errors=True)


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder or a run folder (its newest checkpoint)."""
    path = Path(path)
    if (path / "config.json").is_file() and (path / "model.safetensors").is_file():
        return path
    ckpts = list_checkpoints(path)
    if not ckpts:
        raise InputError(f"{path} is neither a checkpoint nor a run folder with checkpoints")
    return ckpts[-1][1]


def read_info(path: str | Path) -> dict:
    return read_manifest(resolve(path) / "config.json", ("model",))


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> tuple[GPT, dict]:
    """Load a checkpoint (or a run's newest) into a GPT in eval mode. Returns (model, config.json)."""
    folder = resolve(path)
    info = read_manifest(folder / "config.json", ("model",))
    model = GPT(GPTConfig.from_dict(info["model"]))
    load_model(model, str(folder / "model.safetensors"), device=str(device))
    return model.to(device).eval(), info


def load_state(folder: Path) -> dict:
    return torch.load(folder / "state.pt", map_location="cpu", weights_only=True)
