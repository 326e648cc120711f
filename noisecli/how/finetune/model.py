"""The model `finetune` trains: every weight of a transformers encoder, a pooled feature t, and a linear
task head g(t) (logits, or one value for a regression task).

Its forward pass computes the whole training objective (task loss + the fine-tuning regulariser + λ·L_gm),
so that DDP sees one forward and one backward per step, however many passes the regulariser makes.

    t = pool(encoder(x))            [CLS] (the first token) or the masked mean
    L = ℓ(g(t), y) + R(θ) + λ·L_gm(t)     ℓ: cross-entropy, or squared error for regression

LGM here is the paper's Eq. 4 on the trainable feature t: L_gm = ‖E∇_g ℓ(g(t), y) − E∇_g ℓ(g(t + γδ), y)‖₂
over the head's parameters, by double backprop, so its gradient reaches the encoder through t (and t̂).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisecli.how.lgm import lgm_loss_double_backprop


def _wide(x: torch.Tensor) -> torch.Tensor:
    """float32 for a half-precision tensor (losses are taken in float32), else itself (float64 stays)."""
    return x.float() if x.dtype in (torch.bfloat16, torch.float16) else x


class FineTuneModel(nn.Module):
    arch = "finetune"

    def __init__(self, encoder: nn.Module, outputs: int, pool: str = "cls", source: str = ""):
        super().__init__()
        if getattr(encoder, "pooler", None) is not None:
            encoder.pooler = None   # BERT's [CLS] pooler: unused here (DDP requires every weight to be used)
        self.encoder, self.pool, self.source, self.outputs = encoder, pool, source, outputs
        self.head = nn.Linear(encoder.config.hidden_size, outputs)
        self.regression = outputs == 1
        self.objective: Any = None        # set by finetune: the Objective below (not a module: no weights)

    # ------------------------------------------------------------ passes
    def embed(self, batch: dict) -> torch.Tensor:
        """The word embeddings of the input ids (what SMART perturbs)."""
        return self.encoder.get_input_embeddings()(batch["input_ids"])

    def features(self, batch: dict, embeds: torch.Tensor | None = None,
                 hidden_states: bool = False) -> tuple[torch.Tensor, tuple | None]:
        """(t, the hidden states of every layer if asked): t pooled from the last layer."""
        inputs = {k: v for k, v in batch.items() if k in ("attention_mask", "token_type_ids")}
        if embeds is None:
            inputs["input_ids"] = batch["input_ids"]
        else:
            inputs["inputs_embeds"] = embeds
        out = self.encoder(**inputs, output_hidden_states=hidden_states)
        h = out.last_hidden_state
        if self.pool == "cls":
            t = h[:, 0]
        else:
            m = batch["attention_mask"].unsqueeze(-1).to(h.dtype)
            t = (h * m).sum(1) / m.sum(1)
        return t, (out.hidden_states if hidden_states else None)

    def task_loss(self, outputs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return task_loss(outputs, y, self.regression)

    def divergence(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """SMART's ℓ_s: the symmetrised KL of the two predicted distributions, KL(p‖q) + KL(q‖p), batch
        mean; the squared difference for a regression output."""
        a, b = _wide(a), _wide(b)
        if self.regression:
            return (a - b).pow(2).sum(-1).mean()
        la, lb = F.log_softmax(a, -1), F.log_softmax(b, -1)
        return ((la.exp() - lb.exp()) * (la - lb)).sum(-1).mean()

    def predict(self, batch: dict) -> torch.Tensor:
        return self.head(self.features(batch)[0])

    def forward(self, batch: dict, mode: str = "loss") -> torch.Tensor:
        if mode == "predict":
            return self.predict(batch)
        return self.objective(self, batch)

    # ------------------------------------------------------------ checkpoints
    def config_dict(self) -> dict:
        return {"source": self.source, "encoder": self.encoder.config.to_dict(), "outputs": self.outputs,
                "pool": self.pool}

    @classmethod
    def from_config_dict(cls, d: dict) -> FineTuneModel:
        """The architecture with fresh weights (the checkpoint's are loaded into it)."""
        from transformers import AutoConfig, AutoModel
        encoder_cfg = dict(d["encoder"])
        config = AutoConfig.for_model(encoder_cfg.pop("model_type"), **encoder_cfg)
        return cls(AutoModel.from_config(config), d["outputs"], d["pool"], d.get("source", ""))


class Objective:
    """ℓ(g(t), y) + R(θ) + λ·L_gm for one batch; `reg` is a fine-tuning regulariser (finetune_regularisers/)."""

    def __init__(self, reg, lgm: bool = False, gamma: float = 0.01, lam: float = 0.15):
        self.reg, self.lgm, self.gamma, self.lam = reg, lgm, gamma, lam

    def __call__(self, model: FineTuneModel, batch: dict) -> torch.Tensor:
        rng = RandomState(batch["input_ids"].device)
        embeds = model.embed(batch) if self.reg.needs_embeds else None
        t, hidden = model.features(batch, embeds, hidden_states=self.reg.needs_hidden)
        outputs = model.head(t)
        y = batch["labels"]
        loss = model.task_loss(outputs, y)
        loss = loss + self.reg.penalty(model, batch, Clean(t, outputs, hidden, embeds, rng))
        if self.lgm:
            loss = loss + self.lam * lgm_term(model.head, t, y, t + self.gamma * torch.randn_like(t), model.task_loss)
        return loss


class RandomState:
    """The RNG state (CPU, and the GPU's) at a moment, to replay: a regulariser's extra passes restore it
    first, so they draw the clean pass's dropout masks and differ from it only by their perturbation."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state(device) if device.type == "cuda" else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state(self.cuda, self.device)


class Clean:
    """What the clean pass computed, for a regulariser to reuse: t, the head's outputs, the hidden states
    (if the regulariser asked for them), the input embeddings (if it asked), and the RNG state it started
    from (`same_dropout()` before another pass gives that pass the same dropout masks)."""

    def __init__(self, t, outputs, hidden, embeds, rng: RandomState | None = None):
        self.t, self.outputs, self.hidden, self.embeds, self.rng = t, outputs, hidden, embeds, rng

    def same_dropout(self) -> None:
        if self.rng is not None:
            self.rng.restore()


def task_loss(outputs: torch.Tensor, y: torch.Tensor, regression: bool) -> torch.Tensor:
    """The batch-mean task loss in float32 (float64 stays): cross-entropy, or squared error for one output."""
    if regression:
        outputs = _wide(outputs).squeeze(-1)
        return F.mse_loss(outputs, y.to(outputs.dtype))
    return F.cross_entropy(_wide(outputs), y)


def lgm_term(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, loss_fn) -> torch.Tensor:
    """L_gm over the head's parameters for the task's loss `loss_fn(outputs, y)` (CE, or squared error), by
    double backprop: a graph to the head and to t and t̂, so the encoder gets its gradient too. In float32
    even under autocast: it is the difference of two gradients O(γ) apart. (`finetune --lgm` and
    noisecli.hf.LGMTrainer both take it here.)"""
    dtype = next(head.parameters()).dtype
    with torch.autocast(t.device.type, enabled=False):
        return lgm_loss_double_backprop(head, t.to(dtype), y, t_hat.to(dtype), loss_fn)
