"""Local Gradient Matching (how/lgm.py): its closed forms and `lgm_loss` on any PyTorch head against
independent double-backprop computations in float64."""


import pytest
import torch
import torch.nn.functional as F

from noisecli.how.lgm import add_fused_gradient, lgm_loss
from noisecli.how.probe.heads import make_head
from noisecli.how.probe.regularisers import make_regulariser


def objective(head, t, y, t_hat, reg, lam):
    return make_regulariser(reg).objective(head, t, y, t_hat, lam)


def _double_backprop_grads(head, t, y, t_hat):
    """E∇θℓ at t and at t̂ by autograd with create_graph, written independently of noisecli."""
    params = list(head.parameters())
    g1 = torch.autograd.grad(F.cross_entropy(head(t)[0], y), params, create_graph=True)
    g2 = torch.autograd.grad(F.cross_entropy(head(t_hat)[0], y), params, create_graph=True)
    return torch.cat([g.flatten() for g in g1]), torch.cat([g.flatten() for g in g2])


def _data(d=24, c=5, b=16, gamma=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(b, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (b,), generator=g)
    return t, y, t + gamma * torch.randn(b, d, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_lgm_loss_is_the_papers_eq4_and_zero_at_gamma_zero(kind):
    t, y, t_hat = _data(gamma=0.0)
    head = make_head(kind, 24, 5, [0], torch.float64)
    loss = lgm_loss(head, t, y, t_hat)
    assert loss.item() == 0.0
    total = F.cross_entropy(head(t)[0], y) + 0.15 * loss
    grads = torch.autograd.grad(total, list(head.parameters()))
    assert all(torch.isfinite(g).all() for g in grads)
    # with γ > 0 the penalty is positive and grows with γ (linearly for the smooth linear head;
    # ReLU kinks bend the MLP's)
    small, big = (lgm_loss(head, *_data(gamma=g)[:2], _data(gamma=g)[2]).item() for g in (0.01, 0.02))
    assert 0 < small < big
    if kind == "linear":
        assert 1.9 < big / small < 2.1


def _plain_heads(c):
    torch.manual_seed(0)
    return {"nn.Linear": torch.nn.Linear(24, c),
            "Linear-ReLU-Linear": torch.nn.Sequential(torch.nn.Linear(24, 16), torch.nn.ReLU(), torch.nn.Linear(16, c)),
            "Linear-Tanh-Linear (a user's own)": torch.nn.Sequential(torch.nn.Linear(24, 16), torch.nn.Tanh(),
                                                                       torch.nn.Linear(16, c))}


@pytest.mark.parametrize("c", [2, 5])
@pytest.mark.parametrize("name", list(_plain_heads(2)))
def test_lgm_loss_on_any_pytorch_head(name, c):
    """Plain modules: the closed form where lgm_loss recognises the head, double backprop otherwise; value
    and parameter gradient equal an independent double backprop in float64."""
    t, y, t_hat = _data(c=c)
    y = y % c
    head = _plain_heads(c)[name].double()
    params = list(head.parameters())
    ours = lgm_loss(head, t, y, t_hat)
    g1 = torch.autograd.grad(F.cross_entropy(head(t), y), params, create_graph=True)
    g2 = torch.autograd.grad(F.cross_entropy(head(t_hat), y), params, create_graph=True)
    ref = torch.cat([(a - b).flatten() for a, b in zip(g1, g2)]).norm()
    assert ours.item() > 0 and abs(ours.item() - ref.item()) <= 1e-9 * ref.item()
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params)):
        assert ((a - b).norm() / b.norm()).item() < 1e-8


@pytest.mark.parametrize("name", list(_plain_heads(3)) + ["stacked linear", "stacked mlp"])
def test_lgm_loss_gives_trainable_features_their_gradient(name):
    """Features that are trained (fine-tuning) get the gradient of L_gm: checked by finite differences."""
    t, y, t_hat = _data(d=24, c=3, b=6)
    y = y % 3
    head = (make_head(name.split()[1], 24, 3, [0], torch.float64) if name.startswith("stacked")
            else _plain_heads(3)[name].double())
    t.requires_grad_(True)
    offset = (t_hat - t).detach()
    assert torch.autograd.gradcheck(lambda x: lgm_loss(head, x, y, x + offset), (t,), eps=1e-6, atol=1e-6)
    g = torch.autograd.grad(lgm_loss(head, t, y, t + offset), t)[0]
    assert g.abs().sum() > 0


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_training_objective_is_ce_plus_lambda_lgm(kind):
    t, y, t_hat = _data()
    head = make_head(kind, 24, 5, [2], torch.float64)
    params = list(head.parameters())
    fused = objective(head, t, y, t_hat, "lgm", 0.15)
    g1, g2 = _double_backprop_grads(head, t, y, t_hat)
    ref = F.cross_entropy(head(t)[0], y) + 0.15 * (g1 - g2).norm()
    assert abs(fused.item() - ref.item()) < 1e-12
    for a, b in zip(torch.autograd.grad(fused, params), torch.autograd.grad(ref, params)):
        assert ((a - b).norm() / b.norm()).item() < 1e-10


