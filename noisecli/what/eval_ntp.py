"""`noisecli eval-ntp`: the exact next-token loss of checkpoints on token files (the paper's Figures 2-4).

Every token of a file is scored (what/scoring.py: non-overlapping windows of context+1 tokens, each
window's first token not predicted). The loss is the mean negative log-likelihood over all predicted
tokens — not a random-batch estimate — and the count of predicted tokens is reported beside it. With a
clean --baseline run, each row gets its difference to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, StrictInt

from noisecli.core.errors import InputError
from noisecli.core.manifest import Record, check_output, provenance, read_manifest, staging_dir
from noisecli.core.options import check_choices, device_opt, dtype_opt, opt
from noisecli.core.progress import Reporter
from noisecli.core.stage import Stage, written
from noisecli.core.tables import write_table
from noisecli.training import checkpoint
from noisecli.what.token_files import open_tokens, read_meta
from noisecli.what.tokenizer import VOCAB_SIZE

if TYPE_CHECKING:
    import torch


class EvalRow(Record):
    """One row of results.json: a checkpoint's loss on one file (what the report and the findings read)."""
    run: str
    iter: StrictInt = Field(ge=0)
    dataset: str
    loss: float
    alpha: float | None = None


class EvalResults(Record):
    """results.json, as `reproduce`'s theory step, its findings and its report read it back."""
    rows: list[EvalRow]
    baseline_rows: list[EvalRow] = []


HELP = ("Exact next-token loss of checkpoints on token files (clean validation, the noise, other corpora), "
        "with differences to a clean baseline run and the paper's Figures 2-4.")   # `noisecli --help`


@dataclass
class EvalNtpConfig:
    checkpoints: list[Path] = opt([], "Checkpoint folders or run folders (a run folder means every checkpoint "
                                  "in it, by iteration), or hf:PATH_OR_ID: a transformers causal LM with GPT-2's "
                                  "tokenizer (an `export`ed checkpoint, public gpt2), scored the same way.",
                                  positional=True)
    data: list[Path] = opt([], "Token files to score (repeat the flag): a prepared folder means its val.bin; "
                          "a .bin file (e.g. DIR/noise.bin for the loss on the noise) is used as is.")
    out: Path = opt(Path("results/eval-ntp"), "Output folder: results.json, results.csv, figures.")
    baseline: Path | None = opt(None, "A clean run (α = 0): adds each row's difference to it at the same "
                                "iteration, and at the same number of clean tokens seen.")
    max_tokens: int | None = opt(None, "Score at most this many tokens of each file (its first ones).")
    batch_size: int = opt(8, "Windows per forward pass.")
    device: str = device_opt()
    dtype: str = dtype_opt()
    plot: bool = opt(False, "Write the paper's figures as PNGs (2a, 2b, 2c, 3a, 4) into --out.")
    final_only: list[Path] = opt([], "Token files scored only at each run's newest checkpoint (repeat the flag), "
                                "e.g. Figure 4's other corpora, which no curve over training needs.")
    own_noise_only: bool = opt(False, "Score a dataset's noise.bin only with the runs trained on that dataset "
                               "(the --baseline still scores every noise, as k needs): Figure 3's pairs, "
                               "without the cross pairs nothing reads.")


def is_hf(spec) -> bool:
    """`hf:PATH_OR_ID`: a transformers causal LM (what/hf_lm.py) instead of one of our checkpoints."""
    return str(spec).startswith("hf:")


def _checkpoints(spec: Path) -> list[Path]:
    if is_hf(spec):
        return [spec]
    if checkpoint.manifest(spec).is_file():
        return [spec]
    found = [p for _, p in checkpoint.list_checkpoints(spec)]
    if not found:
        raise InputError(f"{spec} is neither a checkpoint nor a run folder with checkpoints")
    return found


def _token_file(spec: str) -> tuple[str, Path]:
    path = Path(spec)
    if path.is_dir():
        return f"{path.name}/val", path / "val.bin"
    return f"{path.parent.name}/{path.stem}", path


def _run_info(ckpt: Path) -> dict:
    if is_hf(ckpt):
        return {}
    run_json = ckpt.parent.parent / "run.json"
    from noisecli.what.pretrain import RunManifest
    return read_manifest(run_json, schema=RunManifest) if run_json.is_file() else {}


CALIBRATION = ("a run with noise α at iteration i has seen (1−α)·i·tokens_per_iter clean tokens, which "
               "the clean baseline saw at iteration (1−α)·i; the baseline's loss there is interpolated "
               "linearly between its two nearest checkpoints (left empty outside their range)")


