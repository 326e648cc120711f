"""LNSR, layer-wise noise stability regularisation (Hua et al. 2021, "Noise stability regularization for
improving BERT fine-tuning", §3): Gaussian noise is injected into the hidden states entering the encoder
layer r, and every layer above is asked to stay where the clean pass put it:

    R(θ) = λ · Σ_{j > r} E ‖h_j(x; h_r + ε) − h_j(x)‖²,    ε ~ N(0, σ²I)

(E: the mean over the batch's real tokens). The definition follows Hua et al.; the values are our choice
where we could not confirm theirs: r = 0 (noise on the embedding output, so every layer is regularised),
σ = 0.01 (≈ 1 % of a LayerNorm-ed hidden state's scale; their Figure 1 uses 5 % of the norm), λ = 1.
The noisy pass runs the whole encoder again with the noise added by a forward hook, so any transformers
encoder works, and with the clean pass's dropout masks, so that it differs from it by ε alone."""

from __future__ import annotations

import torch
import torch.nn as nn

from noisecli.core.errors import InputError
from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.finetune.regularisers.base import FinetuneRegulariser


def layers(encoder: nn.Module) -> nn.ModuleList:
    """The encoder's list of transformer layers (the ModuleList as long as config.num_hidden_layers)."""
    n = encoder.config.num_hidden_layers
    for m in encoder.modules():
        if isinstance(m, nn.ModuleList) and len(m) == n:
            return m
    raise InputError(f"{type(encoder).__name__}: cannot find its {n} transformer layers for LNSR")


def injection_point(encoder: nn.Module, r: int) -> nn.Module:
    """The module whose output is hidden state r: the embeddings for r = 0, else layer r − 1."""
    if r > 0:
        return layers(encoder)[r - 1]
    if not hasattr(encoder, "embeddings"):
        raise InputError(f"{type(encoder).__name__} has no .embeddings to inject LNSR's noise after; "
                         "set --reg-option lnsr.layer=1 or higher")
    return encoder.embeddings


def add_noise(noise: torch.Tensor):
    def hook(module, inputs, output):
        if isinstance(output, tuple):
            return (output[0] + noise.to(output[0].dtype), *output[1:])
        return output + noise.to(output.dtype)
    return hook


def stability(clean: tuple, noisy: tuple, mask: torch.Tensor, r: int) -> torch.Tensor:
    """Σ_{j > r} of the mean over real tokens of ‖h_j(noisy) − h_j(clean)‖²."""
    total = 0.0
    for a, b in zip(clean[r + 1:], noisy[r + 1:]):
        d = (a - b).float() if a.dtype in (torch.bfloat16, torch.float16) else a - b
        total = total + (d.pow(2).sum(-1) * mask.to(d.dtype)).sum() / mask.sum()
    return total


@FINETUNE_REGULARISERS.register("lnsr", "LNSR: λ·Σ_{j>r}‖h_j(h_r + ε) − h_j‖², ε ~ N(0, σ²I) injected at layer r "
                                "(Hua et al. 2021); options lam=1, sigma=0.01, layer=0")
class LNSR(FinetuneRegulariser):
    defaults = {"lam": 1.0, "sigma": 0.01, "layer": 0}
    needs_hidden = True

    def setup(self, model):
        n = model.encoder.config.num_hidden_layers
        if not (self.layer == int(self.layer) and 0 <= self.layer < n):
            raise InputError(f"--reg-option lnsr.layer must be a whole number in [0, {n})")
        self.layer = int(self.layer)
        self.point = injection_point(model.encoder, self.layer)

    def penalty(self, model, batch, clean):
        noise = self.sigma * torch.randn_like(clean.hidden[self.layer], dtype=torch.float32)
        clean.same_dropout()   # the noisy pass differs from the clean one by ε alone
        handle = self.point.register_forward_hook(add_noise(noise))
        try:
            noisy = model.features(batch, hidden_states=True)[1]
        finally:
            handle.remove()
        return self.lam * stability(clean.hidden, noisy, batch["attention_mask"], self.layer)
