"""Cross-entropy of a linear output layer without materialising all the logits.

The LM head of GPT-2 maps every position to 50,304 logits: for a CPU micro-batch of 16 x 128 tokens
that is 412 MB of float32, written and re-read by log-softmax, its backward and two matmuls. Here the
rows are processed in chunks of 256 through one reused logits buffer (a fresh large tensor per chunk
would cost page faults; 256 rows measured ~4 % faster than 128 or 64, as the weight-gradient product
gets a longer inner dimension), and the gradients for the hidden states and the weight are
accumulated during the forward pass (as fused kernels such as Liger's do). Exact up to float
rounding; deterministic.

In training a chunk's [rows, V] block is written by the matmul, exponentiated in place, summed, and
read by the two gradient matmuls; it is never normalised. With E = exp(logits − shift) and norm its
row sums, probs = E / norm, so
    grad_h = (probs − onehot) W   = (E W) / norm − W[target]
    grad_W = (probs − onehot)ᵀ h  = Eᵀ (h / norm) − h added to the target rows,
where scaling the small [rows, C] factors replaces a pass over [rows, V]. The shift is the target
logit (then loss = log norm and norm ≥ 1: no max pass, no underflow), and the matmul subtracts it
itself: [h, −shift] times [W, 1]ᵀ (one more column) saves another pass. Only if some logit exceeds
its target's by more than ~88 (exp overflows: a loss above 88 nats) is the chunk redone with the row
maximum as the shift.
"""

from __future__ import annotations

import torch

CHUNK_ROWS = 256        # training: rows per chunk of the [rows, V] block
SCORE_CHUNK_ROWS = 128  # scoring: rows per [rows, chunk_vocab] block, kept cache-sized


def _with_shift_column(weight: torch.Tensor) -> torch.Tensor:
    """[W, 1]: times [h, −shift] it gives the logits minus each row's shift, with no pass of its own."""
    w_aug = torch.empty(weight.shape[0], weight.shape[1] + 1, dtype=weight.dtype, device=weight.device)
    w_aug[:, :-1] = weight
    w_aug[:, -1] = 1.0
    return w_aug


def _exp_shifted_(logits: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """In place: logits -> exp(logits − shift per row). Returns the row sums."""
    logits.sub_(shift[:, None]).exp_()
    return logits.sum(dim=1)


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        n = h.shape[0]
        grad_h = torch.empty_like(h)
        grad_w = torch.empty_like(weight)
        total = torch.zeros((), dtype=torch.float64, device=h.device)
        buf = torch.empty(min(CHUNK_ROWS, n), weight.shape[0], dtype=h.dtype, device=h.device)
        w_aug = _with_shift_column(weight)
        for start in range(0, n, CHUNK_ROWS):
            rows = slice(start, min(start + CHUNK_ROWS, n))
            hc, tc = h[rows], targets[rows]
            w_target = weight[tc]
            picked = (hc * w_target).sum(1)                            # the target logits
            shift = picked
            exps = torch.mm(torch.cat([hc, -picked[:, None]], 1), w_aug.t(), out=buf[:hc.shape[0]])
            norm = exps.exp_().sum(1)                                  # [R, V] exps, norm ≥ 1
            if not torch.isfinite(norm).all():  # a logit > target logit + 88: shift by the row max
                torch.mm(hc, weight.t(), out=exps)
                shift = exps.amax(dim=1)
                norm = _exp_shifted_(exps, shift)
            total += (shift - picked + norm.log()).sum(dtype=torch.float64)
            scale = 1.0 / (norm * n)                                   # probs / n = exps * scale
            torch.mm(exps, weight, out=grad_h[rows]).mul_(scale[:, None]).sub_(w_target, alpha=1.0 / n)
            if start == 0:
                torch.mm(exps.t(), hc * scale[:, None], out=grad_w)
            else:
                grad_w.addmm_(exps.t(), hc * scale[:, None])
            grad_w.index_add_(0, tc, hc, alpha=-1.0 / n)
        ctx.save_for_backward(grad_h, grad_w)
        return (total / n).to(h.dtype)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        grad_h, grad_w = ctx.saved_tensors  # already the gradients of the mean
        if grad_out.item() == 1.0:  # the usual case: no 25 MB copy of grad_w
            return grad_h, grad_w, None
        return grad_h * grad_out, grad_w * grad_out, None


def linear_cross_entropy(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of `h @ weight.T` against `targets`; h [N, C] float32, weight [V, C]."""
    return _LinearCrossEntropy.apply(h, weight, targets)


def _logsumexp_rows(hc: torch.Tensor, weight: torch.Tensor, chunk_vocab: int) -> torch.Tensor:
    """Each row's logsumexp over the vocabulary in blocks, with a running maximum (float32 result)."""
    top, norm = None, None
    for v in range(0, weight.shape[0], chunk_vocab):
        w = weight[v:v + chunk_vocab]
        block = (hc @ w.t()).float()                                   # [R, Vb], cache-resident
        if top is None:
            top = block.amax(dim=1)
            norm = block.sub_(top[:, None]).exp_().sum(dim=1)
            continue
        # shift by the running maximum, skipping this block's own amax pass; exp overflows only
        # if a logit exceeds it by > 88, and then the block is redone with its maximum
        part = block.sub_(top[:, None]).exp_().sum(dim=1)
        if not torch.isfinite(part).all():
            block = (hc @ w.t()).float()
            new_top = torch.maximum(top, block.amax(dim=1))
            part = block.sub_(new_top[:, None]).exp_().sum(dim=1)
            norm, top = norm * torch.exp(top - new_top), new_top
        norm = norm + part
    return top + norm.log()


@torch.no_grad()
def linear_cross_entropy_sum(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                             chunk_rows: int = SCORE_CHUNK_ROWS, chunk_vocab: int = 4096,
                             per_row: bool = False) -> torch.Tensor:
    """Summed cross-entropy of `h @ weight.T` (no gradient) for scoring. Blocks of rows x vocabulary
    small enough to stay in a core's cache: the full logits (3.3 GB for 16 x 1024 GPT-2 positions)
    never exist. In float32 each row is shifted by its target logit inside the matmul, as in training,
    so a block costs a matmul, an exp and a sum, and the loss is log Σ exp; a row chunk whose exp
    overflows (a logit above its target's by > 88), and other dtypes, take a running maximum instead.
    With `per_row` it returns every row's loss (float32) instead of the float64 sum."""
    total = torch.zeros((), dtype=torch.float64, device=h.device)
    each = []
    weight = weight.to(h.dtype) if h.dtype != weight.dtype else weight
    w_aug = _with_shift_column(weight) if h.dtype == torch.float32 else None
    for start in range(0, h.shape[0], chunk_rows):
        hc, tc = h[start:start + chunk_rows], targets[start:start + chunk_rows]
        picked = (hc.float() * weight[tc].float()).sum(dim=1)              # the target logits
        rows = None
        if w_aug is not None:
            hc_aug = torch.cat([hc, -picked[:, None]], 1)
            norm = sum((hc_aug @ w_aug[v:v + chunk_vocab].t()).exp_().sum(dim=1)
                       for v in range(0, weight.shape[0], chunk_vocab))
            rows = norm.log() if torch.isfinite(norm).all() else None
        if rows is None:
            rows = _logsumexp_rows(hc, weight, chunk_vocab) - picked
        if per_row:
            each.append(rows.float())
        else:
            total += rows.sum(dtype=torch.float64)
    return torch.cat(each) if per_row else total
