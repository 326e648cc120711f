"""Local Gradient Matching (the paper's Eq. 3-4 and 6) and its ablations, without second-order autograd.

    t̂ = t + γδ, δ ~ N(0, I)
    L_gm = ‖ E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y) ‖₂     (batch-mean CE gradients over all head parameters)
    L = L_ce + λ·L_gm

Each head writes its batch-mean CE gradient as factors, grad = Uᵀ V per parameter (heads/). The
difference of two such gradients is again a product, Uᵀ V with U = [U₁; U₁ − U₂] and V = [V₁ − V₂; V₂]
(stacked along the batch): U₁ᵀ(V₁ − V₂) + (U₁ − U₂)ᵀV₂, two O(γ) terms instead of the difference of two
O(1) ones, so float32 keeps its precision. Its squared norm is either materialised (out × in, cheap for
a C-class layer) or taken through the Gram ("ghost norm") identity ‖UᵀV‖²_F = Σ (UUᵀ) ⊙ (VVᵀ), which
only builds 2B × 2B matrices — whichever costs fewer flops.

LGM itself, for both heads, goes through a fused form (`_linear`, `_binary` for two classes, `_mlp`)
that writes the value and the gradient in closed form: no autograd graph, and the Gram products reused
by the gradient. It takes the batch t and u = t − t̂ = −γδ as drawn and never builds t̂. Training takes
that gradient directly (`add_fused_gradient`); `lgm_loss` wraps it in one autograd node. The probe's
regularisers (how/probe/regularisers/: LGM and its ablations) are built from these pieces; the ablations
take the factor form above through first-order autograd. Either way the gradient is exactly what
double backprop gives (tests check both in float64).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisecli.how.probe.heads.base import cross_entropy, grouped_bmm, inputs
from noisecli.how.probe.heads.linear import LinearHead
from noisecli.how.probe.heads.mlp import MLPHead

FUSED = (LinearHead, MLPHead)   # heads whose LGM has a closed form


def factor_inner(a: tuple[torch.Tensor, torch.Tensor], b: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """⟨U_aᵀV_a, U_bᵀV_b⟩_F per model, by whichever of the two forms is cheaper."""
    (ua, va), (ub, vb) = a, b
    rows, out, inn = ua.shape[1], ua.shape[2], va.shape[2]
    if rows * (out + inn) < out * inn:       # Gram form: B×B matrices only
        return (torch.bmm(ua, ub.transpose(1, 2)) * torch.bmm(va, vb.transpose(1, 2))).sum((1, 2))
    ga = torch.bmm(ua.transpose(1, 2), va)
    gb = ga if a is b else torch.bmm(ub.transpose(1, 2), vb)  # a squared norm: one product
    return (ga * gb).sum((1, 2))


def safe_sqrt(x: torch.Tensor) -> torch.Tensor:
    """√x with value 0 and a finite (zero) gradient at x = 0."""
    pos = x > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, x, torch.ones_like(x))), torch.zeros_like(x))


def factor_difference(f1: list, f2: list) -> list:
    return [(torch.cat([u1, u1 - u2], 1), torch.cat([v1 - v2, v2], 1)) for (u1, v1), (u2, v2) in zip(f1, f2)]


def _halves(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Views of the first and the second half of the columns of [M, rows, 2B] (t's, then t̂'s or u's)."""
    return z.tensor_split(2, 2)


