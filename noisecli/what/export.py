"""`noisecli export CKPT OUT --format hf`: a checkpoint as a Hugging Face transformers model folder, which
`from_pretrained`, lm-evaluation-harness and the rest of the ecosystem load as their own.

    GPT  -> GPT2LMHeadModel: nanoGPT's nn.Linear weights are transposed into GPT-2's Conv1D layout (four
            matrices per block), the vocabulary padded to 50304 is cut back to GPT-2's 50257, the output
            layer is tied to the token embedding as in GPT-2, and the MLP's exact GELU is "gelu"
    BERT -> BertForMaskedLM as it is (it is one already), [MASK] = 50257 in its tokenizer

Beside the weights: a fast tokenizer built from the shipped GPT-2 ranks (ids identical to tiktoken's;
tested) and `noisecli_export.json` (where it came from). The exported logits equal noisecli's (tested).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, provenance, staging_dir, write_json
from noisecli.core.options import check_choices, opt


@dataclass
class ExportConfig:
    checkpoint: Path | None = opt(None, "A checkpoint folder, or a run folder (its newest checkpoint).", positional=True)
    out: Path | None = opt(None, "The folder to write (config.json, model.safetensors, tokenizer files).",
                           positional=True)
    format: str = opt("hf", "hf: a transformers model folder (GPT2LMHeadModel or BertForMaskedLM).", choices=["hf"])


def gpt2_tokenizer(mask: bool = False):
    """GPT-2's BPE as a transformers fast tokenizer, from the shipped ranks; with `mask`, BERT's [MASK]."""
    from transformers import PreTrainedTokenizerFast
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from noisecli.what.tokenizer import EOT_TEXT, GPT2_PATTERN, RANKS_PATH
    extra = [EOT_TEXT] + (["[MASK]"] if mask else [])
    backend = TikTokenConverter(vocab_file=str(RANKS_PATH), pattern=GPT2_PATTERN, add_prefix_space=False,
                                additional_special_tokens=extra).converted()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, bos_token=EOT_TEXT, eos_token=EOT_TEXT,
                                  unk_token=EOT_TEXT, **({"mask_token": "[MASK]"} if mask else {}))
    tok.model_max_length = 1024
    return tok


def gpt_to_hf(model):
    """A GPT2LMHeadModel with the weights of noisecli's GPT (see the module's docstring)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from noisecli.what.tokenizer import EOT, VOCAB_SIZE
    c = model.config
    hf = GPT2LMHeadModel(GPT2Config(
        vocab_size=VOCAB_SIZE, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer, n_head=c.n_head,
        activation_function="gelu", resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, layer_norm_epsilon=1e-5,
        bos_token_id=EOT, eos_token_id=EOT, tie_word_embeddings=True))
    ours = model.state_dict()
    want = hf.state_dict()
    new = {}
    for name, target in want.items():
        if name == "lm_head.weight":
            continue   # tied to the token embedding
        if name in ours:   # the same names: nanoGPT kept GPT-2's
            t = ours[name]
            if any(k in name for k in ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight",
                                       "mlp.c_proj.weight")):
                t = t.t()   # nn.Linear (out, in) -> Conv1D (in, out)
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
    return hf.eval()


def export(cfg: ExportConfig) -> dict:
    from transformers.utils import logging as hf_logging

    from noisecli.training import checkpoint
    hf_logging.disable_progress_bar()
    check_choices(cfg)
    if cfg.checkpoint is None or cfg.out is None:
        raise InputError("give a checkpoint (or run folder) and an output folder: noisecli export CKPT OUT")
    check_output(cfg.out)
    if Path(cfg.out).exists() and any(Path(cfg.out).iterdir()):
        raise InputError(f"{cfg.out} exists and is not empty")
    model, info = checkpoint.load_checkpoint(cfg.checkpoint)
    arch = info.get("arch", "gpt")
    if arch == "gpt":
        hf, tokenizer = gpt_to_hf(model), gpt2_tokenizer()
    elif arch == "bert":
        hf, tokenizer = model.mlm.eval(), gpt2_tokenizer(mask=True)
    else:
        raise InputError(f"export --format hf takes GPT and BERT checkpoints, not '{arch}' ones")
    out = Path(cfg.out)
    with staging_dir(out) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "noisecli_export.json", {"checkpoint": str(checkpoint.resolve(cfg.checkpoint)),
                                                  "arch": arch, "iter": info.get("iter"), "format": cfg.format,
                                                  "class": type(hf).__name__, **provenance()})
    return {"out": str(out), "class": type(hf).__name__, "checkpoint": str(checkpoint.resolve(cfg.checkpoint))}
