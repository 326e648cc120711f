"""The base of fine-tuning regularisers: a penalty R(θ) added to the task loss each step, with what it
needs from the clean pass, a hook after each optimizer step, and any state that resume must restore."""

from __future__ import annotations

import math

import torch
import torch.nn as nn

from noisecli.core.errors import InputError


class FinetuneRegulariser:
    name: str = ""
    summary: str = ""
    defaults: dict[str, float] = {}   # its options and their published (or chosen) defaults
    needs_embeds = False              # the clean pass runs from the word embeddings (SMART perturbs them)
    needs_hidden = False              # the clean pass returns every layer's hidden states (LNSR)
    replaces_weight_decay = False     # AdamW's weight decay is off with this regulariser (L²-SP)

    def __init__(self, **options: float):
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            raise InputError(f"--reg-option: {self.name} has no option '{unknown[0]}' "
                             f"(it has: {', '.join(self.defaults) or 'none'})")
        for key, value in {**self.defaults, **options}.items():
            if not math.isfinite(float(value)):
                raise InputError(f"--reg-option {self.name}.{key} must be finite, got {value}")
            setattr(self, key, float(value))

    def options(self) -> dict[str, float]:
        return {k: getattr(self, k) for k in self.defaults}

    def setup(self, model: nn.Module) -> None:
        """Called once with the pre-trained model, before training (and before a resumed run's weights
        are loaded): capture what the regulariser anchors to."""

    def penalty(self, model: nn.Module, batch: dict, clean) -> torch.Tensor:
        """R(θ) on this batch, weighted, to add to the task loss (`clean`: finetune_model.Clean)."""
        return torch.zeros((), device=clean.t.device)

    def after_step(self, model: nn.Module) -> None:
        """Called after each optimizer step."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        """What a checkpoint must keep for an exact resume (beyond the model and the optimizer)."""
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass
