"""Full fine-tuning's regularisers, one file each, registered in FINETUNE_REGULARISERS: `none` (plain
fine-tuning), `l2sp` (Li et al. 2018), `smart` (Jiang et al. 2020) and `lnsr` (Hua et al. 2021), the
methods of the paper's Table 4. Each adds R(θ) to the task loss of `noisecli finetune`, alone or with
LGM (`--lgm`). A new one is one `FinetuneRegulariser` subclass in one new file here; its options and
their defaults are the class's `defaults`, set from the command line by `--reg-option NAME.KEY=VALUE`.
"""

from __future__ import annotations

from noisecli.core.registry import Registry

FINETUNE_REGULARISERS = Registry("fine-tuning regulariser", __name__)


def make_finetune_regulariser(name: str, options: dict | None = None):
    return FINETUNE_REGULARISERS.get(name)(**(options or {}))
