"""The pre-training architectures, one file each: `gpt.py` (GPT-2, the paper's model) and `bert.py` (BERT,
Table 9). Each registers an `Architecture` (base.py): its config and presets, batches, loss, scoring and
export. `pretrain --arch` lists them, checkpoints name theirs, and `load_model` rebuilds any checkpoint.
A new architecture is one file here (and its torch module); `tests/test_architectures.py` picks it up."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, StrictInt

from noisecli.core.manifest import Record, check_schema
from noisecli.core.registry import Registry

if TYPE_CHECKING:
    import torch

    from noisecli.what.architectures.base import Architecture

ARCHITECTURES = Registry("architecture", __name__)


def architecture(name: str) -> "Architecture":
    """The entry registered as `name` (an unknown name is one line listing the known ones)."""
    return ARCHITECTURES.get(name)()


class ModelSizes(Record):
    """A pre-trained model's config as noisecli reads it back (other keys pass)."""
    n_layer: StrictInt = Field(ge=1)
    n_head: StrictInt = Field(ge=1)
    n_embd: StrictInt = Field(ge=1)
    block_size: StrictInt = Field(ge=1)
    vocab_size: StrictInt = Field(ge=1)


def pretrained_info(path: str | Path) -> dict:
    """A pre-trained checkpoint's manifest (or a run's newest), its model config checked (one line per fault)."""
    from noisecli.training import checkpoint
    info = checkpoint.read_info(path)
    check_schema(info["model"], ModelSizes, f"{checkpoint.manifest(checkpoint.resolve(path))} (model)")
    return info


def build_model(info: dict) -> "torch.nn.Module":
    """A freshly initialised model of a checkpoint manifest's architecture and config (checkpoints from
    before the architecture was recorded are GPTs)."""
    check_schema(info["model"], ModelSizes, "the checkpoint's model config")
    return architecture(info.get("arch", "gpt")).from_config_dict(info["model"])


def load_model(path: str | Path, device: "str | torch.device" = "cpu") -> tuple["torch.nn.Module", dict]:
    """A pre-trained checkpoint (or a run's newest) in eval mode, and its manifest."""
    from noisecli.training.checkpoint import load_checkpoint
    return load_checkpoint(path, build_model, device)
