"""Local Gradient Matching (the paper's Eq. 3-4 and 6) and its ablations, without second-order autograd.

    t̂ = t + γδ, δ ~ N(0, I)
    L_gm = ‖ E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y) ‖₂     (batch-mean CE gradients over all head parameters)
    L = L_ce + λ·L_gm

Each head writes its batch-mean CE gradient as factors, grad = Uᵀ V per parameter (heads.py). The
difference of two such gradients is again a product, Uᵀ V with U = [U₁; U₁ − U₂] and V = [V₁ − V₂; V₂]
(stacked along the batch): U₁ᵀ(V₁ − V₂) + (U₁ − U₂)ᵀV₂, two O(γ) terms instead of the difference of two
O(1) ones, so float32 keeps its precision. Its squared norm is either materialised (out × in, cheap for
a C-class layer) or taken through the Gram ("ghost norm") identity ‖UᵀV‖²_F = Σ (UUᵀ) ⊙ (VVᵀ), which
only builds 2B × 2B matrices — whichever costs fewer flops.

LGM itself, for both heads, goes through a fused form with a hand-written backward (`_LinearLGM`,
`_MLPLGM`): no autograd graph, and the Gram products reused by the backward. The ablations (gradnorm,
cosine) take the factor form above through first-order autograd. Either way `loss.backward()` gives
exactly what double backprop gives (tests check both in float64).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from noisecli.heads import LinearHead, MLPHead, cross_entropy, grouped_bmm, inputs, per_model

REGS = ("none", "lgm", "gradnorm", "cosine", "l2")
FUSED = (LinearHead, MLPHead)   # heads whose LGM has a hand-written form


def _inner(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """⟨U_aᵀV_a, U_bᵀV_b⟩_F per model, by whichever of the two forms is cheaper."""
    (ua, va), (ub, vb) = a, b
    rows, out, inn = ua.shape[1], ua.shape[2], va.shape[2]
    if rows * (out + inn) < out * inn:       # Gram form: B×B matrices only
        return (torch.bmm(ua, ub.transpose(1, 2)) * torch.bmm(va, vb.transpose(1, 2))).sum((1, 2))
    ga = torch.bmm(ua.transpose(1, 2), va)
    gb = ga if a is b else torch.bmm(ub.transpose(1, 2), vb)  # a squared norm: one product
    return (ga * gb).sum((1, 2))


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    """√x with value 0 and a finite (zero) gradient at x = 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def _difference(f1: list, f2: list) -> list:
    return [(torch.cat([u1, u1 - u2], 1), torch.cat([v1 - v2, v2], 1)) for (u1, v1), (u2, v2) in zip(f1, f2)]


