"""Local Gradient Matching (the paper's Eq. 3-4 and 6) and its ablations, without second-order autograd.

    t̂ = t + γδ, δ ~ N(0, I)
    L_gm = ‖ E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y) ‖₂     (batch-mean CE gradients over all head parameters)
    L = L_ce + λ·L_gm

Each head writes its batch-mean CE gradient as factors, grad = Uᵀ V per parameter (heads.py). The
difference of two such gradients is again a product, Uᵀ V with U = [U₁; U₁ − U₂] and V = [V₁ − V₂; V₂]
(stacked along the batch), whose blocks are both O(γ): no catastrophic cancellation in float32. Its
squared norm is either materialised (out × in, cheap for a C-class layer) or taken through the Gram
("ghost norm") identity ‖UᵀV‖²_F = Σ (UUᵀ) ⊙ (VVᵀ), which only builds 2B × 2B matrices — whichever costs
fewer flops. Everything is first-order differentiable, so `loss.backward()` gives exactly what double
backprop gives (tests check it in float64).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from noisecli.heads import cross_entropy

REGS = ("none", "lgm", "gradnorm", "cosine", "l2")


def _inner(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """⟨U_aᵀV_a, U_bᵀV_b⟩_F per model, by whichever of the two forms is cheaper."""
    (ua, va), (ub, vb) = a, b
    rows, out, inn = ua.shape[1], ua.shape[2], va.shape[2]
    if rows * (out + inn) < out * inn:       # Gram form: B×B matrices only
        return (torch.bmm(ua, ub.transpose(1, 2)) * torch.bmm(va, vb.transpose(1, 2))).sum((1, 2))
    return (torch.bmm(ua.transpose(1, 2), va) * torch.bmm(ub.transpose(1, 2), vb)).sum((1, 2))


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """√x with value 0 and a finite (zero) gradient at x = 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def _difference(f1: list, f2: list) -> list:
    return [(torch.cat([u1, u1 - u2], 1), torch.cat([v1 - v2, v2], 1)) for (u1, v1), (u2, v2) in zip(f1, f2)]


def penalty(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, reg: str = "lgm") -> torch.Tensor:
    """The regulariser of each stacked model, shape [M]:
    lgm ‖g₁ − g₂‖, gradnorm ‖g₁‖, cosine 1 − cos(g₁, g₂) (g = batch-mean CE gradient at t and at t̂),
    l2 the batch mean of ‖head(t) − head(t̂)‖."""
    if reg == "l2":
        return (head(t) - head(t_hat)).norm(dim=-1).mean(-1)
    f1 = head.grad_factors(t, y)
    if reg == "gradnorm":
        return _sqrt(sum(_inner(f, f) for f in f1))
    f2 = head.grad_factors(t_hat, y)
    if reg == "lgm":
        return _sqrt(sum(_inner(f, f) for f in _difference(f1, f2)))
    if reg == "cosine":
        dot = sum(_inner(a, b) for a, b in zip(f1, f2))
        norms = _sqrt(sum(_inner(f, f) for f in f1)) * _sqrt(sum(_inner(f, f) for f in f2))
        return 1 - dot / norms.clamp_min(torch.finfo(norms.dtype).tiny)
    raise ValueError(f"unknown regulariser '{reg}' (choose from {', '.join(REGS)})")


def lgm_loss(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> torch.Tensor:
    """L_gm = ‖E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y)‖₂ as a scalar carrying the graph to the head's parameters
    (summed over stacked models, so each model gets its own L_gm gradient)."""
    return penalty(head, t, y, t_hat, "lgm").sum()


def lgm_loss_double_backprop(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> torch.Tensor:
    """The same quantity the naive way (autograd.grad with create_graph): the baseline of bench/probe.py."""
    params = list(head.parameters())
    g1 = torch.autograd.grad(cross_entropy(head(t), y), params, create_graph=True)
    g2 = torch.autograd.grad(cross_entropy(head(t_hat), y), params, create_graph=True)
    diff = torch.cat([(a - b).flatten(1) for a, b in zip(g1, g2)], 1)
    return _sqrt(diff.pow(2).sum(1)).sum()


def perturb(t: torch.Tensor, gamma: float, generator: torch.Generator) -> torch.Tensor:
    """t̂ = t + γδ with a fresh δ ~ N(0, I) from the regulariser's own generator."""
    return t + gamma * torch.randn(t.shape, generator=generator, dtype=t.dtype).to(t.device)