def _baseline_diffs(rows: list[dict], baseline_rows: list[dict]) -> None:
    """diff_same_iter: loss − the baseline's loss at the same iteration; diff_calibrated: loss − the
    baseline's loss at the same number of clean tokens seen (see CALIBRATION)."""
    for row in rows:
        base = sorted((b["iter"], b["loss"]) for b in baseline_rows if b["dataset"] == row["dataset"])
        same = dict(base).get(row["iter"])
        row["diff_same_iter"] = row["loss"] - same if same is not None else None
        target = (1 - (row["alpha"] or 0)) * row["iter"]
        its = [b[0] for b in base]
        if base and its[0] <= target <= its[-1]:
            row["baseline_iter_calibrated"] = target
            row["diff_calibrated"] = row["loss"] - float(np.interp(target, its, [b[1] for b in base]))
        else:
            row["baseline_iter_calibrated"] = row["diff_calibrated"] = None


@dataclass
class TokenFile:
    label: str
    path: Path
    tokens: np.ndarray     # the scored part (the first --max-tokens tokens)
    capped: bool
    max_id: int            # largest id in the scored part
    vocab: int | None      # the vocabulary its meta.json declares, if any


def _open_files(specs: list[str], max_tokens: int | None) -> list[TokenFile]:
    """Open, check and scan each token file once (missing, empty, malformed: fail before any work)."""
    files = []
    for spec in specs:
        label, path = _token_file(spec)
        tokens = open_tokens(path, check_ids=False)
        part = tokens[:max_tokens] if max_tokens else tokens
        meta = path.parent / "meta.json"
        vocab = read_meta(path.parent)["vocab_size"] if meta.is_file() else None
        files.append(TokenFile(label, path, part, len(part) < len(tokens), int(part.max()), vocab))
    return files


def _check_vocabulary(ckpt: Path, files: list[TokenFile]) -> None:
    if is_hf(ckpt):
        return   # its tokenizer is checked against GPT-2's when it loads
    from noisecli.what.architectures import pretrained_info
    vocab = min(pretrained_info(ckpt)["model"]["vocab_size"], VOCAB_SIZE)   # GPT-2's, not the padded size
    for f in files:
        if f.vocab is not None and f.vocab > vocab:
            raise InputError(f"{f.path} comes from a vocabulary of {f.vocab} tokens but {ckpt} has {vocab}")
        if f.max_id >= vocab:
            raise InputError(f"{f.path} holds id {f.max_id}, outside the vocabulary of {ckpt} ({vocab})")


def _is_own_noise(run: dict, path: Path) -> bool:
    """Whether `path` is the noise.bin of the dataset the run was trained on (Figure 3 plots only these)."""
    data = run.get("data")
    return path.name == "noise.bin" and data is not None and Path(data).resolve() == path.parent.resolve()


@dataclass
class Selection:
    """Which files each checkpoint scores: all of them, less other runs' noise (`own_noise_only`) and, except
    at a run's newest checkpoint, the `final_only` files."""
    own_noise_only: bool = False
    final_only: frozenset = frozenset()   # paths
    newest: frozenset = frozenset()       # checkpoint folders that are their run's newest

    def files_for(self, ckpt: Path, files: list[TokenFile]) -> list[TokenFile]:
        run = _run_info(ckpt)
        return [f for f in files
                if (not self.own_noise_only or f.path.name != "noise.bin" or _is_own_noise(run, f.path))
                and (f.path not in self.final_only or ckpt in self.newest)]


def evaluate_checkpoints(ckpts: list[Path], files: list[TokenFile], batch_size: int, device: torch.device,
                         dtype: torch.dtype, progress: Reporter, windows: dict | None = None,
                         select: Selection | None = None) -> list[dict]:
    """One row per checkpoint × file (as `select` chooses, by default every file);
    `windows` (if given) gets each row's per-window NLL sums and counts under the key "run|iter|dataset"."""
    from noisecli.what import hf_lm
    from noisecli.what.architectures import architecture, load_model
    from noisecli.what.scoring import window_losses
    select = select or Selection()
    rows = []
    for ckpt in ckpts:
        model, info = hf_lm.load(str(ckpt), device) if is_hf(ckpt) else load_model(ckpt, device)
        run = _run_info(ckpt)
        name = str(ckpt) if is_hf(ckpt) else ckpt.parent.parent.name
        arch = architecture("gpt" if is_hf(ckpt) else info.get("arch", "gpt"))   # a causal LM is scored as GPT is
        for f in select.files_for(ckpt, files):
            sums, counts = window_losses(model, f.tokens, batch_size, device, dtype, progress, arch)
            loss, count = float(sums.sum() / counts.sum()), int(counts.sum())
            if windows is not None:
                windows[f"{name}|{info['iter']}|{f.label}"] = np.stack([sums, counts]).T
            rows.append({"run": name, "alpha": run.get("alpha", info.get("alpha")),
                         "dist": run.get("noise"), "iter": info["iter"], "tokens_seen": info.get("tokens"),
                         "dataset": f.label, "loss": loss, "tokens": count, "capped": f.capped,
                         "own_noise": _is_own_noise(run, f.path),
                         "objective": arch.objective,
                         "checkpoint": str(ckpt)})
    return rows


