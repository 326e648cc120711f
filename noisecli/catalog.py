"""Every registry of pluggable kinds, in one place: what a user can choose from (noise distributions,
architectures, backbones, heads, regularisers, fine-tuning regularisers, and the tasks). The README's tables are
generated from it, between `<!-- registry:KEY -->` and `<!-- /registry -->` lines, and a test keeps them
equal: `python -m noisecli.catalog` rewrites them."""

from __future__ import annotations

from noisecli.core.registry import Registry
from noisecli.how.backbones import BACKBONES
from noisecli.how.finetune.regularisers import FINETUNE_REGULARISERS
from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.tasks import TASKS
from noisecli.what.architectures import ARCHITECTURES
from noisecli.what.noise import NOISES

REGISTRIES: dict[str, Registry] = {
    "noise": NOISES, "architectures": ARCHITECTURES, "backbones": BACKBONES, "heads": HEADS,
    "regularisers": REGULARISERS, "finetune": FINETUNE_REGULARISERS,
}


def tasks_markdown() -> str:
    """The README's table of the named tasks (how/tasks/: offline ones first, then the hub's)."""
    rows = [f"| `{name}` | {t.modality} | {'offline' if t.offline else 'hub'} | {t.description} |"
            for name, t in TASKS.items()]
    return "\n".join(["| task | modality | from | what it is |", "|---|---|---|---|", *rows])


def readme_tables(text: str) -> str:
    """`text` (the README) with every registry table regenerated from its registry."""
    tables = {**{key: registry.markdown for key, registry in REGISTRIES.items()}, "tasks": tasks_markdown}
    for key, make in tables.items():
        start, end = f"<!-- registry:{key} -->\n", "<!-- /registry -->"
        if start not in text:
            continue
        head, rest = text.split(start, 1)
        text = head + start + make() + "\n" + end + rest.split(end, 1)[1]
    return text


if __name__ == "__main__":   # python -m noisecli.catalog: rewrite README.md's tables
    from pathlib import Path
    readme = Path(__file__).resolve().parents[1] / "README.md"
    readme.write_text(readme_tables(readme.read_text()))
