"""GPT-2 as the paper trains it (nanoGPT's model, without dropout tricks or HF loading).

Pre-LayerNorm blocks, causal self-attention through `scaled_dot_product_attention`, a GELU MLP of width
4x, learned positions, input and output embeddings tied, vocabulary padded to 50304 (a multiple of 64,
faster matmuls), init N(0, 0.02) with residual projections scaled by 1/sqrt(2 * layers).
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisecli.what.architectures.gpt import GPTConfig
from noisecli.what.models.losses import linear_cross_entropy, linear_cross_entropy_sum


class CausalSelfAttention(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.n_head, self.dropout = cfg.n_head, cfg.dropout
        self.c_attn = nn.Linear(cfg.n_embd, 3 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.c_fc = nn.Linear(cfg.n_embd, 4 * cfg.n_embd, bias=cfg.bias)
        self.c_proj = nn.Linear(4 * cfg.n_embd, cfg.n_embd, bias=cfg.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd, bias=cfg.bias)
        self.mlp = MLP(cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    arch = "gpt"       # its architecture (what/architectures/gpt.py), as checkpoints name it
    fused_loss = True  # chunked LM-head cross-entropy when training on the CPU (see losses.py)

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        self.config = cfg
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(cfg.vocab_size, cfg.n_embd),
            wpe=nn.Embedding(cfg.block_size, cfg.n_embd),
            h=nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer)),
            ln_f=nn.LayerNorm(cfg.n_embd, bias=cfg.bias),
        ))
        self.lm_head = nn.Linear(cfg.n_embd, cfg.vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied input/output embeddings
        self.apply(self._init_weights)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):  # residual projections, GPT-2's scaled init
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layer))

    def config_dict(self) -> dict:
        return self.config.to_dict()

    @classmethod
    def from_config_dict(cls, d: dict) -> "GPT":
        return cls(GPTConfig.from_dict(d))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_params(self, non_embedding: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        return n - self.transformer.wpe.weight.numel() if non_embedding else n

    def forward_features(self, idx: torch.Tensor) -> torch.Tensor:
        """Hidden states after the final LayerNorm, [B, T, n_embd]."""
        T = idx.size(1)
        if T > self.config.block_size:
            raise ValueError(f"sequence of {T} tokens is longer than the context {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(pos)
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.lm_head(features)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None,
                reduction: str = "mean") -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Logits [B, T, vocab] and, given targets, the cross-entropy (computed in float32).
        Two paths return no logits: training on the CPU in float32 (chunked loss and gradients), and
        scoring with reduction="sum" (or "none": one loss per position) without gradients (chunked loss)."""
        features = self.forward_features(idx)
        if (self.fused_loss and targets is not None and reduction == "mean" and torch.is_grad_enabled()
                and features.device.type == "cpu" and not torch.is_autocast_enabled("cpu")):
            return None, linear_cross_entropy(features.view(-1, features.size(-1)), self.lm_head.weight,
                                              targets.reshape(-1))
        if targets is not None and reduction in ("sum", "none") and not torch.is_grad_enabled():  # scoring
            return None, linear_cross_entropy_sum(features.view(-1, features.size(-1)), self.lm_head.weight,
                                                  targets.reshape(-1), per_row=reduction == "none")
        logits = self.forward_head(features)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                               reduction=reduction)
        return logits, loss

    def flops_per_token(self) -> float:
        """Training FLOPs per token (forward + backward), the PaLM appendix B formula nanoGPT uses."""
        c = self.config
        return 6 * self.num_params() + 12 * c.n_layer * c.n_embd * c.block_size
