"""The shared training loop and checkpoints (training/) with a model that is not a GPT: they know nothing
of the model but its hooks, and a stopped-then-resumed run ends bit-identical to an uninterrupted one."""

import json

import torch
import torch.nn as nn

from noisecli.training import checkpoint
from noisecli.training.distributed import Dist
from noisecli.training.loop import Hooks, LoopConfig, resume, train_loop
from noisecli.training.steps import make_optimizer


class Regressor(nn.Module):
    """A small MLP on fixed random regression data: a model any user might bring."""
    arch = "test-regressor"

    def __init__(self, width: int = 8):
        super().__init__()
        self.width = width
        self.net = nn.Sequential(nn.Linear(4, width), nn.Tanh(), nn.Linear(width, 1))

    def config_dict(self) -> dict:
        return {"width": self.width}

    @classmethod
    def from_config_dict(cls, d: dict) -> "Regressor":
        return cls(**d)


def _data():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(256, 4, generator=g)
    return x, (x[:, :1] * 2 - x[:, 1:2]).tanh()


def _run(out, end, start_from=None):
    x, y = _data()
    dist = Dist()
    if start_from is None:
        torch.manual_seed(0)
        model = Regressor()
        opt = make_optimizer(model, 1e-2, 0.0, (0.9, 0.95), dist.device)
        start = 0
    else:
        model = checkpoint.load_checkpoint(start_from, lambda info: Regressor.from_config_dict(info["model"]))[0].train()
        opt = make_optimizer(model, 1e-2, 0.0, (0.9, 0.95), dist.device)
        start, _ = resume(start_from, opt)

    def batches(it):   # depends only on the iteration: two micro-batches of 16
        idx = torch.randint(0, 256, (32,), generator=torch.Generator().manual_seed(it))
        return [(x[idx[:16]], y[idx[:16]]), (x[idx[16:]], y[idx[16:]])]

    hooks = Hooks(micro_batches=batches, accum=2, loss=lambda m, b: nn.functional.mse_loss(m.net(b[0]), b[1]),
                  lr=lambda it: 1e-2, evaluate=lambda: {"val_loss": nn.functional.mse_loss(model.net(x), y).item()},
                  checkpoint_info=lambda it: {"samples": it * 32})
    cfg = LoopConfig(out=out, max_iters=40, end=end, log_every=5, eval_every=20, save_every=10, keep_last=2,
                     grad_clip=1.0, units_per_iter=32, unit="samples", milestones={10}, name="test")
    return train_loop(cfg, hooks, model, model, opt, start, dist, torch.float32), model


def test_any_model_trains_checkpoints_and_resumes_bit_identically(tmp_path):
    summary, whole = _run(tmp_path / "whole", 40)
    assert summary["status"] == "finished" and summary["iter"] == 40
    metrics = [json.loads(line) for line in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[0]["iter"] == 0 and metrics[-1]["val_loss"] < 0.5 * metrics[0]["val_loss"]   # it learns
    assert {"samples", "samples_per_s", "train_loss"} <= set(metrics[-1])
    kept = [it for it, _ in checkpoint.list_checkpoints(tmp_path / "whole")]
    assert kept == [10, 30, 40]                        # the newest two and the milestone
    info = checkpoint.read_info(tmp_path / "whole")
    assert info["arch"] == "test-regressor" and info["model"] == {"width": 8} and info["samples"] == 40 * 32

    assert _run(tmp_path / "cut", 20)[0]["status"] == "stopped"
    _, resumed = _run(tmp_path / "cut", 40, start_from=checkpoint.resolve(tmp_path / "cut"))
    for a, b in zip(whole.parameters(), resumed.parameters()):
        assert torch.equal(a, b)
    lines = lambda p: [{k: v for k, v in json.loads(line).items() if k not in ("samples_per_s", "mfu")}  # noqa: E731
                       for line in (p / "metrics.jsonl").read_text().splitlines()]
    assert lines(tmp_path / "cut") == lines(tmp_path / "whole")
