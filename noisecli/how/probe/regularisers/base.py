"""The base of a regulariser: its value per stacked model, and the training loss built on it."""

from __future__ import annotations

import torch
import torch.nn as nn

from noisecli.how.probe.heads.base import cross_entropy, per_model


class Regulariser:
    """L_reg of each of a head's M stacked models, from features t and perturbed features t̂ = t + γδ.

    `terms` is the fast form (on [M, B, d] features, one batch per model) and also returns the logits
    at t, so training needs no second forward pass. `reference` is the plain definition by double
    backprop, which the contract tests hold `terms` to in float64, for the value and the gradient with
    respect to the head's parameters and to the features."""

    name: str = ""
    summary: str = ""
    perturbed: bool = True    # reads t̂ (γ and δ matter)

    def terms(self, head: nn.Module, t: torch.Tensor, y: torch.Tensor,
              t_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def reference(self, head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @staticmethod
    def gradients_at_both(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> tuple:
        """(logits at t, factors of the CE gradient at t, factors at t̂): t and t̂ go through the head
        once, stacked along the batch."""
        b = t.shape[1]
        z, f = head.grad_factors(torch.cat([t, t_hat], 1), torch.cat([y, y], 1), batch=b)
        return z[:, :b], [(u[:, :b], v[:, :b]) for u, v in f], [(u[:, b:], v[:, b:]) for u, v in f]

    def _terms(self, head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor):
        models = getattr(head, "models", 1)
        t, t_hat = per_model(t, models), per_model(t_hat, models)
        return self.terms(head, t, y.expand(t.shape[:2]), t_hat)

    def penalty(self, head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> torch.Tensor:
        """L_reg per stacked model, [M]."""
        return self._terms(head, t, y, t_hat)[0]

    def objective(self, head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor | None,
                  lam: float) -> torch.Tensor:
        """L = L_ce + λ·L_reg, summed over stacked models (each gets its own gradient)."""
        value, logits = self._terms(head, t, y, t_hat)
        return cross_entropy(logits, y) + lam * value.sum()

    def add_gradient(self, head: nn.Module, t: torch.Tensor, offset: torch.Tensor, y: torch.Tensor,
                     lam: float) -> bool:
        """Add the objective's gradient to .grad without autograd, where a closed form allows it
        (offset = t − t̂). False: nothing done, backpropagate `objective` instead."""
        return False
