"""A stage: one command, declared once beside its function, and read by everything that runs commands.

    STAGE = Stage("prepare", PrepareConfig, prepare, "Tokenize a corpus ...", done=written("meta.json"), show=show)

The CLI makes `noisecli prepare` from it (one option per field of the config, `--help` from the text),
`reproduce` runs a plan's steps through `run` and skips those whose `done` holds, and the paper's plan
writes each step as the command line a user would type. A new command is one `Stage` in its module and one
line in `noisecli/cli.py`'s list of stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


@dataclass(frozen=True)
class Stage:
    name: str                                        # the command, e.g. "eval-ntp" or "theory k"
    config: type                                     # its config dataclass: the options, the TOML keys
    run: Callable[[Any], Any]                        # the public function: config -> result (a dict)
    help: str                                        # the command's line in `noisecli --help`
    done: Callable[[Any], bool] = lambda cfg: False  # whether cfg's output holds this stage's finished work
    show: Callable[[Any, Any], None] | None = None   # (config, result): what the command prints


def written(manifest: str) -> Callable[[Any], bool]:
    """`done` for a stage whose output folder (`cfg.out`) is complete once `manifest` is in it (written last)."""
    return lambda cfg: cfg.out is not None and (Path(cfg.out) / manifest).is_file()
