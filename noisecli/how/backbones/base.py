"""The base of backbones (timm's forward_features / forward_head): one interface, whatever the model.

Every backbone turns one sample into an item (`prepare`, token ids or an image tensor), a list of items
into a batch (`collate`), a batch into hidden states (`forward_features`) and those into one vector per
sample (`forward_head`, the pooling). `extract` only talks to this interface.
"""

from __future__ import annotations

from typing import Any

import torch

from noisecli.core.errors import InputError
from noisecli.core.progress import Reporter


class Backbone:
    """Built from the name after `KIND:` and the extract options; `example` is a name that loads offline
    (the contract tests use it, with `example_options`; "{runs}" stands for their folder of trained runs)."""
    name: str = ""
    summary: str = ""
    example: str = ""
    example_options: dict = {}
    spec: str
    modality: str            # "text" or "image"
    pool: str
    digest: str              # sha256 of the weights (or how they were made)
    max_length: int = 0

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

    @torch.no_grad()
    def featurize(self, task, inputs: list, batch_size: int = 32, description: str = "extract") -> torch.Tensor:
        """Features [N, d] of `inputs`, batched by length (longest first), returned in input order."""
        items = [self.prepare(x, task) for x in inputs]
        order = sorted(range(len(items)), key=lambda i: -self.length(items[i]))
        device = getattr(self, "device", torch.device("cpu"))
        use_bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        out: torch.Tensor | None = None
        with Reporter(description, total=len(items), unit="samples") as bar:
            for start in range(0, len(order), batch_size):
                idx = order[start:start + batch_size]
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    feats = self(self.collate([items[i] for i in idx])).float().cpu()
                if out is None:
                    out = torch.empty((len(items), feats.shape[1]), dtype=torch.float32)
                out[torch.tensor(idx)] = feats
                bar.advance(len(idx), samples_per_s=bar.done / max(bar.elapsed(), 1e-9))
        if out is None:
            raise InputError(f"{description}: the split is empty")
        return out

    def describe(self) -> dict:
        return {"backbone": self.spec, "backbone_sha256": self.digest, "pool": self.pool,
                "modality": self.modality, "max_length": self.max_length}


class TextBackbone(Backbone):
    """Token ids right-padded into a batch with a mask; pooling picks the last real token, the first
    ([CLS]) or the masked mean."""
    modality = "text"
    pad_id = 0

    def __init__(self, pool: str, default_pool: str, max_length: int, device: torch.device):
        self.pool = default_pool if pool == "auto" else pool
        self.max_length, self.device = max_length, device

    def encode(self, text: str) -> list[int]:
        raise NotImplementedError

    def wrap(self, ids: list[int]) -> list[int]:
        return ids  # special tokens a model expects around a sequence

    def prepare(self, sample: dict, task) -> list[int]:
        """The prompt's token ids; a body too long for the context is cut at its end, the tail of the
        template (" this movie is") is always kept, so the last token is the prompt's last token."""
        body, tail = task.render(sample)
        tail_ids = self.encode(tail) if tail else []
        room = self.max_length - len(tail_ids) - len(self.wrap([]))
        if room < 1:
            raise InputError(f"the prompt's tail '{tail}' does not fit in {self.max_length} tokens")
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


