"""BERT by masked-language modelling under noise (the paper's Table 9, Appendix D.5): its config, presets,
masked batches, scoring with fixed masks and export to transformers' BertForMaskedLM. Torch-free at import;
the module itself is `what/models/bert.py`, the masking `what/masking.py`.

The vocabulary is GPT-2's, so BERT trains on the same prepared token files as GPT-2 (the paper's Table 9
pre-trains BERT-base on the same noisy data): ids 0..50256 are GPT-2's, MASK_ID = 50257 is the one token
added for masked-language modelling, and the embedding is padded to 50304 (a multiple of 64, as GPT-2's).
Our choice: the paper does not say which tokenizer its BERT used; sharing GPT-2's keeps the data, the
noise and its ids identical between the two models. There are no segment pairs (one token type) and no
next-sentence prediction, as in RoBERTa.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from noisecli.core.errors import InputError
from noisecli.what.architectures import ARCHITECTURES
from noisecli.what.architectures.base import Architecture
from noisecli.what.architectures.gpt import GPTConfig

MASK_ID = 50257


@dataclass
class BertModelConfig(GPTConfig):
    """GPT-2's fields: layers, heads, width, context (BERT's position embeddings: 512), vocabulary (50257 +
    [MASK], padded to 50304), biases, and dropout (hidden and attention; BERT's own recipe uses 0.1, our
    default 0 matches the GPT-2 runs, and --dropout sets it)."""
    block_size: int = 512


BERT_PRESETS = {
    "bert-base": dict(n_layer=12, n_head=12, n_embd=768, block_size=512),    # the paper's Table 9
    "bert-large": dict(n_layer=24, n_head=16, n_embd=1024, block_size=512),
    "bert-tiny": dict(n_layer=2, n_head=2, n_embd=128, block_size=128),      # CPU, tests
}


@ARCHITECTURES.register("bert", "BERT (Table 9): masked-language modelling, 15 % of tokens selected, 80/10/10 "
                                "mask/random/kept, GPT-2's vocabulary plus [MASK]")
class Bert(Architecture):
    objective = "mlm"
    config_class, presets, default_preset = BertModelConfig, BERT_PRESETS, "bert-base"

    def model(self, config: BertModelConfig):
        from noisecli.what.models.bert import BERT
        return BERT(config)

    def check_vocab(self, vocab, config):
        if vocab > MASK_ID:
            raise InputError(f"the data's vocabulary ({vocab}) leaves no id for BERT's [MASK] ({MASK_ID})")
        super().check_vocab(vocab, config)

    def batch(self, data, it, micro, cfg, block, device):
        """(masked inputs, labels) of the iteration's windows' first `block` tokens. Window i of the
        iteration's global batch is masked by the generator of (seed, it, i) (masking.py)."""
        from noisecli.what.masking import mask_windows, training_keys
        from noisecli.what.windows import draw_windows, to_device
        windows = draw_windows(data, it, micro, cfg, block)[:, :-1]
        first = micro * cfg.batch_size
        return to_device(device, *mask_windows(windows, training_keys(cfg.seed, it), range(first, first + len(windows))))

    def window(self, block: int) -> int:
        return block

    def inputs(self, windows, seed, indices):
        """Each window with the fixed mask of its index (the same for every checkpoint)."""
        from noisecli.what.masking import evaluation_keys, mask_windows
        return mask_windows(windows, evaluation_keys(seed), indices)

    @staticmethod
    def sum_per_window(loss, targets):
        """The model returns one loss per masked position, in row order: add them up per window."""
        import torch
        picked = targets != -100
        per_window = torch.zeros(len(targets), dtype=torch.float64, device=loss.device)
        return per_window.index_add_(0, torch.nonzero(picked)[:, 0], loss.double())

    def scored_tokens(self, tokens, block):
        """In each window of `block` tokens, those its fixed mask selects (scoring's seed, `MLM_SEED`)."""
        from noisecli.what.masking import evaluation_keys, mask_window
        from noisecli.what.scoring import MLM_SEED
        tokens, out = np.asarray(tokens), []
        for j, start in enumerate(range(0, len(tokens), block)):
            window = tokens[start:start + block]
            if len(window) < 2:
                break
            labels = mask_window(window, np.random.default_rng(np.random.SeedSequence([*evaluation_keys(MLM_SEED), j])))[1]
            out.append(labels[labels != -100])
        return np.concatenate(out) if out else np.zeros(0, np.int64)

    def to_hf(self, model):
        """BertForMaskedLM as it is (the model is one already), [MASK] = 50257 in its tokenizer."""
        from noisecli.what.tokenizer import hf_tokenizer
        return model.mlm.eval(), hf_tokenizer(mask=True)

    def logits(self, model, ids):
        return model.mlm(input_ids=ids).logits
