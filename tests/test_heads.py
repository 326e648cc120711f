"""Probe heads (how/probe/heads/): a contract every registered head keeps, in float64: its closed-form CE
gradient factors equal autograd's gradient, and M stacked models behave as M models trained alone."""

import pytest
import torch
import torch.nn.functional as F

from noisecli.how.probe.heads import HEADS, make_head
from noisecli.how.probe.heads.base import cross_entropy


def _data(d=12, c=4, b=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=torch.float64), torch.randint(0, c, (b,), generator=g)


@pytest.mark.parametrize("name", HEADS.names())
@pytest.mark.parametrize("classes", [2, 4])
def test_contract_gradient_factors_are_the_ce_gradient(name, classes):
    t, y = _data(c=classes)
    head = make_head(name, 12, classes, [0, 1], torch.float64)
    assert HEADS.get(name).summary and head.models == 2
    logits, factors = head.grad_factors(t, y)
    assert torch.allclose(logits, head(t))
    params = head.factor_parameters()
    assert {id(p) for p in params} == {id(p) for p in head.parameters()}
    want = torch.autograd.grad(cross_entropy(head(t), y), params)
    assert len(factors) == len(params)
    for (u, v), p, w in zip(factors, params, want):
        got = torch.bmm(u.transpose(1, 2), v).reshape(p.shape)     # Uᵀ V per model
        assert torch.allclose(got, w, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("name", HEADS.names())
def test_contract_stacked_models_are_models_alone(name):
    t, y = _data()
    stacked = make_head(name, 12, 4, [3, 5], torch.float64)
    for i, seed in enumerate((3, 5)):
        alone = make_head(name, 12, 4, [seed], torch.float64)
        for a, b in zip(stacked.parameters(), alone.parameters()):
            assert torch.equal(a[i], b[0])                 # a model's initialisation depends on its seed only
        z = alone(t)[0]
        assert torch.allclose(stacked(t)[i], z)
        assert torch.allclose(F.cross_entropy(z, y), cross_entropy(alone(t), y))


def test_an_unknown_head_names_the_registered_ones():
    from noisecli.core.errors import InputError
    with pytest.raises(InputError, match="linear, mlp"):
        make_head("cnn", 4, 2, [0])
