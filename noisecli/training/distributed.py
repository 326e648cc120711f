"""Process groups: detect torchrun / Slurm, or start the workers ourselves with PyTorch's elastic
launcher (what `torchrun` uses), so `noisecli pretrain --gpus 8` needs no wrapper command.

One process per GPU (NCCL) or per CPU share (gloo, `--procs N`). Rank 0 writes every file.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as tdist


@dataclass
class Dist:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    local_world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def _adopt_slurm() -> None:
    """Under `srun` with one task per GPU, Slurm's variables say who we are; map them to torch's
    (MASTER_ADDR must be set by the job script, e.g. from `scontrol show hostnames`)."""
    if "RANK" not in os.environ and int(os.environ.get("SLURM_NTASKS", "1")) > 1 \
            and "MASTER_ADDR" in os.environ:
        os.environ["RANK"] = os.environ["SLURM_PROCID"]
        os.environ["WORLD_SIZE"] = os.environ["SLURM_NTASKS"]
        os.environ["LOCAL_RANK"] = os.environ.get("SLURM_LOCALID", "0")
        os.environ.setdefault("LOCAL_WORLD_SIZE", os.environ.get("SLURM_NTASKS_PER_NODE", "1"))
        os.environ.setdefault("MASTER_PORT", "29500")


def launched_externally() -> bool:
    """True inside a process started by torchrun, our own launcher, or Slurm with several tasks."""
    _adopt_slurm()
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def pick_device(name: str) -> torch.device:
    """'auto' means CUDA when available, else the CPU."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    from noisecli.core.errors import InputError
    try:
        device = torch.device(name)
    except RuntimeError:
        raise InputError(f"--device must be auto, cpu, cuda or cuda:N; got '{name}'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"--device {name}: no CUDA device here")
    return device


def setup(device: str = "auto") -> Dist:
    """Join the process group if there is one; pick this process's device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    dev = pick_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank if world > 1 else (dev.index or 0))
        torch.cuda.set_device(dev)
    if world > 1 and not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Dist(rank, local_rank, world, local_world, dev)


def teardown() -> None:
    if tdist.is_initialized():
        tdist.destroy_process_group()


def all_reduce(t: torch.Tensor, op: str = "sum") -> torch.Tensor:
    if tdist.is_initialized():
        tdist.all_reduce(t, op={"sum": tdist.ReduceOp.SUM, "max": tdist.ReduceOp.MAX}[op])
    return t


def barrier() -> None:
    if tdist.is_initialized():
        tdist.barrier()


def end_worker(summary: dict) -> None:
    """A worker whose run stopped on a signal (its checkpoint saved, its process group left) exits now:
    the elastic agent that forwarded the signal waits for its workers to exit, and would otherwise wait
    30 s for a worker parked on its "results collected" event, then kill it."""
    if summary.get("status") == "interrupted" and summary.get("signal"):
        import sys
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(128 + int(summary["signal"]))


def launch(entry: Callable[..., Any], args: tuple, nproc_per_node: int, nnodes: int = 1,
           node_rank: int = 0, rdzv_endpoint: str | None = None) -> None:
    """Start `entry(*args)` in nproc_per_node x nnodes processes through torch's elastic agent. SIGINT or
    SIGTERM to this process reaches the workers (the agent forwards it), which save and exit; then it
    raises `Interrupted`, without the agent's log lines and traceback."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    from noisecli.core.errors import Interrupted
    for name in [n for n in logging.root.manager.loggerDict if n.startswith("torch.distributed.elastic")]:
        logging.getLogger(name).setLevel(logging.ERROR)   # its own "shutting down workers" lines
    single = nnodes == 1  # one node: a private c10d store on a free port, like `torchrun --standalone`
    config = LaunchConfig(  # several nodes: static rendezvous at node 0's address, like torchrun's
        min_nodes=nnodes, max_nodes=nnodes, nproc_per_node=nproc_per_node,  # --node-rank/--master-addr
        run_id=str(uuid.uuid4()) if single else "noisecli",
        rdzv_backend="c10d" if single else "static",
        rdzv_endpoint="localhost:0" if single else rdzv_endpoint,
        rdzv_configs={} if single else {"rank": node_rank},
        max_restarts=0, monitor_interval=0.5, start_method="spawn")
    try:
        elastic_launch(config, entry)(*args)
    except SignalException as e:
        raise Interrupted(int(e.sigval)) from None


def run_in_workers(train: Callable[[Any], dict], cfg: Any, workers: int, nnodes: int = 1, node_rank: int = 0,
                   rdzv_endpoint: str | None = None) -> bool:
    """Run `train(cfg)` in `workers` processes per node started by our launcher, when more than one process
    is asked for and no launcher (torchrun, Slurm) started this one; True if it did. Each worker rebuilds
    the config from its fields with the device its kind of worker uses (`cfg.gpus`: cuda, `cfg.procs`: cpu).
    `train` must be a module-level function (workers import it by name)."""
    if (workers <= 1 and nnodes <= 1) or launched_externally():
        return False
    from dataclasses import asdict
    launch(_worker, (train, type(cfg), asdict(cfg)), workers, nnodes, node_rank, rdzv_endpoint)
    return True


def _worker(train: Callable[[Any], dict], config_cls: type, fields: dict) -> None:
    """Entry point of each process `run_in_workers` starts (the parent has validated everything). It ends with
    its parent (SIGTERM: it saves and stops), even when the parent is killed with SIGKILL."""
    import signal
    from dataclasses import replace

    from noisecli.core.workers import die_with_parent
    die_with_parent(os.getppid(), signal.SIGTERM)
    cfg = config_cls(**fields)
    end_worker(train(replace(cfg, device="cuda" if cfg.gpus else ("cpu" if cfg.procs else cfg.device))))
