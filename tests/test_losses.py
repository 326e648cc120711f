"""The chunked LM-head losses against plain autograd on full logits (float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

from noisecli.what.models import losses
from noisecli.what.models.gpt import GPT, GPTConfig


def test_training_loss_and_gradients_match_full_logits(monkeypatch):
    monkeypatch.setattr(losses, "CHUNK_ROWS", 64)  # several chunks, the last one short
    torch.manual_seed(0)
    h = torch.randn(300, 32, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2000, 32, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 2000, (300,))
    ref = F.cross_entropy(h @ w.t(), t)
    ref_grads = torch.autograd.grad(ref * 3.0, (h, w))  # a scaled upstream gradient
    got = losses.linear_cross_entropy(h, w, t)
    grads = torch.autograd.grad(got * 3.0, (h, w))
    assert abs(got.item() - ref.item()) < 1e-12
    for a, b in zip(grads, ref_grads):
        assert torch.allclose(a, b, rtol=1e-10, atol=1e-12)


def test_model_uses_the_chunked_loss_and_trains_the_same():
    torch.manual_seed(0)
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=16)
    a, b = GPT(cfg), GPT(cfg)
    b.load_state_dict(a.state_dict())
    x, y = torch.randint(0, 50257, (4, 16)), torch.randint(0, 50257, (4, 16))
    _, loss_a = a(x, y)                       # chunked path (CPU, float32, grad enabled)
    logits, _ = b(x)                          # full logits
    loss_b = F.cross_entropy(logits.view(-1, logits.size(-1)), y.view(-1))
    loss_a.backward()
    loss_b.backward()
    assert abs(loss_a.item() - loss_b.item()) < 1e-5
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-3, atol=1e-6), name


def test_rows_whose_logits_exceed_the_target_by_more_than_88_are_redone(monkeypatch):
    """Shifting by the target logit overflows exp when another logit is > 88 higher (a loss above 88
    nats); that chunk must be redone with the row maximum, in float32 as training runs."""
    monkeypatch.setattr(losses, "CHUNK_ROWS", 32)
    torch.manual_seed(1)
    h = torch.randn(100, 16) * 6
    w = torch.randn(500, 16) * 6                       # logits spread over hundreds of nats
    t = torch.randint(0, 500, (100,))
    h64, w64 = h.double().requires_grad_(), w.double().requires_grad_()
    ref = F.cross_entropy(h64 @ w64.t(), t)
    ref.backward()
    assert ref.item() > 88                             # the overflow path is taken
    hf, wf = h.clone().requires_grad_(), w.clone().requires_grad_()
    got = losses.linear_cross_entropy(hf, wf, t)
    got.backward()                                     # upstream gradient 1: the no-copy path
    assert torch.isfinite(got) and abs(got.item() - ref.item()) < 1e-4 * ref.item()
    for a, b in ((hf.grad, h64.grad), (wf.grad, w64.grad)):
        assert torch.allclose(a.double(), b, rtol=1e-4, atol=1e-5)


def test_scoring_loss_is_exact_with_extreme_logits():
    """The running-maximum logsumexp redoes a block whose logits jump far above the maximum so far."""
    from noisecli.what.models.losses import linear_cross_entropy_sum
    torch.manual_seed(0)
    h = torch.randn(300, 16)
    w = torch.randn(5000, 16) * 0.1
    w[4500:] *= 400  # logits up to ~±2000 in the last block only: exp would overflow without the redo
    t = torch.randint(0, 5000, (300,))
    ref = F.cross_entropy(h.double() @ w.double().t(), t, reduction="sum").item()
    got = linear_cross_entropy_sum(h, w, t, chunk_rows=64, chunk_vocab=1000).item()
    assert math.isfinite(got) and abs(got - ref) / abs(ref) < 1e-5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scoring_loss_matches_full_logits(dtype):
    """float32 takes the target-logit shift inside the matmul, other dtypes the running maximum (which
    accumulates in float32 too)."""
    from noisecli.what.models.losses import linear_cross_entropy_sum
    torch.manual_seed(1)
    h, w = torch.randn(300, 16, dtype=dtype), torch.randn(5000, 16, dtype=dtype) * 2
    t = torch.randint(0, 5000, (300,))
    ref = F.cross_entropy(h.double() @ w.double().t(), t, reduction="sum").item()
    got = linear_cross_entropy_sum(h, w, t, chunk_rows=64, chunk_vocab=1000).item()
    assert abs(got - ref) / abs(ref) < 1e-6