def _halves(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of the t and the t̂ columns of class-major scores [M, C, 2B]."""
    return z.tensor_split(2, 2)


def _softmax_backward(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """P ⊙ (G − ⟨P, G⟩) over dim 1: the gradient w.r.t. the scores of a softmax P, given G w.r.t. P. One
    aten kernel (what autograd's softmax backward runs) instead of four ops."""
    return torch._softmax_backward_data(g, p, 1, p.dtype)


def _scores(w: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """W Tᵀ + b for T = [t; t̂], from X = [t − t̂; t̂] alone: [W X₁ᵀ | W X₂ᵀ], then z₂ += b, z₁ += z₂.
    w [M, out, d], x [k, 2B, d] shared by groups of M/k models (heads.inputs) -> [M, out, 2B]."""
    z = grouped_bmm(w, x.mT)
    z1, z2 = _halves(z)
    z1.add_(z2.add_(bias.unsqueeze(2)))
    return z


def _norm(u: torch.Tensor, x: torch.Tensor, gram: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖U X‖ per model, what the backward needs from it): through K = X Xᵀ (then U K = (U X) Xᵀ) or
    with U X materialised."""
    if gram:
        uk = grouped_bmm(u, torch.bmm(x, x.mT))
        return (uk * u).sum((1, 2)).clamp_min_(0).sqrt_(), uk   # ≥ 0 but for rounding
    ux = grouped_bmm(u, x)
    return torch.linalg.vector_norm(ux, dim=(1, 2)), ux


def _norm_grad(saved: torch.Tensor, x: torch.Tensor, gram: bool) -> torch.Tensor:
    """(U X) Xᵀ from what `_norm` kept, as a fresh tensor the caller may change in place."""
    return saved.clone() if gram else grouped_bmm(saved, x.mT)


def _value(logp: torch.Tensor, target: torch.Tensor, norm: torch.Tensor, lam: float, ce: float) -> torch.Tensor:
    """c·CE at t + λ·L_gm from class-major log-probabilities [M, C, 2B], t's targets [M, 1, B] and
    norm = B·L_gm."""
    b = target.shape[2]
    if ce:
        return logp[..., :b].gather(1, target).sum().mul(-ce / b).add_(norm.sum(), alpha=lam / b)
    return norm * (lam / b)


def _scale(grad: torch.Tensor, norm: torch.Tensor, lam: float, b: int) -> torch.Tensor:
    """λ·grad / (B·norm) per model, [M, 1, 1]: times the unscaled D, the gradient of λ·L_gm w.r.t. it.
    Where L_gm = 0, D = 0, so any finite value serves."""
    return ((grad * (lam / b)) / norm.clamp_min(torch.finfo(norm.dtype).tiny)).view(-1, 1, 1)


class _LinearLGM(torch.autograd.Function):
    """c·CE + λ·L_gm of a linear head z = tWᵀ + b, summed over stacked models, with the gradient written
    out by hand (no autograd graph). Scores are class-major, [M, C, 2B] (t's columns, then t̂'s). With
    X = [t − t̂; t̂], P = softmax(z), A₁ = P₁ − onehot and U = [A₁ | P₁ − P₂], the difference of the two
    batch-mean gradients is D_W = U X / B and D_b = Σ(P₁ − P₂) / B (the difference trick above), and
    L_gm = ‖D‖. ‖U X‖ is either materialised ([C, d]) or taken through the Gram matrix K = X Xᵀ
    ([2B, 2B]) as ‖U X‖² = Σ (U K) ⊙ U, where U K = D_W Xᵀ is what the backward needs anyway: whichever
    costs fewer flops (Gram when B(d + C) < Cd, i.e. many classes; K is made once per input batch, and
    t, t̂ may hold one batch per group of models, see heads.inputs). z itself comes from X too:
    z₂ = W X₂ᵀ + b, z₁ = W X₁ᵀ + z₂, so [t; t̂] is never built.
    Backward, with E = D / L_gm: R = [D_W tᵀ | D_W t̂ᵀ] + D_b where D_W tᵀ = D_W X₁ᵀ + D_W X₂ᵀ;
    S = P ⊙ (R − ⟨P, R⟩) per column (the softmax Jacobian); ∂/∂z₁ = λS₁ + cA₁, ∂/∂z₂ = −λS₂; and since
    t = X₁ + X₂, ∂/∂W = [H₁ | H₁ + H₂] X / B for H = ∂/∂z, ∂/∂b = Σ(H₁ + H₂) / B.
    A probe step is tiny (B = 32), so its cost is the number of tensor ops as much as flops: halves are
    views, 1/B rides on scalars, each product is one bmm over X; about 45 ops forward and backward."""

    @staticmethod
    def forward(ctx, weight, bias, t, t_hat, y, lam: float, ce: float):
        (m, c, d), (k, b) = weight.shape, t.shape[:2]                                 # k inputs, m models
        gram = b * (d * k / m + c) < c * d                                            # K is per input
        x = torch.cat([t - t_hat, t_hat], 1)                                          # X, [k, 2B, d]
        logp = torch.log_softmax(_scores(weight, bias, x), 1)
        p = logp.exp()
        p1, p2 = _halves(p)
        target = y.unsqueeze(1)                                                       # [M, 1, B]
        a1 = p1.scatter_add(1, target, torch.full(target.shape, -1.0, dtype=p1.dtype, device=p1.device))
        dp = p1 - p2
        u = torch.cat([a1, dp], 2)                                                    # U, [M, C, 2B]
        d_b = dp.sum(2)                                                               # B·D_b, [M, C]
        norm_w, uk = _norm(u, x, gram)
        norm = torch.hypot(norm_w, torch.linalg.vector_norm(d_b, dim=1))              # B·L_gm
        ctx.save_for_backward(x, p, a1, uk, d_b, norm)
        ctx.lam, ctx.ce, ctx.gram = lam, ce, gram
        return _value(logp, target, norm, lam, ce)

    @staticmethod
    def backward(ctx, grad):
        x, p, a1, uk, d_b, norm = ctx.saved_tensors
        b, lam, ce = x.shape[1] // 2, ctx.lam, ctx.ce
        r = _norm_grad(uk, x, ctx.gram)                                               # B·D_W Xᵀ
        r1, r2 = _halves(r)
        r1.add_(r2)                                                                   # D_W tᵀ = D_W(X₁ + X₂)ᵀ
        r.add_(d_b.unsqueeze(2)).mul_(_scale(grad, norm, lam, b))                     # λR/B
        s = _softmax_backward(r, p)                                                   # λS/B, [M, C, 2B]
        s1, s2 = _halves(s)
        torch.sub(s1, s2, out=s2)                                                     # [H₁ | H₁ + H₂]
        if ce:
            ca1 = a1 * (grad * (ce / b))
            s1.add_(ca1)
            s2.add_(ca1)
        return grouped_bmm(s, x), s2.sum(2), None, None, None, None, None


def _undo_difference(g: torch.Tensor, g_sum: torch.Tensor) -> torch.Tensor:
    """In place: the gradient w.r.t. [q₁ | q₂] from g, the gradient w.r.t. [q₁ | q₁ − q₂] (the U side of the
    difference trick), and g_sum, the gradient w.r.t. Σ(q₁ − q₂) over columns (a bias difference)."""
    g1, g2 = _halves(g)
    g2.add_(g_sum.unsqueeze(2))
    g1.add_(g2)
    g2.neg_()
    return g


class _MLPLGM(torch.autograd.Function):
    """c·CE + λ·L_gm of the MLP head z = W₂ relu(W₁t + b₁) + b₂, summed over stacked models, with the
    gradient written out by hand. Everything is feature-major, [M, features, 2B] (t's columns, then t̂'s),
    X = [t − t̂; t̂] as in _LinearLGM. With A = P − onehot, the error at the hidden layer
    E = (W₂ᵀA) ⊙ relu′ and the difference trick, B·D is
        D_W₂ = [A₁ | A₁ − A₂] [h₁ − h₂ | h₂]ᵀ,  D_b₂ = Σ(A₁ − A₂),  D_W₁ = [E₁ | E₁ − E₂] X,  D_b₁ = Σ(E₁ − E₂);
    ‖D_W₁‖ (hidden × d) goes through the Gram matrix K = X Xᵀ unless the layer is small, and then
    ∂‖D_W₁‖²/∂U₁ = 2 U₁K is a product already made. The backward runs the chain rule back through E, A,
    the softmax, h and W₁ by hand: two [hidden × d] products over 2B columns (W₁'s forward and its
    gradient) plus [2B × 2B] ones, and about 95 tensor ops in all where autograd through the factor
    form ran about 200 (profiled at d = 768)."""

    @staticmethod
    def forward(ctx, w1, b1, w2, b2, t, t_hat, y, lam: float, ce: float):
        (m, hid, d), (k, b) = w1.shape, t.shape[:2]                                   # k inputs, m models
        gram = b * (d * k / m + hid) < hid * d
        x = torch.cat([t - t_hat, t_hat], 1)                                          # X, [k, 2B, d]
        h = _scores(w1, b1, x).relu_()                                                # [M, H, 2B]
        mask = torch.sign(h)                                                          # relu′ as 0/1 floats
        logp = torch.log_softmax(torch.baddbmm(b2.unsqueeze(2), w2, h), 1)
        p = logp.exp()
        target = torch.cat([y, y], 1).unsqueeze(1)                                    # [M, 1, 2B]
        a = p.scatter_add(1, target, torch.full(target.shape, -1.0, dtype=p.dtype, device=p.device))
        e = torch.bmm(w2.mT, a).mul_(mask)                                            # E, [M, H, 2B]
        (a1, a2), (h1, h2), (e1, e2) = _halves(a), _halves(h), _halves(e)
        da, de = a1 - a2, e1 - e2
        u2, v2, u1 = torch.cat([a1, da], 2), torch.cat([h1 - h2, h2], 2), torch.cat([e1, de], 2)
        d_w2 = torch.bmm(u2, v2.mT)                                                   # [M, C, H]
        d_b2, d_b1 = da.sum(2), de.sum(2)
        norm_w1, u1k = _norm(u1, x, gram)
        norm = torch.sqrt(norm_w1.square() + d_w2.square().sum((1, 2)) + d_b2.square().sum(1) + d_b1.square().sum(1))
        ctx.save_for_backward(w1, w2, x, mask, h, p, a, u2, v2, d_w2, d_b2, u1k, d_b1, norm)
        ctx.lam, ctx.ce, ctx.gram = lam, ce, gram
        return _value(logp, target[..., :b], norm, lam, ce)

    @staticmethod
    def backward(ctx, grad):
        w1, w2, x, mask, h, p, a, u2, v2, d_w2, d_b2, u1k, d_b1, norm = ctx.saved_tensors
        b, lam, ce = x.shape[1] // 2, ctx.lam, ctx.ce
        scale = _scale(grad, norm, lam, b)
        # ∂(λL_gm)/∂ of A, h, E (the gradient of the unscaled D is scale·D)
        g_a = _undo_difference(torch.bmm(d_w2, v2), d_b2)                             # ∂/∂A
        g_h = torch.bmm(d_w2.mT, u2)                                                  # ∂/∂[h₁ − h₂ | h₂]
        gh1, gh2 = _halves(g_h)
        gh2.sub_(gh1)                                                                 # ∂/∂h
        g_e = _undo_difference(_norm_grad(u1k, x, ctx.gram), d_b1).mul_(mask)         # ∂/∂(W₂ᵀA)
        g_a.baddbmm_(w2, g_e).mul_(scale)
        g_w2 = torch.bmm(a, g_e.mT)
        # through the softmax (plus the CE term on t's columns), then z = W₂h + b₂
        g_z = _softmax_backward(g_a, p)
        if ce:
            _halves(g_z)[0].add_(_halves(a)[0] * (grad * (ce / b)))
        g_w2 = g_w2.mul_(scale).baddbmm_(g_z, h.mT)
        g_b2 = g_z.sum(2)
        g_pre = g_h.mul_(scale).baddbmm_(w2.mT, g_z).mul_(mask)                       # ∂/∂ pre-activation
        q1, q2 = _halves(g_pre)
        q2.add_(q1)                                                                   # [Q₁ | Q₁ + Q₂]
        return grouped_bmm(g_pre, x), q2.sum(2), g_w2, g_b2, None, None, None, None, None


def _fused_lgm(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, lam: float = 1.0,
               ce: float = 0.0) -> torch.Tensor:
    """c·CE + λ·L_gm through the head's hand-written form (linear or MLP)."""
    m = head.models
    t, t_hat = inputs(t, m), inputs(t_hat, m)
    y = y.expand(m, -1)
    if isinstance(head, LinearHead):
        return _LinearLGM.apply(head.weight, head.bias, t, t_hat, y, lam, ce)
    return _MLPLGM.apply(head.w1, head.b1, head.w2, head.b2, t, t_hat, y, lam, ce)


def _terms(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor,
           reg: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(regulariser per model [M], logits at t): t and t̂ go through the head once, stacked."""
    models = getattr(head, "models", 1)
    t, t_hat = per_model(t, models), per_model(t_hat, models)
    b = t.shape[1]
    y = y.expand(t.shape[:2])
    if reg == "l2":
        z = head(torch.cat([t, t_hat], 1))
        return (z[:, :b] - z[:, b:]).norm(dim=-1).mean(-1), z[:, :b]
    if reg == "gradnorm":
        z, f1 = head.grad_factors(t, y)
        return _sqrt(sum(_inner(f, f) for f in f1)), z
    z, f = head.grad_factors(torch.cat([t, t_hat], 1), torch.cat([y, y], 1), batch=b)
    f1, f2 = [(u[:, :b], v[:, :b]) for u, v in f], [(u[:, b:], v[:, b:]) for u, v in f]
    if reg == "lgm":
        return _sqrt(sum(_inner(d, d) for d in _difference(f1, f2))), z[:, :b]
    if reg == "cosine":
        dot = sum(_inner(a, c) for a, c in zip(f1, f2))
        norms = _sqrt(sum(_inner(a, a) for a in f1)) * _sqrt(sum(_inner(c, c) for c in f2))
        return 1 - dot / norms.clamp_min(torch.finfo(norms.dtype).tiny), z[:, :b]
    raise ValueError(f"unknown regulariser '{reg}' (choose from {', '.join(REGS)})")


def penalty(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, reg: str = "lgm") -> torch.Tensor:
    """The regulariser of each stacked model, shape [M]:
    lgm ‖g₁ − g₂‖, gradnorm ‖g₁‖, cosine 1 − cos(g₁, g₂) (g = batch-mean CE gradient at t and at t̂),
    l2 the batch mean of ‖head(t) − head(t̂)‖."""
    if reg == "lgm" and isinstance(head, FUSED):
        return _fused_lgm(head, t, y, t_hat)
    return _terms(head, t, y, t_hat, reg)[0]


def objective(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor | None, reg: str,
              lam: float) -> torch.Tensor:
    """The training loss L = L_ce + λ·L_reg, summed over stacked models. The logits at t come from the
    regulariser's own forward pass; LGM on the linear and MLP heads takes their fused forms above."""
    if reg == "none":
        return cross_entropy(head(t), y)
    if reg == "lgm" and isinstance(head, FUSED):
        return _fused_lgm(head, t, y, t_hat, lam, 1.0)
    reg_value, logits = _terms(head, t, y, t_hat, reg)
    return cross_entropy(logits, y) + lam * reg_value.sum()


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


class Perturbations:
    """γδ for successive batches, δ ~ N(0, I), one generator per seed: a model's δ never depends on which
    other models are stacked with it. Drawn `block` rows at a time for all seeds at once, straight into
    one buffer, so a step costs a slice. (Drawing the seeds in parallel threads made whole grids slower,
    up to 2x, as they fought the matmuls' OpenMP threads for the two cores.)"""

    def __init__(self, seeds: list[int], dim: int, gamma: float, device: torch.device, block: int = 2048):
        self.gens = [torch.Generator().manual_seed(10_000 + sd) for sd in seeds]
        self.dim, self.gamma, self.device, self.block = dim, gamma, device, block
        self.buf, self.pos = torch.empty(len(seeds), 0, dim, device=device), 0

    def next(self, rows: int) -> torch.Tensor:
        """γδ for the next batch of `rows` rows, [seeds, rows, dim]."""
        if self.pos + rows > self.buf.shape[1]:
            buf = torch.empty(len(self.gens), max(rows, self.block), self.dim)
            for g, out in zip(self.gens, buf):
                torch.randn(out.shape, generator=g, out=out)
            self.buf, self.pos = buf.mul_(self.gamma).to(self.device), 0
        self.pos += rows
        return self.buf[:, self.pos - rows:self.pos]
