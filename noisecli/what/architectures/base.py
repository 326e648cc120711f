"""What a pre-training architecture is to noisecli: the one interface every entry of `ARCHITECTURES` fills.

An entry says, for its model (a torch module in `what/models/` with GPT's interface: `model(inputs,
targets, reduction)` returns (logits, loss), plus `config_dict`, `num_params`, `flops_per_token`,
`forward_features`):

    config(preset, **overrides)   its config dataclass from a named preset (torch-free, for --help)
    model(config)                 a freshly initialised model (`from_config_dict` rebuilds a checkpoint's)
    batch(data, it, micro, ...)   the training micro-batch `micro` of iteration `it` (windows.py's windows)
    loss(model, batch)            the training loss of a micro-batch
    window(block) / inputs(...)   how a token file is scored: windows of `window(block)` tokens, each
                                  made into (inputs, targets) with fixed masks where the objective needs them
    scored_tokens(tokens, block)  exactly the tokens that scoring predicts (a unigram baseline's tokens)
    to_hf(model)                  a transformers model and tokenizer (`export --format hf`)
    logits(model, ids)            its logits over the exported vocabulary, which the export must reproduce

Targets are token ids, IGNORE (-100) where nothing is predicted. The contract test
(`tests/test_architectures.py`) trains, resumes, scores and exports every registered entry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from noisecli.core.errors import InputError

if TYPE_CHECKING:
    import torch

IGNORE = -100   # the target of a position that is not predicted


class Architecture:
    name: str        # set by ARCHITECTURES.register
    summary: str
    objective: str                 # what the loss predicts, as eval-ntp's results name it
    config_class: type             # a dataclass with n_layer, n_head, n_embd, block_size, vocab_size, dropout
    presets: dict[str, dict]       # preset name -> config fields
    default_preset: str

    # -- the model ------------------------------------------------------------------------------------------
    def config(self, preset: str | None = None, **overrides):
        """The config of `preset` (default: the architecture's), with the overrides that are not None."""
        name = preset or self.default_preset
        if name not in self.presets:
            raise InputError(f"--preset {name} is not a {self.name} preset (choose from {', '.join(self.presets)})")
        cfg = self.config_class(**{**self.presets[name], **{k: v for k, v in overrides.items() if v is not None}})
        return self.check_config(cfg)

    @staticmethod
    def check_config(cfg, where: str = "the model config"):
        """Sizes that can build a model: whole positive numbers, heads that divide the width (one line)."""
        for name in ("n_layer", "n_head", "n_embd", "block_size", "vocab_size"):
            value = getattr(cfg, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"{where}: {name} must be a whole number >= 1, not {value!r}")
        if not isinstance(cfg.dropout, (int, float)) or isinstance(cfg.dropout, bool) or not 0 <= cfg.dropout < 1:
            raise InputError(f"{where}: dropout must be in [0, 1), not {cfg.dropout!r}")
        if cfg.n_embd % cfg.n_head:
            raise InputError(f"{where}: n_embd {cfg.n_embd} is not divisible by n_head {cfg.n_head}")
        return cfg

    def describe_presets(self) -> str:
        """The presets as --help and the README list them: name (layers, heads, width, context)."""
        return ", ".join(f"{name} ({p['n_layer']}, {p['n_head']}, {p['n_embd']}, {p['block_size']})"
                         for name, p in self.presets.items())

    def model(self, config) -> "torch.nn.Module":
        raise NotImplementedError

    def from_config_dict(self, d: dict) -> "torch.nn.Module":
        """A fresh model from a checkpoint's config (checked first: a tampered config is one line)."""
        return self.model(self.check_config(self.config_class.from_dict(d), "the checkpoint's model config"))

    def check_vocab(self, vocab: int, config) -> None:
        """Refuse data whose token ids the model cannot take (one line)."""
        if vocab > config.vocab_size:
            raise InputError(f"the data's vocabulary ({vocab}) is larger than the model's ({config.vocab_size})")

    # -- training -------------------------------------------------------------------------------------------
    def batch(self, data: np.ndarray, it: int, micro: int, cfg: Any, block: int, device: "torch.device"):
        raise NotImplementedError

    @staticmethod
    def loss(model, batch) -> "torch.Tensor":
        """The mean loss of a micro-batch (inputs, targets): what the training loop minimises."""
        return model(*batch)[1]

    # -- scoring --------------------------------------------------------------------------------------------
    def window(self, block: int) -> int:
        """Tokens per scored window for a context of `block` tokens."""
        raise NotImplementedError

    def inputs(self, windows: np.ndarray, seed: int, indices) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, targets) of scored windows (int64, `window(block)` tokens each); `indices` are the
        windows' positions in their file (or evaluation set), `seed` the seed of any fixed masks."""
        raise NotImplementedError

    @staticmethod
    def sum_per_window(loss: "torch.Tensor", targets: "torch.Tensor") -> "torch.Tensor":
        """Per-window sums (float64) of the per-position losses `model(x, y, reduction="none")` returns:
        one per position of every window (each window's positions in order)."""
        return loss.view(len(targets), -1).double().sum(dim=1)

    def scored_tokens(self, tokens: np.ndarray, block: int) -> np.ndarray:
        """The tokens that scoring `tokens` predicts, in order."""
        raise NotImplementedError

    # -- Hugging Face ---------------------------------------------------------------------------------------
    def to_hf(self, model) -> tuple[Any, Any]:
        raise NotImplementedError

    def logits(self, model, ids: "torch.Tensor") -> "torch.Tensor":
        raise NotImplementedError
