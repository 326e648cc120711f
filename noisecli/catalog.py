"""Every registry of pluggable kinds, in one place: what a user can choose from (noise distributions,
architectures, backbones, heads, regularisers, fine-tuning regularisers, tasks). The README's tables are
generated from it, between `<!-- registry:KEY -->` and `<!-- /registry -->` lines, and a test keeps them
equal: `python -m noisecli.catalog` rewrites them."""

from __future__ import annotations

from noisecli.core.registry import Registry
from noisecli.how.backbones import BACKBONES
from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.what.architectures import ARCHITECTURES
from noisecli.what.noise import NOISES

REGISTRIES: dict[str, Registry] = {
    "noise": NOISES, "architectures": ARCHITECTURES, "backbones": BACKBONES, "heads": HEADS,
    "regularisers": REGULARISERS, "finetune": FINETUNE_REGULARISERS,
}


def readme_tables(text: str) -> str:
    """`text` (the README) with every registry table regenerated from its registry."""
    for key, registry in REGISTRIES.items():
        start, end = f"<!-- registry:{key} -->\n", "<!-- /registry -->"
        if start not in text:
            continue
        head, rest = text.split(start, 1)
        text = head + start + registry.markdown() + "\n" + end + rest.split(end, 1)[1]
    return text


if __name__ == "__main__":   # python -m noisecli.catalog: rewrite README.md's tables
    from pathlib import Path
    readme = Path(__file__).resolve().parents[1] / "README.md"
    readme.write_text(readme_tables(readme.read_text()))
