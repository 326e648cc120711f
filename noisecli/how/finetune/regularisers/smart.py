"""SMART (Jiang et al. 2020, "SMART: Robust and efficient fine-tuning for pre-trained natural language
models through principled regularized optimization", §3 and Algorithm 1):

    min_θ  L(θ) + λ_s·R_s(θ) + μ·D_Breg(θ, θ̃)
    R_s(θ)       = E max_{x̃ near x} ℓ_s(f(x̃; θ), f(x; θ))          smoothness-inducing adversarial term
    D_Breg(θ, θ̃) = E ℓ_s(f(x; θ), f(x; θ̃))                          Bregman proximal point (trust region)
    θ̃ ← (1 − β)·θ + β·θ̃ after every step                             its momentum form (Algorithm 1)

ℓ_s is the symmetrised KL divergence (the squared difference for regression). x is the word embedding
of the input; the inner max is approximated as in Algorithm 1, with one step (T_x̄ = 1): x̃ = x + ν,
ν ~ N(0, σ²I), then x̃ ← x̃ + η·g/‖g‖_∞ with g = ∇_x̃ ℓ_s(f(x̃), f(x)), normalised per sample.

Defaults, the published ones (§5 and the authors' mt-dnn code): σ = 1e-5, η = 1e-3, λ_s = 1, μ = 1,
β = 0.99. One choice where the two differ: Algorithm 1 projects x̃ back into an ℓ_∞ ball of radius
ε = 1e-5, which the authors' code does not do (there ε only guards the division); we follow the code,
because with the projection the perturbation is 1e-5, below float32's resolution of the embeddings'
effect, and R_s would vanish. The gradient of R_s reaches θ through both passes, as in Algorithm 1.
Every extra pass (ascent, perturbed, teacher) replays the clean pass's dropout masks, so the divergences
measure the perturbation and the parameter change, not two draws of dropout.
"""

from __future__ import annotations

import torch
from torch.func import functional_call

from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.finetune.regularisers.base import FinetuneRegulariser

GUARD = 1e-6   # the mt-dnn code's adv_epsilon: keeps g/‖g‖_∞ finite


def ascent_step(model, batch: dict, clean, sigma: float, eta: float) -> torch.Tensor:
    """The perturbation ν of Algorithm 1 after one normalised ascent step (detached)."""
    embeds, target = clean.embeds, clean.outputs
    noise = (sigma * torch.randn_like(embeds)).requires_grad_(True)
    clean.same_dropout()
    adv = model.head(model.features(batch, embeds.detach() + noise)[0])
    g, = torch.autograd.grad(model.divergence(adv, target.detach()), noise)
    dims = tuple(range(1, g.dim()))
    return (noise + eta * g / (g.abs().amax(dim=dims, keepdim=True) + GUARD)).detach()


@FINETUNE_REGULARISERS.register("smart", "SMART: λ_s·adversarial sym-KL smoothness on the embeddings + μ·Bregman "
                                "proximal point to a momentum teacher (Jiang et al. 2020); options lambda_s=1, mu=1, "
                                "sigma=1e-5, eta=1e-3, beta=0.99")
class SMART(FinetuneRegulariser):
    defaults = {"lambda_s": 1.0, "mu": 1.0, "sigma": 1e-5, "eta": 1e-3, "beta": 0.99}
    needs_embeds = True

    def setup(self, model):
        self.teacher = {n: p.detach().clone() for n, p in model.named_parameters()}   # θ̃₀ = θ₀

    def penalty(self, model, batch, clean):
        noise = ascent_step(model, batch, clean, self.sigma, self.eta)
        clean.same_dropout()
        adv = model.head(model.features(batch, clean.embeds + noise)[0])
        smooth = model.divergence(adv, clean.outputs)
        clean.same_dropout()
        with torch.no_grad():
            teacher = functional_call(model, self.teacher, (batch,), {"mode": "predict"})
        return self.lambda_s * smooth + self.mu * model.divergence(clean.outputs, teacher)

    @torch.no_grad()
    def after_step(self, model):
        for n, p in model.named_parameters():
            self.teacher[n].mul_(self.beta).add_(p.detach(), alpha=1 - self.beta)

    def state_dict(self):
        return {f"teacher.{n}": t for n, t in self.teacher.items()}

    def load_state_dict(self, state):
        for n in self.teacher:
            self.teacher[n].copy_(state[f"teacher.{n}"])
