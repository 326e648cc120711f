"""Regularisers (how/probe/regularisers/): a contract every registered regulariser keeps on every registered
head, in float64. Its fast form (closed form, or factors through first-order autograd) equals its plain
definition by double backprop, in value and in gradient, with respect to the head's parameters and to
the features; and the plain definitions of the paper's ones equal formulas written here independently."""

import pytest
import torch
import torch.nn.functional as F

from noisecli.how.probe.heads import HEADS, make_head
from noisecli.how.probe.regularisers import REGULARISERS, make_regulariser


def _data(d=24, c=5, b=16, gamma=0.01, seed=0):
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(b, d, generator=g, dtype=torch.float64)
    y = torch.randint(0, c, (b,), generator=g)
    return t, y, t + gamma * torch.randn(b, d, generator=g, dtype=torch.float64)


def _close(a, b, rel):
    return (a - b).norm() <= rel * max(b.norm(), 1e-30)


@pytest.mark.parametrize("head_name", HEADS.names())
@pytest.mark.parametrize("name", REGULARISERS.names())
@pytest.mark.parametrize("features", ["frozen", "trained"])
def test_contract_fast_form_equals_double_backprop(name, head_name, features):
    reg = make_regulariser(name)
    assert reg.name == name and reg.summary
    t, y, t_hat = _data()
    head = make_head(head_name, 24, 5, [3], torch.float64)
    if features == "trained":   # fine-tuning: the gradient must reach the features too
        t.requires_grad_(True)
        t_hat = t + (t_hat - t).detach()
    params = list(head.parameters())
    ours = reg.objective(head, t, y, t_hat, 0.15)
    ref = F.cross_entropy(head(t)[0], y) + 0.15 * reg.reference(head, t, y, t_hat).sum()
    assert abs(ours.item() - ref.item()) <= 1e-9 * abs(ref.item())
    assert torch.allclose(reg.penalty(head, t, y, t_hat), reg.reference(head, t, y, t_hat), rtol=1e-9, atol=1e-15)
    wrt = params + ([t] if features == "trained" else [])
    for a, b in zip(torch.autograd.grad(ours, wrt), torch.autograd.grad(ref, wrt)):
        assert _close(a, b, 1e-8)
    # the closed-form training step, where there is one, adds exactly the objective's gradient
    if reg.perturbed and features == "frozen":
        want = torch.autograd.grad(reg.objective(head, t, y, t_hat, 0.15), params)
        if reg.add_gradient(head, t, t - t_hat, y, 0.15):
            for p, w in zip(params, want):
                assert _close(p.grad, w, 1e-10)


def _double_backprop_grads(head, t, y, t_hat):
    """E∇θℓ at t and at t̂ by autograd with create_graph, written independently of noisecli."""
    params = list(head.parameters())
    g1 = torch.autograd.grad(F.cross_entropy(head(t)[0], y), params, create_graph=True)
    g2 = torch.autograd.grad(F.cross_entropy(head(t_hat)[0], y), params, create_graph=True)
    return torch.cat([g.flatten() for g in g1]), torch.cat([g.flatten() for g in g2])


@pytest.mark.parametrize("kind", ["linear", "mlp"])
def test_the_papers_regularisers_are_their_formulas(kind):
    t, y, t_hat = _data()
    head = make_head(kind, 24, 5, [3], torch.float64)
    g1, g2 = _double_backprop_grads(head, t, y, t_hat)
    want = {"lgm": (g1 - g2).norm(), "gradnorm": g1.norm(), "cosine": 1 - torch.dot(g1, g2) / (g1.norm() * g2.norm()),
            "l2": (head(t)[0] - head(t_hat)[0]).norm(dim=-1).mean(), "none": torch.zeros(())}
    for name, value in want.items():
        got = make_regulariser(name).penalty(head, t, y, t_hat)[0]
        assert abs(got.item() - value.item()) <= 1e-9 * max(abs(value.item()), 1e-30), name
        assert name == "none" or got.item() > 0
