"""GPT-2, the paper's model (§3.1: 124M and 774M, nanoGPT's recipe): its config, presets, next-token
batches, scoring and export to transformers' GPT2LMHeadModel. Torch-free at import, so `--help` lists the
presets fast; the module itself is `what/models/gpt.py`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import numpy as np

from noisecli.what.architectures import ARCHITECTURES
from noisecli.what.architectures.base import Architecture


@dataclass
class GPTConfig:
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    block_size: int = 1024      # context length in tokens
    vocab_size: int = 50304     # GPT-2's 50257 padded up to a multiple of 64
    bias: bool = True           # biases in Linear and LayerNorm layers, as GPT-2
    dropout: float = 0.0        # the paper pre-trains without dropout

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "GPTConfig":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


PRESETS = {
    "gpt2-124m": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024),
    "gpt2-774m": dict(n_layer=36, n_head=20, n_embd=1280, block_size=1024),
    "small": dict(n_layer=6, n_head=6, n_embd=384, block_size=256),   # CPU
    "tiny": dict(n_layer=4, n_head=4, n_embd=128, block_size=128),    # CPU, tests
}


def preset(name: str, **overrides) -> GPTConfig:
    """A GPT-2 config from a preset (what benchmarks and tests build models from)."""
    return GPT2().config(name, **overrides)


# The (out, in) nn.Linear matrices that GPT-2's Conv1D stores as (in, out).
CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


@ARCHITECTURES.register("gpt", "GPT-2, the paper's model: next-token prediction (nanoGPT's)")
class GPT2(Architecture):
    objective = "next-token"
    config_class, presets, default_preset = GPTConfig, PRESETS, "gpt2-124m"

    def model(self, config: GPTConfig):
        from noisecli.what.models.gpt import GPT
        return GPT(config)

    def batch(self, data, it, micro, cfg, block, device):
        """(inputs, next tokens) of the iteration's windows of block + 1 tokens."""
        from noisecli.what.windows import draw_windows, to_device
        xy = draw_windows(data, it, micro, cfg, block)
        return to_device(device, xy[:, :-1], xy[:, 1:])

    def window(self, block: int) -> int:
        return block + 1   # each token predicted from those before it; the first from nothing, so not scored

    def inputs(self, windows, seed, indices):
        return windows[:, :-1], windows[:, 1:]

    def scored_tokens(self, tokens, block):
        """Every token but each window's first (windows of block + 1 tokens, the last one shorter)."""
        tokens = np.asarray(tokens)
        return tokens[np.arange(len(tokens)) % self.window(block) != 0]

    def to_hf(self, model):
        """A GPT2LMHeadModel with our weights: nn.Linear transposed into Conv1D, the vocabulary padded to
        50304 cut back to GPT-2's 50257, the output layer tied to the token embedding as in GPT-2, exact
        GELU ("gelu"); and GPT-2's tokenizer."""
        import torch
        from transformers import GPT2Config, GPT2LMHeadModel

        from noisecli.what.tokenizer import EOT, VOCAB_SIZE, hf_tokenizer
        c = model.config
        hf = GPT2LMHeadModel(GPT2Config(
            vocab_size=VOCAB_SIZE, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
            activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
            bos_token_id=EOT, eos_token_id=EOT, tie_word_embeddings=True))
        ours, new = model.state_dict(), {}
        for name, target in hf.state_dict().items():
            if name == "lm_head.weight":
                continue   # tied to the token embedding
            if name in ours:   # the same names: nanoGPT kept GPT-2's
                t = ours[name]
                if any(k in name for k in CONV1D):
                    t = t.t()
                elif name == "transformer.wte.weight":
                    t = t[:VOCAB_SIZE]
            elif name.endswith(".bias") and not c.bias:
                t = torch.zeros_like(target)   # a bias-free GPT: GPT-2's biases are zero
            else:
                continue   # buffers of GPT-2's attention (masks), kept as transformers made them
            if t.shape != target.shape:
                raise RuntimeError(f"{name}: {tuple(t.shape)} does not fit GPT-2's {tuple(target.shape)}")
            new[name] = t.to(target.dtype)
        hf.load_state_dict(new, strict=False)
        hf.tie_weights()
        return hf.eval(), hf_tokenizer()

    def logits(self, model, ids):
        from noisecli.what.tokenizer import VOCAB_SIZE
        return model.forward_head(model.forward_features(ids))[..., :VOCAB_SIZE]