def _softmax_backward(g: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """P ⊙ (G − ⟨P, G⟩) over dim 1: the gradient w.r.t. the scores of a softmax P, given G w.r.t. P. One
    aten kernel (what autograd's softmax backward runs) instead of four ops."""
    return torch._softmax_backward_data(g, p, 1, p.dtype)


def _rows(t: torch.Tensor, u: torch.Tensor, stack: bool) -> tuple[torch.Tensor, ...]:
    """Y = [t; u] (stacked along the batch, [S, 2B, d]) as the products below take it: as one tensor, so
    each product is one bigger matmul, worth copying the batch where they are compute-bound (many
    classes, an MLP's hidden layer); or as its two halves, with no copy, where they are memory-bound."""
    return (torch.cat([t, u], 1),) if stack else (t, u)


def _scores(w: torch.Tensor, bias: torch.Tensor, ys: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """[W tᵀ + b | W t̂ᵀ + b] with t̂ = t − u, the second half as z₁ − W uᵀ: w [M, out, d], Y (`_rows`)
    shared by groups of M/S models (heads.inputs) -> [M, out, 2B]. At γ = 0 (u = 0) the halves are
    bit-identical (a matmul of [t; t̂] may round identical columns differently: MKL does on AVX2)."""
    zs = [grouped_bmm(w, y.mT) for y in ys]
    z = torch.cat(zs, 2) if len(zs) > 1 else zs[0]
    z1, z2 = _halves(z)
    torch.sub(z1.add_(bias.unsqueeze(2)), z2, out=z2)
    return z


def _times_y(cf: torch.Tensor, ys: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """cf Y (`_rows`): one product, or cf_t t + cf_u u."""
    if len(ys) == 1:
        return grouped_bmm(cf, ys[0])
    (c_t, c_u), (t, u) = _halves(cf), ys
    return grouped_bmm(c_t, t).add_(grouped_bmm(c_u, u))


def _norm(cf: torch.Tensor, ys: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """(‖D‖ per model, D Yᵀ = [D tᵀ | D uᵀ]) for D = cf Y: through K = Y Yᵀ where Y comes stacked (`_rows`
    stacks it exactly where the Gram form pays; ‖D‖² = Σ (cf K) ⊙ cf, and cf K = D Yᵀ), else with D
    materialised."""
    if len(ys) == 1:
        r = grouped_bmm(cf, torch.bmm(ys[0], ys[0].mT))
        return (r * cf).sum((1, 2)).clamp_min_(0).sqrt_(), r                    # ≥ 0 but for rounding
    dm = _times_y(cf, ys)
    return torch.linalg.vector_norm(dm, dim=(1, 2)), torch.cat([grouped_bmm(dm, y.mT) for y in ys], 2)


def _value(logp: torch.Tensor, target: torch.Tensor, norm: torch.Tensor, lam: float, ce: float) -> torch.Tensor:
    """c·CE at t + λ·L_gm from class-major log-probabilities [M, C, 2B], t's targets [M, 1, B] and
    norm = B·L_gm."""
    b = target.shape[2]
    if ce:
        return logp[..., :b].gather(1, target).sum().mul(-ce / b).add_(norm.sum(), alpha=lam / b)
    return norm * (lam / b)


def _scale(norm: torch.Tensor, lam: float, b: int) -> torch.Tensor:
    """λ / (B·norm) per model, [M, 1, 1]: times the unscaled D, the gradient of λ·L_gm w.r.t. it. Where
    L_gm = 0, D = 0, so any finite value serves."""
    return norm.clamp_min(torch.finfo(norm.dtype).tiny).reciprocal_().mul_(lam / b).view(-1, 1, 1)


def _linear(weight: torch.Tensor, bias: torch.Tensor, t: torch.Tensor, u: torch.Tensor, y: torch.Tensor,
            lam: float, ce: float, value: bool = True) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """(c·CE + λ·L_gm summed over models, its gradient w.r.t. (weight, bias)) of a linear head
    z = tWᵀ + b, in closed form, from t and u = t − t̂. Scores are class-major, [M, C, 2B] (t's columns,
    then t̂'s). With P = softmax(z), A = P − onehot and the difference trick, the difference of the two
    batch-mean gradients is B·D_W = A₁t − A₂t̂ = (P₁ − P₂) t + A₂ u and B·D_b = Σ(P₁ − P₂): both terms
    O(γ), and L_gm = ‖D‖. ‖D_W‖ is either materialised ([C, d]) or taken through the Gram matrix
    K = Y Yᵀ of Y = [t; u] ([2B, 2B]) as Σ (U K) ⊙ U with U = [P₁ − P₂ | A₂], where U K = D_W Yᵀ is what
    the gradient needs anyway: whichever costs fewer flops (Gram when B(d + C) < Cd, i.e. many classes;
    K is made once per input batch, shared by a group of models, see heads.inputs).
    Gradient, with E = D / L_gm: R = [D_W tᵀ | D_W t̂ᵀ] + D_b where D_W t̂ᵀ = D_W tᵀ − D_W uᵀ;
    S = P ⊙ (R − ⟨P, R⟩) per column (the softmax Jacobian); H₁ = ∂/∂z₁ = λS₁ + cA₁, H₂ = ∂/∂z₂ = −λS₂;
    ∂/∂W = H₁t + H₂t̂ = (H₁ + H₂) t − H₂ u, ∂/∂b = Σ(H₁ + H₂).
    A probe step is tiny (B = 32): it costs its number of tensor ops (~7 µs each on the 2-core machines
    here) and its memory traffic as much as its flops, so halves are views, 1/B rides on scalars, t̂ and
    [t; u] are never built (each would be a fresh copy of the batch), and the loss value (a few
    reductions) is only made when asked for."""
    (m, c, d), (k, b) = weight.shape, t.shape[:2]                                  # k inputs, m models
    gram = b * (d * k / m + c) < c * d                                            # K is per input
    ys = _rows(t, u, gram)
    logp = torch.log_softmax(_scores(weight, bias, ys), 1)
    p = logp.exp()
    p1, p2 = _halves(p)
    target = y.unsqueeze(1)                                                       # [M, 1, B]
    a2 = p2.scatter_add(1, target, torch.full(target.shape, -1.0, dtype=p.dtype, device=p.device))
    dp = p1 - p2
    d_b = dp.sum(2)                                                               # B·D_b, [M, C]
    norm_w, r = _norm(torch.cat([dp, a2], 2), ys)                                 # r = B·D_W Yᵀ
    norm = torch.hypot(norm_w, torch.linalg.vector_norm(d_b, dim=1))              # B·L_gm
    val = _value(logp, target, norm, lam, ce) if value else None
    r1, r2 = _halves(r)
    torch.sub(r1, r2, out=r2)                                                     # D_W t̂ᵀ
    r.add_(d_b.unsqueeze(2)).mul_(_scale(norm, lam, b))                           # λR/B
    s = _softmax_backward(r, p)                                                   # λS/B, [M, C, 2B]
    s1, s2 = _halves(s)
    s1.sub_(s2)                                                                   # [H₁ + H₂ | −H₂] / B
    if ce:
        s1.add_(dp.add_(a2), alpha=ce / b)                                        # A₁ = (P₁ − P₂) + A₂
    return val, (_times_y(s, ys), s1.sum(2))


def _binary(weight: torch.Tensor, bias: torch.Tensor, t: torch.Tensor, u: torch.Tensor, y: torch.Tensor,
            lam: float, ce: float, value: bool = True) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """`_linear` for two classes. A softmax over two scores depends on their difference only, so all of it
    goes through w̄ = w₀ − w₁, b̄ = b₀ − b₁ and q = σ(z₀ − z₁), the probability of class 0: U's two rows
    are ±ū with ū = [q₁ − q₂ | q₂ − 1{y = 0}], so D_W = [v; −v] with v = ū Y and
    ‖D‖² = 2(‖v‖² + D_b̄²), and every product has one row per model where `_linear`'s have two
    (about half the time on the CPUs here). The gradient is `_linear`'s with σ′ = q(1 − q) in place of
    the softmax Jacobian, and goes to w₀ and w₁ with opposite signs."""
    b, ys = t.shape[1], (t, u)
    z = _scores(weight[:, :1] - weight[:, 1:], bias[:, :1] - bias[:, 1:], ys)    # z₀ − z₁, [M, 1, 2B]
    q = torch.sigmoid(z)
    q1, q2 = _halves(q)
    y0 = (y == 0).unsqueeze(1)                                                    # [M, 1, B]
    dq, a2 = q1 - q2, q2 - y0.to(q.dtype)
    d_b = dq.sum(2, keepdim=True)                                                 # B·D_b̄, [M, 1, 1]
    norm_v, r = _norm(torch.cat([dq, a2], 2), ys)                                 # r = [v tᵀ | v uᵀ]
    norm = torch.hypot(norm_v, d_b.view(-1)).mul_(2 ** 0.5)                       # B·L_gm
    val = None
    if value:
        val = norm * (lam / b)
        if ce:   # the CE term: −log σ(±(z₀ − z₁)), + for y = 0
            z1 = _halves(z)[0]
            val = F.logsigmoid(torch.where(y0, z1, -z1)).sum().mul(-ce / b).add_(val.sum())
    r1, r2 = _halves(r)
    torch.sub(r1, r2, out=r2)                                                     # v tᵀ, v t̂ᵀ
    h = r.add_(d_b).mul_(_scale(norm, 2 * lam, b)).mul_(q * (1 - q))              # λ·∂L_gm/∂z, with σ′
    h1, h2 = _halves(h)
    h1.sub_(h2)                                                                   # [H₁ + H₂ | −H₂]
    if ce:
        h1.add_(dq.add_(a2), alpha=ce / b)                                        # A₁ = (q₁ − q₂) + A₂
    g_w, g_b = _times_y(h, ys), h1.sum(2)                                         # ∂/∂w̄, ∂/∂b̄
    return val, (torch.cat([g_w, -g_w], 1), torch.cat([g_b, -g_b], 1))


def _undo_difference(g: torch.Tensor, g_sum: torch.Tensor) -> torch.Tensor:
    """In place: the gradient w.r.t. [q₁ | q₂] from g, the gradient w.r.t. [q₁ | q₁ − q₂] (the U side of the
    difference trick), and g_sum, the gradient w.r.t. Σ(q₁ − q₂) over columns (a bias difference)."""
    g1, g2 = _halves(g)
    g2.add_(g_sum.unsqueeze(2))
    g1.add_(g2)
    g2.neg_()
    return g


def _mlp(w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor, t: torch.Tensor, u: torch.Tensor,
         y: torch.Tensor, lam: float, ce: float,
         value: bool = True) -> tuple[torch.Tensor | None, tuple[torch.Tensor, ...]]:
    """(c·CE + λ·L_gm summed over models, its gradient w.r.t. (w1, b1, w2, b2)) of the MLP head
    z = W₂ relu(W₁t + b₁) + b₂, in closed form. Everything is feature-major, [M, features, 2B] (t's
    columns, then t̂'s); t, u = t − t̂ and Y = [t; u] as in `_linear`. With A = P − onehot, the error at the
    hidden layer E = (W₂ᵀA) ⊙ relu′ and the difference trick, B·D is
        D_W₂ = [A₁ | A₁ − A₂] [h₁ − h₂ | h₂]ᵀ,  D_b₂ = Σ(A₁ − A₂),  D_W₁ = [E₁ − E₂ | E₂] Y,  D_b₁ = Σ(E₁ − E₂);
    ‖D_W₁‖ (hidden × d) goes through the Gram matrix K = Y Yᵀ unless the layer is small, and then
    ∂‖D_W₁‖²/∂U₁ = 2 U₁K is a product already made. The gradient runs the chain rule back through E, A,
    the softmax, h and W₁ by hand: two [hidden × d] products over 2B columns (W₁'s forward and its
    gradient) plus [2B × 2B] ones, and about 90 tensor ops in all where autograd through the factor
    form ran about 200 (profiled at d = 768)."""
    (m, hid, d), (k, b) = w1.shape, t.shape[:2]                                   # k inputs, m models
    gram = b * (d * k / m + hid) < hid * d
    ys = _rows(t, u, gram)
    h = _scores(w1, b1, ys).relu_()                                               # [M, H, 2B]
    mask = torch.sign(h)                                                          # relu′ as 0/1 floats
    h1, h2 = _halves(h)
    v2 = torch.cat([h1 - h2, h2], 2)
    logp = torch.log_softmax(_scores(w2, b2, (h1.mT, v2[..., :b].mT)), 1)         # z₁ − z₂ = W₂(h₁ − h₂)
    p = logp.exp()
    target = torch.cat([y, y], 1).unsqueeze(1)                                    # [M, 1, 2B]
    a = p.scatter_add(1, target, torch.full(target.shape, -1.0, dtype=p.dtype, device=p.device))
    a1, a2 = _halves(a)
    da = a1 - a2
    u2 = torch.cat([a1, da], 2)
    e = torch.bmm(w2.mT, u2)                                                      # W₂ᵀ[A₁ | A₁ − A₂]
    e1, e2 = _halves(e)
    torch.sub(e1, e2, out=e2)                                                     # (exact at γ = 0)
    e.mul_(mask)                                                                  # E, [M, H, 2B]
    de = e1 - e2
    d_w2 = torch.bmm(u2, v2.mT)                                                   # [M, C, H]
    d_b2, d_b1 = da.sum(2), de.sum(2)
    norm_w1, g_e = _norm(torch.cat([de, e2], 2), ys)                              # g_e = B·D_W₁ Yᵀ
    norm = torch.sqrt(norm_w1.square() + d_w2.square().sum((1, 2)) + d_b2.square().sum(1) + d_b1.square().sum(1))
    val = _value(logp, target[..., :b], norm, lam, ce) if value else None
    scale = _scale(norm, lam, b)
    # ∂(λL_gm)/∂ of A, h, E (the gradient of the unscaled D is scale·D)
    g_a = _undo_difference(torch.bmm(d_w2, v2), d_b2)                             # ∂/∂A
    g_h = torch.bmm(d_w2.mT, u2)                                                  # ∂/∂[h₁ − h₂ | h₂]
    gh1, gh2 = _halves(g_h)
    gh2.sub_(gh1)                                                                 # ∂/∂h
    ge1, ge2 = _halves(g_e)                                                       # ∂/∂[E₁ − E₂ | E₂]
    ge1.add_(d_b1.unsqueeze(2))
    ge2.sub_(ge1)                                                                 # ∂/∂[E₁ | E₂]
    g_e.mul_(mask)                                                                # ∂/∂(W₂ᵀA)
    g_a.baddbmm_(w2, g_e).mul_(scale)
    g_w2 = torch.bmm(a, g_e.mT)
    # through the softmax (plus the CE term on t's columns), then z = W₂h + b₂
    g_z = _softmax_backward(g_a, p)
    if ce:
        _halves(g_z)[0].add_(a1, alpha=ce / b)
    g_w2 = g_w2.mul_(scale).baddbmm_(g_z, h.mT)
    g_b2 = g_z.sum(2)
    g_pre = g_h.mul_(scale).baddbmm_(w2.mT, g_z).mul_(mask)                       # ∂/∂ pre-activation
    q1, q2 = _halves(g_pre)
    q1.add_(q2)
    q2.neg_()                                                                     # [Q₁ + Q₂ | −Q₂] over Y
    return val, (_times_y(g_pre, ys), q1.sum(2), g_w2, g_b2)


class _FusedLGM(torch.autograd.Function):
    """c·CE + λ·L_gm as an autograd node: the forward makes the value and, in closed form, the gradient
    (`_linear`, `_binary`, `_mlp`); the backward scales that gradient. No second-order graph is built."""

    @staticmethod
    def forward(ctx, fn, t, u, y, lam: float, ce: float, *params):
        value, grads = fn(*params, t, u, y, lam, ce)
        ctx.save_for_backward(*grads)
        return value

    @staticmethod
    def backward(ctx, grad):
        return (None,) * 6 + tuple(g * grad for g in ctx.saved_tensors)


def _fused(head: nn.Module) -> tuple | None:
    """(closed form, its parameters) for a head that has one: the stacked heads, and a plain `nn.Linear` or
    `nn.Sequential(Linear, ReLU, Linear)` (with biases) seen as one stacked model; None for any other."""
    if isinstance(head, LinearHead):
        return (_binary if head.weight.shape[1] == 2 else _linear), head.weight, head.bias
    if isinstance(head, MLPHead):
        return _mlp, head.w1, head.b1, head.w2, head.b2
    if isinstance(head, nn.Linear) and head.bias is not None:
        return (_binary if head.out_features == 2 else _linear), head.weight[None], head.bias[None]
    if (isinstance(head, nn.Sequential) and len(head) == 3 and isinstance(head[1], nn.ReLU)
            and all(isinstance(layer, nn.Linear) and layer.bias is not None for layer in (head[0], head[2]))):
        return _mlp, head[0].weight[None], head[0].bias[None], head[2].weight[None], head[2].bias[None]
    return None


def features_trained(t: torch.Tensor, t_hat: torch.Tensor | None) -> bool:
    """Whether the features need a gradient, which the closed forms do not give."""
    return t.requires_grad or (t_hat is not None and t_hat.requires_grad)


def fused_lgm(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor, lam: float = 1.0,
               ce: float = 0.0) -> torch.Tensor:
    """c·CE + λ·L_gm through the head's closed form (linear or MLP), as an autograd node [M]. It gives no
    gradient to t: `lgm_loss` takes double backprop where the features are trained."""
    m = getattr(head, "models", 1)
    fn, *params = _fused(head)
    return _FusedLGM.apply(fn, inputs(t, m), inputs(t - t_hat, m), y.expand(m, -1), lam, ce, *params)


@torch.no_grad()
def add_fused_gradient(head: nn.Module, t: torch.Tensor, offset: torch.Tensor, y: torch.Tensor, lam: float) -> None:
    """For training: adds the gradient of L_ce + λ·L_gm (each stacked model's own) to the head's .grad,
    from the batch t and offset = t − t̂ ([S, B, d] each, as `Perturbations` draws it), without autograd
    and without making the loss value, which training does not need. Linear and MLP heads (FUSED) only."""
    fn, *params = _fused(head)
    m = head.models
    for p, g in zip(params, fn(*params, inputs(t, m), inputs(offset, m), y.expand(m, -1), lam, 1.0, False)[1]):
        p.grad = g if p.grad is None else p.grad.add_(g)


def lgm_loss(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor) -> torch.Tensor:
    """L_gm = ‖E∇θℓ(g(t), y) − E∇θℓ(g(t̂), y)‖₂ (the paper's Eq. 4) for any head g that maps features
    [B, d] to logits, as a scalar with the graph to the head's parameters and to t and t̂ (summed over
    stacked models, so each gets its own L_gm gradient). In a training loop of one's own:

        t_hat = t + gamma * torch.randn_like(t)
        loss = F.cross_entropy(head(t), y) + lam * lgm_loss(head, t, y, t_hat)
        loss.backward()

    The closed form where the head has one (noisecli's heads, `nn.Linear`, `nn.Sequential(Linear, ReLU,
    Linear)`) and the features carry no gradient; exact double backprop otherwise, so features that are
    trained (fine-tuning) get theirs."""
    if _fused(head) is not None and not features_trained(t, t_hat):
        return fused_lgm(head, t, y, t_hat).sum()
    return lgm_loss_double_backprop(head, t, y, t_hat)


def ce_gradients(head: nn.Module, t: torch.Tensor, y: torch.Tensor, loss_fn=None) -> torch.Tensor:
    """E∇θℓ(g(t), y), the batch-mean CE gradient (or `loss_fn(outputs, y)`'s) over all trainable
    parameters, by autograd with create_graph (so it can be differentiated again): [M, P] for stacked
    heads, [1, P] for any other."""
    params = [p for p in head.parameters() if p.requires_grad]
    stacked = hasattr(head, "models")
    loss_fn = loss_fn or (cross_entropy if stacked else F.cross_entropy)
    g = torch.autograd.grad(loss_fn(head(t), y), params, create_graph=True)
    return torch.cat([a.flatten(1) if stacked else a.reshape(1, -1) for a in g], 1)


def lgm_loss_double_backprop(head: nn.Module, t: torch.Tensor, y: torch.Tensor, t_hat: torch.Tensor,
                             loss_fn=None) -> torch.Tensor:
    """The same quantity the naive way (autograd.grad with create_graph): for any head and any loss
    `loss_fn(outputs, y)` (default CE), and the baseline of bench/probe.py. Stacked heads ([M, B, C]
    logits) give one norm per model."""
    return safe_sqrt((ce_gradients(head, t, y, loss_fn) - ce_gradients(head, t_hat, y, loss_fn)).pow(2).sum(1)).sum()


class Perturbations:
    """t − t̂ = −γδ for successive batches, δ ~ N(0, I), one generator per seed: a model's δ never depends
    on which other models are stacked with it. Drawn `block` rows at a time for all seeds at once, straight
    into one buffer, so a step costs a slice. (Drawing the seeds in parallel threads made whole grids slower,
    up to 2x, as they fought the matmuls' OpenMP threads for the two cores.)"""

    def __init__(self, seeds: list[int], dim: int, gamma: float, device: torch.device, block: int = 2048):
        self.gens = [torch.Generator().manual_seed(10_000 + sd) for sd in seeds]
        self.dim, self.gamma, self.device, self.block = dim, gamma, device, block
        self.buf, self.pos = torch.empty(len(seeds), 0, dim, device=device), 0

    def next(self, rows: int) -> torch.Tensor:
        """t − t̂ = −γδ for the next batch of `rows` rows, [seeds, rows, dim]: t̂ = t − it, and as drawn it
        is what the fused forms take beside t (`add_fused_gradient`)."""
        if self.pos + rows > self.buf.shape[1]:
            buf = torch.empty(len(self.gens), max(rows, self.block), self.dim)
            for g, out in zip(self.gens, buf):
                torch.randn(out.shape, generator=g, out=out)
            self.buf, self.pos = buf.mul_(-self.gamma).to(self.device), 0
        self.pos += rows
        return self.buf[:, self.pos - rows:self.pos]