def eval_ntp(cfg: EvalNtpConfig) -> dict:
    """Score every checkpoint on every file; write results.{json,csv}, windows.safetensors (and figures)."""
    from noisecli.training.distributed import pick_device
    from noisecli.training.steps import resolve_dtype
    if not cfg.checkpoints:
        raise InputError("give at least one checkpoint or run folder")
    if not cfg.data:
        raise InputError("give at least one --data token file or prepared folder")
    if cfg.max_tokens is not None and cfg.max_tokens < 2:
        raise InputError("--max-tokens must be >= 2")
    check_choices(cfg)   # choices, and every number within its name's limits
    check_output(cfg.out)
    found = [_checkpoints(Path(spec)) for spec in cfg.checkpoints]
    ckpts = [c for cs in found for c in cs]
    base_ckpts = _checkpoints(Path(cfg.baseline)) if cfg.baseline else []
    if base_ckpts and (_run_info(base_ckpts[-1]).get("alpha") or 0) > 0:
        from noisecli.core.errors import warn
        warn(f"--baseline {cfg.baseline} was trained with noise (α = {_run_info(base_ckpts[-1])['alpha']}): the "
             "differences to it are not differences to a clean model")
    files = _open_files(cfg.data + cfg.final_only, cfg.max_tokens)
    newest = frozenset(cs[-1] for cs in found + ([base_ckpts] if base_ckpts else []))
    final_only = frozenset(f.path for f in files[len(cfg.data):])
    select, base_select = Selection(cfg.own_noise_only, final_only, newest), Selection(False, final_only, newest)
    for ckpt in ckpts + base_ckpts:
        _check_vocabulary(ckpt, files)
    device = pick_device(cfg.device)
    dtype = resolve_dtype(cfg.dtype, device)
    total = sum(len(f.tokens) for c in ckpts for f in select.files_for(c, files)) + \
        sum(len(f.tokens) for c in base_ckpts for f in base_select.files_for(c, files))
    with Reporter("eval-ntp", total=total, unit="tokens") as progress:
        windows: dict = {}
        rows = evaluate_checkpoints(ckpts, files, cfg.batch_size, device, dtype, progress, windows, select)
        base_rows = evaluate_checkpoints(base_ckpts, files, cfg.batch_size, device, dtype, progress, windows,
                                         base_select)
    if base_rows:
        _baseline_diffs(rows, base_rows)
    result = {"rows": rows, "baseline_rows": base_rows,
              "method": "mean NLL over every token of each file in non-overlapping windows of context+1 "
                        "tokens; each window's first token is not predicted and not counted",
              "method_mlm": "rows with objective 'mlm' (BERT): mean masked-LM loss in non-overlapping windows "
                            "of context tokens, each with the fixed seeded mask of its index (15 % selected; "
                            "80 % [MASK], 10 % random, 10 % kept), counted at the selected positions",
              "calibration": CALIBRATION if base_rows else None, "own_noise_only": cfg.own_noise_only,
              "final_only": [str(f.path) for f in files[len(cfg.data):]],
              "max_tokens": cfg.max_tokens, **provenance()}
    out = Path(cfg.out)
    with staging_dir(out) as tmp:
        if cfg.plot:
            from noisecli.what.figures import ntp_figures
            result["figures"] = ntp_figures(rows, base_rows, tmp)
        write_table(tmp / "results", rows + base_rows, result)
        from safetensors.numpy import save_file
        save_file({k: np.ascontiguousarray(v, dtype=np.float64) for k, v in windows.items()}, tmp / "windows.safetensors",
                  metadata={"what": "per row 'run|iter|dataset': [windows, 2] = (summed NLL, predicted tokens) "
                                    "of each scored window, in file order; for bootstrap intervals"})
    result["out"] = str(out)
    return result


def show(cfg: EvalNtpConfig, result: dict) -> None:
    """The command's table: every row's loss, and the differences to the baseline."""
    from rich.table import Table

    from noisecli.core.tables import console
    rows = result["rows"] + result["baseline_rows"]
    table = Table(title=f"next-token loss  ({result['out']}/results.json, results.csv)")
    cols = ["run", "α", "dist", "iter", "dataset", "loss", "tokens"]
    diffs = any("diff_same_iter" in r for r in rows)
    cols += ["Δ same iter", "Δ same clean tokens"] if diffs else []
    for c in cols:
        table.add_column(c, justify="left" if c in ("run", "dist", "dataset") else "right")
    for r in rows:
        cells = [r["run"], str(r["alpha"]), str(r["dist"]), f"{r['iter']:,}", r["dataset"], f"{r['loss']:.4f}",
                 f"{r['tokens']:,}" + (" (capped)" if r["capped"] else "")]
        if diffs:
            cells += [f"{r[k]:+.4f}" if r.get(k) is not None else "" for k in ("diff_same_iter", "diff_calibrated")]
        table.add_row(*cells)
    console.print(table)
    console.print(result["method"] + ".")
    if any(r.get("objective") == "mlm" for r in result["rows"] + result["baseline_rows"]):
        console.print(result["method_mlm"] + ".")


STAGE = Stage("eval-ntp", EvalNtpConfig, eval_ntp, HELP, done=written("results.json"), show=show)
