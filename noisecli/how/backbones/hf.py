"""`hf:PATH_OR_ID`: a transformers model (or a .gguf file) as a frozen feature extractor."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from noisecli.core.hub import hf_location, load_pretrained
from noisecli.core.manifest import sha256_file
from noisecli.how.backbones import BACKBONES, BackboneOptions
from noisecli.how.backbones.base import TextBackbone


@BACKBONES.register("hf",
                    "`hf:PATH_OR_ID`: transformers models, causal LMs (also a .gguf file) and encoders (BERT, ...)")
class HFBackbone(TextBackbone):
    """A transformers model: causal LMs pool the last token, encoders the mean (or [CLS])."""
    example = "sentence-transformers/all-MiniLM-L6-v2"

    def __init__(self, name: str, options: BackboneOptions):
        device, pool, max_length = torch.device(options.device), options.pool, options.max_length
        config, self.tokenizer, model = load_pretrained(name, "AutoConfig", "AutoTokenizer", "AutoModel")
        self.model = model.to(device).eval()
        causal = config.is_decoder or any(a.endswith("ForCausalLM") for a in config.architectures or [])
        limit = min(getattr(config, "max_position_embeddings", max_length) or max_length,
                    self.tokenizer.model_max_length or max_length)
        super().__init__(pool, "last" if causal else "mean", min(max_length, limit), device)
        self.pad_id = self.tokenizer.pad_token_id or 0
        # the special tokens the tokenizer puts around a sequence ([CLS] ... [SEP], <s> ...)
        full, bare = self.tokenizer("a")["input_ids"], self.encode("a")
        at = next(i for i in range(len(full) - len(bare) + 1) if full[i:i + len(bare)] == bare)
        self.prefix, self.suffix = full[:at], full[at + len(bare):]
        self.spec = f"hf:{name}"
        where, extra = hf_location(name)
        weights = sorted(p for p in Path(where).glob("*") if p.suffix in (".safetensors", ".bin", ".gguf")) \
            if Path(where).is_dir() else []
        if "gguf_file" in extra:
            weights = [Path(where) / extra["gguf_file"]]
        h = hashlib.sha256()
        for p in weights:
            h.update(sha256_file(p).encode())
        self.digest = h.hexdigest() if weights else f"hub:{name}"

    def encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def wrap(self, ids: list[int]) -> list[int]:
        return self.prefix + ids + self.suffix

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model(**batch).last_hidden_state
