"""`finetune`'s data: a task's splits tokenized once by the encoder's own tokenizer, the batches of an
iteration (a function of (seed, iteration) only), and predictions over a split.

A sample with one text field is one sequence; with two (RTE, MRPC, STS-B) a pair, as the tokenizer joins
them ([CLS] a [SEP] b [SEP]); with more, the task's prompt rendered as one sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from noisecli.how.tasks import Task


@dataclass
class Encoded:
    ids: list[list[int]]
    types: list[list[int]] | None     # token_type_ids, where the tokenizer gives them
    labels: np.ndarray


def encode_split(tokenizer, task: Task, split: str, max_length: int) -> Encoded:
    data = task.splits[split]
    ids, types = [], []
    for sample in data.inputs:
        fields = list(sample.values())
        if len(fields) > 2:
            fields = ["".join(task.render(sample))]
        enc = tokenizer(*fields, truncation=True, max_length=max_length)
        ids.append(enc["input_ids"])
        types.append(enc.get("token_type_ids"))
    return Encoded(ids, types if types and types[0] is not None else None, np.asarray(data.labels))


def collate(data: Encoded, idx: np.ndarray, pad_id: int, device: torch.device, regression: bool) -> dict:
    """Samples `idx`, right-padded to the longest, with attention mask and labels, on `device`."""
    width = max(len(data.ids[i]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    types = torch.zeros((len(idx), width), dtype=torch.long) if data.types is not None else None
    for row, i in enumerate(idx):
        n = len(data.ids[i])
        ids[row, :n], mask[row, :n] = torch.tensor(data.ids[i]), 1
        if types is not None:
            types[row, :n] = torch.tensor(data.types[i])
    labels = torch.from_numpy(data.labels[idx].astype(np.float32 if regression else np.int64))
    batch = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    if types is not None:
        batch["token_type_ids"] = types
    return {k: v.to(device) for k, v in batch.items()}


def iters_per_epoch(n: int, batch_size: int) -> int:
    """Full batches per epoch (the last partial one is dropped), at least one."""
    return max(1, n // batch_size)


def batch_indices(n: int, batch_size: int, seed: int, it: int, rank: int, world: int) -> np.ndarray:
    """This rank's share of iteration `it`'s global batch: a seeded permutation per (seed, epoch), cut into
    batches, each split evenly over the ranks."""
    per_epoch = iters_per_epoch(n, batch_size)
    epoch, step = divmod(it, per_epoch)
    order = np.random.default_rng([seed, epoch, 31]).permutation(n)
    chunk = order[step * batch_size:(step + 1) * batch_size]
    return np.array_split(chunk, world)[rank]


@torch.no_grad()
def predict(model, data: Encoded, pad_id: int, device: torch.device, regression: bool,
            batch_size: int = 64) -> tuple[np.ndarray, float]:
    """The head's outputs over a split (logits [N, C], or values [N]) and the mean task loss."""
    outs, loss, n = [], 0.0, len(data.labels)
    for start in range(0, n, batch_size):
        idx = np.arange(start, min(n, start + batch_size))
        batch = collate(data, idx, pad_id, device, regression)
        out = model.predict(batch).float()
        loss += model.task_loss(out, batch["labels"]).item() * len(idx)
        outs.append(out.squeeze(-1) if regression else out)
    return torch.cat(outs).cpu().numpy(), loss / n
