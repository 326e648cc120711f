"""`noisecli export CKPT OUT --format hf`: a checkpoint as a Hugging Face transformers model folder, which
`from_pretrained`, lm-evaluation-harness and the rest of the ecosystem load as their own.

Each architecture says how (`Architecture.to_hf`, what/architectures/): GPT -> GPT2LMHeadModel, BERT ->
BertForMaskedLM. Beside the weights: a fast tokenizer built from the shipped GPT-2 ranks (ids identical to
tiktoken's) and `noisecli_export.json` (where it came from). The exported logits equal noisecli's (tested
for every architecture, tests/test_architectures.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, provenance, staging_dir, write_json
from noisecli.core.options import check_choices, opt
from noisecli.core.stage import Stage, written


HELP = ("Write a checkpoint as a Hugging Face transformers model folder (GPT2LMHeadModel or BertForMaskedLM, "
        "with GPT-2's tokenizer) for from_pretrained, lm-eval and the rest.")   # `noisecli --help`


@dataclass
class ExportConfig:
    checkpoint: Path | None = opt(None, "A checkpoint folder, or a run folder (its newest checkpoint).", positional=True)
    out: Path | None = opt(None, "The folder to write (config.json, model.safetensors, tokenizer files).",
                           positional=True)
    format: str = opt("hf", "hf: a transformers model folder (GPT2LMHeadModel or BertForMaskedLM).", choices=["hf"])


def export(cfg: ExportConfig) -> dict:
    from transformers.utils import logging as hf_logging

    from noisecli.training import checkpoint
    from noisecli.what.architectures import architecture, load_model
    hf_logging.disable_progress_bar()
    check_choices(cfg)
    if cfg.checkpoint is None or cfg.out is None:
        raise InputError("give a checkpoint (or run folder) and an output folder: noisecli export CKPT OUT")
    check_output(cfg.out)
    if Path(cfg.out).exists() and any(Path(cfg.out).iterdir()):
        raise InputError(f"{cfg.out} exists and is not empty")
    model, info = load_model(cfg.checkpoint)
    arch = info.get("arch", "gpt")
    hf, tokenizer = architecture(arch).to_hf(model)
    out = Path(cfg.out)
    with staging_dir(out) as tmp:
        hf.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        write_json(tmp / "noisecli_export.json", {"checkpoint": str(checkpoint.resolve(cfg.checkpoint)),
                                                  "arch": arch, "iter": info.get("iter"), "format": cfg.format,
                                                  "class": type(hf).__name__, **provenance()})
    return {"out": str(out), "class": type(hf).__name__, "checkpoint": str(checkpoint.resolve(cfg.checkpoint))}


def _show(cfg: ExportConfig, r: dict) -> None:
    from noisecli.core.tables import console
    console.print(f"exported {r['checkpoint']} as a transformers {r['class']} to {r['out']} "
                  f"(load it with from_pretrained(\"{r['out']}\"))")


STAGE = Stage("export", ExportConfig, export, HELP, done=written("noisecli_export.json"), show=_show)
