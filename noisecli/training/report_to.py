"""`--report-to tensorboard,wandb`: every metrics.jsonl line mirrored, on rank 0 only, through the libraries
themselves (optional extras: `pip install 'noisecli[tensorboard]'`, `'noisecli[wandb]'`).

    tensorboard  RUN_DIR/tensorboard/ event files: `tensorboard --logdir RUN_DIR`
    wandb        a run named after RUN_DIR, offline (RUN_DIR/wandb/, `wandb sync` later) unless an API key
                 is set (WANDB_API_KEY, or WANDB_MODE=online after `wandb login`)

Each metric is a scalar at step = iteration, so a resumed run continues its curves.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from noisecli.core.errors import InputError

TARGETS = ["tensorboard", "wandb"]


def check_available(targets: list[str]) -> None:
    """Before any work: each asked-for library is installed."""
    for t in targets:
        if importlib.util.find_spec(t) is None:
            raise InputError(f"--report-to {t} needs the {t} package: pip install 'noisecli[{t}]'")


def _scalars(record: dict) -> dict[str, float]:
    return {k: float(v) for k, v in record.items()
            if k != "iter" and isinstance(v, (int, float)) and not isinstance(v, bool)}


class TensorBoard:
    def __init__(self, out: Path, name: str, config: dict):
        from torch.utils.tensorboard import SummaryWriter
        self.writer = SummaryWriter(log_dir=str(Path(out) / "tensorboard"))

    def log(self, record: dict) -> None:
        for k, v in _scalars(record).items():
            self.writer.add_scalar(k, v, record["iter"])
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Wandb:
    def __init__(self, out: Path, name: str, config: dict):
        import wandb
        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        run_id = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]   # the same run on resume
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "noisecli"), name=name, id=run_id,
                              resume="allow", dir=str(out), config=config, mode=mode)

    def log(self, record: dict) -> None:
        self.run.log(_scalars(record), step=record["iter"])

    def close(self) -> None:
        self.run.finish()


def mirrors(targets: list[str], out: Path, name: str, config: dict) -> list:
    return [{"tensorboard": TensorBoard, "wandb": Wandb}[t](out, name, config) for t in targets]
