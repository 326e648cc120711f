"""Local Gradient Matching inside Hugging Face's `Trainer`: change `Trainer` to `LGMTrainer`.

    from noisecli.hf import LGMTrainer
    trainer = LGMTrainer(model=model, args=args, train_dataset=train, eval_dataset=val)   # was: Trainer
    trainer.train()

The loss of each training step is the model's own (Trainer's `compute_loss`: cross-entropy, or squared
error for a one-output regression) plus λ·L_gm, the paper's Eq. 4 taken on the classification head at
the feature t it reads (§4.3, as `noisecli finetune --lgm` does):

    L = ℓ(g(t), y) + λ·‖E∇_g ℓ(g(t), y) − E∇_g ℓ(g(t + γδ), y)‖₂,   δ ~ N(0, I)

t is caught as the classifier's input during the model's forward pass, so the encoder is run once; L_gm is
taken by double backprop through the head (noisecli.how.finetune.model.lgm_term, the function `finetune`
uses), so its gradient reaches the encoder through t. Models whose `classifier` reads a pooled vector
(BERT, MiniLM, DistilBERT, ALBERT, DeBERTa) take it as it is; RoBERTa-style heads (`dense` and
`out_proj`, reading the first token of the sequence: RoBERTa, XLM-R, ELECTRA) take the first token's
vector, with the head's dropout masks replayed so that t and t̂ see the same head. Evaluation reports the
plain task loss. γ and λ default to the paper's 0.01 and 0.15; set them with `LGMTrainingArguments`
(`lgm_gamma`, `lgm_lambda`, parsed by `HfArgumentParser` like any training argument) or as
`LGMTrainer(..., lgm_gamma=, lgm_lambda=)`. The mean L_gm of the logged steps appears in the logs as
`lgm`. Checkpoints and resume are Trainer's own: δ comes from torch's global generator, whose state
Trainer saves.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from noisecli.how.finetune.model import RandomState, lgm_term, task_loss

GAMMA, LAMBDA = 0.01, 0.15   # the paper's (§4, Appendix E)


@dataclass
class LGMTrainingArguments(TrainingArguments):
    """TrainingArguments with LGM's γ and λ (`--lgm_gamma`, `--lgm_lambda` through HfArgumentParser)."""
    lgm_gamma: float = field(default=GAMMA, metadata={"help": "LGM's γ: t̂ = t + γδ, δ ~ N(0, I)."})
    lgm_lambda: float = field(default=LAMBDA, metadata={"help": "LGM's λ: L = ℓ + λ·L_gm (0: plain Trainer)."})


class FirstTokenHead(nn.Module):
    """A RoBERTa-style classification head (it reads `features[:, 0]` of a sequence) as a function of the
    first token's vector t [B, d], every call with the first call's dropout masks."""

    def __init__(self, head: nn.Module):
        super().__init__()
        self.head, self.rng = head, None

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if self.rng is None:
            self.rng = RandomState(t.device)
        else:
            self.rng.restore()
        return self.head(t.unsqueeze(1))


def classifier(model: nn.Module) -> nn.Module:
    """The model's classification head: `model.classifier`, as transformers' *ForSequenceClassification
    models name it."""
    head = getattr(model, "classifier", None)
    if not isinstance(head, nn.Module):
        raise ValueError(f"LGMTrainer needs a sequence classifier whose head is `model.classifier` reading a pooled "
                         f"feature (BERT, RoBERTa, DistilBERT, MiniLM, ...); {type(model).__name__} has no "
                         "`classifier` module")
    return head


def feature_and_head(model: nn.Module, head: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, nn.Module]:
    """(t, g): the feature the classifier reads and the head as a function of it, from the classifier's
    input x."""
    if x.dim() == 2:
        return x, head
    if x.dim() == 3 and hasattr(head, "dense") and hasattr(head, "out_proj"):
        return x[:, 0], FirstTokenHead(head)
    raise ValueError(f"LGMTrainer needs `classifier` to read one pooled vector per sample [batch, hidden], or to be "
                     f"a RoBERTa-style head (dense, out_proj) over the sequence; {type(model).__name__}'s "
                     f"{type(head).__name__} reads a tensor of shape {list(x.shape)}")


def loss_function(model: nn.Module, labels: torch.Tensor):
    """ℓ(outputs, y) as the model's own loss takes it: cross-entropy, or squared error for one output."""
    config = model.config
    kind = config.problem_type or ("regression" if config.num_labels == 1 else
                                   "single_label_classification" if labels.dtype in (torch.long, torch.int)
                                   else "multi_label_classification")
    if kind == "single_label_classification":
        return lambda z, y: task_loss(z.view(-1, config.num_labels), y.view(-1), False)
    if kind == "regression" and config.num_labels == 1:
        return lambda z, y: task_loss(z, y.view(-1), True)
    if kind == "regression":
        return lambda z, y: F.mse_loss(z.float(), y.float())
    raise ValueError(f"LGMTrainer takes single-label classification and regression; this model's problem_type "
                     f"is {kind}")


class LGMTrainer(Trainer):
    """`Trainer` whose training loss adds λ·L_gm on the classification head (module docstring)."""

    def __init__(self, *args, lgm_gamma: float | None = None, lgm_lambda: float | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lgm_gamma = lgm_gamma if lgm_gamma is not None else getattr(self.args, "lgm_gamma", GAMMA)
        self.lgm_lambda = lgm_lambda if lgm_lambda is not None else getattr(self.args, "lgm_lambda", LAMBDA)
        for name, value in (("lgm_gamma", self.lgm_gamma), ("lgm_lambda", self.lgm_lambda)):
            if not (value >= 0 and value < float("inf")):
                raise ValueError(f"{name} must be finite and non-negative, got {value}")
        classifier(self.accelerator.unwrap_model(self.model))     # a model without one fails here, not mid-run
        self._lgm_sum, self._lgm_steps = None, 0

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not (model.training and torch.is_grad_enabled() and self.lgm_lambda > 0):
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        if "labels" not in inputs:
            raise ValueError("LGMTrainer needs the batch's `labels`")
        labels = inputs["labels"]
        unwrapped = self.accelerator.unwrap_model(model)
        head, seen = classifier(unwrapped), []
        hook = head.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
        finally:
            hook.remove()
        t, g = feature_and_head(unwrapped, head, seen[-1])
        lgm = lgm_term(g, t, labels, t + self.lgm_gamma * torch.randn_like(t), loss_function(unwrapped, labels))
        # both terms are means over this micro-batch (transformers' sequence classifiers take the mean of
        # their loss and ignore num_items_in_batch), so whatever Trainer then does for gradient accumulation
        # applies to both alike and λ keeps its meaning
        loss = loss + self.lgm_lambda * lgm
        self._lgm_sum = lgm.detach() if self._lgm_sum is None else self._lgm_sum + lgm.detach()
        self._lgm_steps += 1
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict, *args, **kwargs) -> None:
        if "loss" in logs and self._lgm_steps:     # a training log: the mean L_gm since the last one
            logs["lgm"] = round(float(self._lgm_sum) / self._lgm_steps, 6)
            self._lgm_sum, self._lgm_steps = None, 0
        super().log(logs, *args, **kwargs)
