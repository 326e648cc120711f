"""`hf:PATH_OR_ID` in `eval-ntp`: a transformers causal LM (an `export`ed checkpoint, public GPT-2, any
model with GPT-2's tokenizer) scored exactly like noisecli's checkpoints, on the same token ids.

The token files hold GPT-2 BPE ids, so a model is only comparable if its tokenizer maps text to the same
ids: that is checked on probe texts before scoring, and a model whose tokenizer differs is refused.
"""

from __future__ import annotations

from types import SimpleNamespace

import torch
import torch.nn as nn
import torch.nn.functional as F

from noisecli.core.errors import InputError

PROBES = ["The quick brown fox jumps over the lazy dog.", "  it's 2024 — naïve café, 東京\n\nx = y+1;",
          "Random noise in pre-training data: does it hurt?"]


class HFCausalLM(nn.Module):
    """A causal LM with noisecli's scoring interface: `.config.block_size`, and `model(x, y, reduction)`
    returning (logits, per-token loss)."""
    arch = "hf"

    def __init__(self, spec: str, device: torch.device):
        super().__init__()
        from noisecli.core.hub import load_pretrained
        from noisecli.what.tokenizer import encode
        (tokenizer,) = load_pretrained(str(spec)[3:], "AutoTokenizer", what="a causal LM")   # checked first: cheap
        for text in PROBES:
            theirs, ours = tokenizer(text, add_special_tokens=False)["input_ids"], encode(text).tolist()
            if theirs != ours:
                raise InputError(f"{spec}'s tokenizer is not GPT-2's ({text[:20]!r} -> {theirs[:6]}... vs "
                                 f"{ours[:6]}...): its loss on GPT-2 token ids would mean nothing")
        (lm,) = load_pretrained(str(spec)[3:], "AutoModelForCausalLM", what="a causal LM")
        self.lm = lm.to(device).eval()
        cfg = self.lm.config
        self.vocab_size = cfg.vocab_size
        self.config = SimpleNamespace(block_size=getattr(cfg, "n_positions", None) or cfg.max_position_embeddings,
                                      vocab_size=cfg.vocab_size)

    def forward(self, x: torch.Tensor, y: torch.Tensor, reduction: str = "mean"):
        logits = self.lm(input_ids=x).logits
        loss = F.cross_entropy(logits.float().reshape(-1, logits.size(-1)), y.reshape(-1), reduction=reduction)
        return logits, loss


def load(spec: str, device: torch.device) -> tuple[HFCausalLM, dict]:
    """The model and what eval-ntp's rows record of it (no iteration: it is not one of our runs)."""
    return HFCausalLM(spec, device), {"iter": 0, "arch": "hf", "model": {"source": str(spec)}}