# ‖D_W‖ of the (first) layer materialised, and through its Gram matrix: linear with few / many classes
# (and two, its own form), MLP with few / many features per row of the batch
@pytest.mark.parametrize("kind,dim,classes,batch", [("linear", 12, 2, 8), ("linear", 12, 3, 8), ("linear", 12, 40, 8),
                                                    ("mlp", 12, 3, 8), ("mlp", 48, 6, 4)])
def test_fused_objective_matches_double_backprop_in_both_forms(kind, dim, classes, batch):
    g = torch.Generator().manual_seed(5)
    t = torch.randn(batch, dim, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (batch,), generator=g)
    t_hat = t + 0.01 * torch.randn(batch, dim, generator=g, dtype=torch.float64)
    head = make_head(kind, dim, classes, [1], torch.float64)
    params = list(head.parameters())
    ours = objective(head, t, y, t_hat, "lgm", 0.15)
    g1, g2 = _double_backprop_grads(head, t, y, t_hat)
    ref = F.cross_entropy(head(t)[0], y) + 0.15 * (g1 - g2).norm()
    assert abs(ours.item() - ref.item()) <= 1e-10 * abs(ref.item())
    for a, b in zip(torch.autograd.grad(ours, params), torch.autograd.grad(ref, params)):
        assert ((a - b).norm() / b.norm()).item() < 1e-9


@pytest.mark.parametrize("kind,dim,classes", [("linear", 12, 2), ("linear", 12, 3), ("linear", 12, 40), ("mlp", 48, 6)])
def test_training_adds_the_gradient_that_the_objective_backpropagates(kind, dim, classes):
    """probe.train_heads takes the fused gradient straight into .grad (no autograd): it must be the gradient
    of objective(..., "lgm", λ), and add to what .grad already holds."""
    g = torch.Generator().manual_seed(3)
    t = torch.randn(8, dim, generator=g, dtype=torch.float64)
    t_hat = t + 0.01 * torch.randn(8, dim, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (8,), generator=g)
    head = make_head(kind, dim, classes, [4], torch.float64)
    params = list(head.parameters())
    ref = torch.autograd.grad(objective(head, t, y, t_hat, "lgm", 0.15), params)
    add_fused_gradient(head, t, t - t_hat, y, 0.15)
    for p, r in zip(params, ref):
        assert torch.allclose(p.grad, r, rtol=1e-12, atol=1e-15)
    add_fused_gradient(head, t, t - t_hat, y, 0.15)
    for p, r in zip(params, ref):
        assert torch.allclose(p.grad, 2 * r, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kind,dim,classes", [("linear", 12, 2), ("linear", 12, 3), ("linear", 12, 40), ("mlp", 12, 3),
                                              ("mlp", 48, 6)])
def test_models_sharing_an_input_batch_match_models_with_their_own_copy(kind, dim, classes):
    """Grids share each seed's batch among its learning rates (heads.inputs): 2 batches for 6 models must
    give what 6 per-model copies give, in value and gradient, in both forms of the fused LGM."""
    g = torch.Generator().manual_seed(7)
    t = torch.randn(2, 4, dim, generator=g, dtype=torch.float64)
    t_hat = t + 0.01 * torch.randn(2, 4, dim, generator=g, dtype=torch.float64)
    y = torch.randint(0, classes, (6, 4), generator=g)
    head = make_head(kind, dim, classes, [0, 0, 0, 1, 1, 1], torch.float64)
    with torch.no_grad():
        for p in head.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))   # six different models
    params = list(head.parameters())
    for reg in ("lgm", "none"):
        shared = objective(head, t, y, t_hat, reg, 0.15)
        copies = objective(head, t.repeat_interleave(3, 0), y, t_hat.repeat_interleave(3, 0), reg, 0.15)
        assert abs(shared.item() - copies.item()) <= 1e-12 * abs(copies.item())
        for a, b in zip(torch.autograd.grad(shared, params), torch.autograd.grad(copies, params)):
            assert torch.allclose(a, b, rtol=1e-10, atol=1e-14)


