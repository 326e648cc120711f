"""`gpt:RUN_OR_CHECKPOINT`: our own pre-trained GPT-2 as a frozen feature extractor."""

from __future__ import annotations

import numpy as np
import torch

from noisecli.core.errors import InputError
from noisecli.core.manifest import sha256_file
from noisecli.how.backbones import BACKBONES, BackboneOptions
from noisecli.how.backbones.base import TextBackbone


@BACKBONES.register("gpt",
                    "`gpt:RUN_OR_CHECKPOINT`: our GPT-2 checkpoints, the hidden state after the final LayerNorm")
class GPTBackbone(TextBackbone):
    """Our pre-trained GPT-2 (`gpt:RUN_DIR` takes the run's newest checkpoint)."""
    example = "{runs}/clean"
    arch, default_pool, pools = "gpt", "last", ("last", "mean")   # what our checkpoints of this kind allow

    def __init__(self, path: str, options: BackboneOptions):
        from noisecli.training.checkpoint import read_info, resolve
        from noisecli.what.architectures import load_model
        device = torch.device(options.device)
        folder = resolve(path)
        arch = read_info(folder).get("arch", "gpt")
        if arch != self.arch:
            raise InputError(f"{folder} is a {arch} checkpoint; use {arch}:{path}")
        self.model, self.info = load_model(folder, device)
        super().__init__(options.pool, self.default_pool, min(options.max_length, self.model.config.block_size),
                         device)
        if self.pool not in self.pools:
            raise InputError(f"--pool {self.pool}: our {self.arch} checkpoints take {' or '.join(self.pools)}")
        self.spec, self.digest = f"{self.name}:{folder}", sha256_file(folder / "model.safetensors")

    def encode(self, text: str) -> list[int]:
        from noisecli.what.tokenizer import encode
        return encode(text).astype(np.int64).tolist()

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model.forward_features(batch["input_ids"])
