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

from noisecli.heads import LinearHead, cross_entropy

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


class _LinearLGM(torch.autograd.Function):
    """L_gm of a linear head z = tWᵀ + b with its gradient written out by hand (no autograd graph).
    With P = softmax(z), A₁ = P₁ − onehot, the difference of the two batch-mean gradients is
    D_W = [A₁; P₁ − P₂]ᵀ [t − t̂; t̂] / B and D_b = Σ(P₁ − P₂) / B; L = ‖D‖, E = D / L.
    Backward: R = t E_Wᵀ + E_b, S = P ⊙ (R − ⟨P, R⟩) per row (the softmax Jacobian), and
    ∂L/∂W = [S₁; S₁ − S₂]ᵀ [t − t̂; t̂] / B, ∂L/∂b = Σ(S₁ − S₂) / B. t and t̂ go through each matmul
    stacked, so a step costs four batched matmuls."""

    @staticmethod
    def forward(ctx, weight, bias, t, t_hat, y):
        b = t.shape[1]
        both = torch.cat([t, t_hat], 1)                                               # [M, 2B, d]
        p = torch.softmax(torch.baddbmm(bias.unsqueeze(1), both, weight.transpose(1, 2)), -1)
        p1, dp = p[:, :b], p[:, :b] - p[:, b:]
        a1 = p1.scatter_add(2, y.unsqueeze(-1), torch.full(y.shape + (1,), -1.0, dtype=p.dtype, device=p.device))
        v = torch.cat([t - t_hat, t_hat], 1)
        d_w = torch.bmm(torch.cat([a1, dp], 1).transpose(1, 2), v) / b                # [M, C, d]
        d_b = dp.sum(1) / b                                                           # [M, C]
        loss = _sqrt(d_w.pow(2).sum((1, 2)) + d_b.pow(2).sum(1))
        ctx.save_for_backward(both, v, p, d_w, d_b, loss)
        return loss

    @staticmethod
    def backward(ctx, grad):
        both, v, p, d_w, d_b, loss = ctx.saved_tensors
        b = both.shape[1] // 2
        scale = torch.where(loss > 0, grad / loss.clamp_min(torch.finfo(loss.dtype).tiny), torch.zeros_like(loss))
        e_w, e_b = d_w * scale.view(-1, 1, 1), d_b * scale.view(-1, 1)
        r = torch.baddbmm(e_b.unsqueeze(1), both, e_w.transpose(1, 2))               # [M, 2B, C]
        s = p * (r - (p * r).sum(-1, keepdim=True))
        s1, ds = s[:, :b], s[:, :b] - s[:, b:]
        g_w = torch.bmm(torch.cat([s1, ds], 1).transpose(1, 2), v) / b
        return g_w, ds.sum(1) / b, None, None, None


def penalty(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, reg: str = "lgm") -> torch.Tensor:
    """The regulariser of each stacked model, shape [M]:
    lgm ‖g₁ − g₂‖, gradnorm ‖g₁‖, cosine 1 − cos(g₁, g₂) (g = batch-mean CE gradient at t and at t̂),
    l2 the batch mean of ‖head(t) − head(t̂)‖."""
    if reg == "l2":
        return (head(t) - head(t_hat)).norm(dim=-1).mean(-1)
    if reg == "lgm" and isinstance(head, LinearHead):
        m = head.models
        t, t_hat = (x.unsqueeze(0).expand(m, *x.shape) if x.dim() == 2 else x for x in (t, t_hat))
        return _LinearLGM.apply(head.weight, head.bias, t, t_hat, y.expand(t.shape[:2]))
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
