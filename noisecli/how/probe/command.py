"""`noisecli probe`: fit linear or MLP heads on frozen features, optionally with Local Gradient Matching.

For each features folder × head × method (baseline, and the chosen regulariser), every point of the
grid lr × batch size is trained for every seed; the grid's models of one batch size are stacked into one
batched head (heads/) and trained together by a vectorised AdamW (train_heads.py), so the grid costs
little more than a single run. The setting with the best mean validation accuracy is chosen; its seeds give the test
accuracy mean ± std (sample std). Baseline and regulariser see identical batches: the order of samples
depends only on (seed, epoch), and δ comes from a generator of its own.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from noisecli.core.errors import InputError
from noisecli.core.manifest import check_output, read_manifest, staging_dir
from noisecli.core.options import SEED_DOWNSTREAM, as_dict, check_choices, device_opt, opt, seed_opt
from noisecli.core.progress import Reporter
from noisecli.core.stage import Stage, written
from noisecli.how.extract import read_split
from noisecli.how.probe.heads import HEADS
from noisecli.how.probe.regularisers import REGULARISERS
from noisecli.how.probe.results import show

if TYPE_CHECKING:
    import torch

RECIPES = {  # the paper's settings: NLU (its grid), vision (Appendix E.2.3)
    "nlu": dict(lr=[3e-4, 6e-4], batch_size=[8, 12, 16, 32], epochs=10, weight_decay=0.01),
    "vision": dict(lr=[1e-3], batch_size=[64], epochs=30, weight_decay=1e-4),
}
VISION_LINEAR = dict(lr=[0.1], weight_decay=0.0)   # a plain linear head on vision features


HELP = ("Fit linear or MLP heads on extracted features, optionally with Local Gradient Matching "
        "(L = L_ce + λ‖E∇ℓ(g(t)) − E∇ℓ(g(t+γδ))‖), with grid search and mean ± std over seeds.")   # `noisecli --help`


@dataclass
class ProbeConfig:
    features: list[Path] = opt([], "Feature folders written by `noisecli extract` (several fill one table).",
                               positional=True)
    out: Path = opt(Path("results/probe"), "Output folder: results.json/.csv/.md, grid.csv, plots.")
    head: list[str] = opt(["linear"], "Head(s), comma-separated (the README's table; one file each in "
                          "noisecli/how/probe/heads/).", choices=HEADS.names)
    lgm: bool = opt(False, "Add Local Gradient Matching runs beside the baseline (same as --reg lgm).")
    reg: list[str] = opt([], "Regulariser(s) trained beside the plain-CE baseline, comma-separated (the "
                         "README's table; the paper's Table 5 ablation is --reg l2,gradnorm,cosine,lgm).",
                         choices=REGULARISERS.names)
    gamma: list[float] = opt([0.01], "γ: perturbation scale, t̂ = t + γδ with δ ~ N(0, I); several values "
                             "grid with --lam, each (γ, λ) reported as its own row (the paper's Table 6).")
    lam: list[float] = opt([0.15], "λ: weight of the regulariser, L = L_ce + λ·L_reg; several like --gamma.")
    select_gamma_lam: bool = opt(False, "Choose (γ, λ) from the --gamma × --lam grid by validation accuracy, "
                                 "like lr and batch size (the paper's Table 2, E.1.3), instead of one row per "
                                 "pair (Table 6).")
    recipe: str = opt("auto", "nlu (lr {3e-4, 6e-4} × batch {8, 12, 16, 32}, 10 epochs, wd 0.01), vision "
                      "(30 epochs; linear lr 0.1 no wd; MLP or regularised lr 1e-3 wd 1e-4; batch 64), or "
                      "auto (by the features' modality).", choices=["auto", *RECIPES])
    lr: list[float] = opt([], "Learning rates to search, comma-separated (default: the recipe's).")
    batch_size: list[int] = opt([], "Batch sizes to search, comma-separated (default: the recipe's).")
    epochs: int | None = opt(None, "Epochs (default: the recipe's); cosine schedule to 0, AdamW.")
    weight_decay: float | None = opt(None, "AdamW weight decay (default: the recipe's).")
    seeds: int = opt(5, "Seeds per setting: test accuracy is reported as mean ± std over them.")
    seed: int = seed_opt(SEED_DOWNSTREAM, "the first run (seeds are seed, seed+1, ...)")
    plot_sensitivity: bool = opt(False, "Draw the paper's Figure 6: decision regions of the head on a random "
                                 "2-D plane of perturbations around one test sample, for none / L2 / LGM.")
    device: str = device_opt()


@dataclass
class Features:
    name: str
    backbone: str
    task: str
    classes: int
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)
    modality: str = "text"


def _positive(values: list, what: str) -> list:
    if any(not (v > 0 and math.isfinite(v)) for v in values):
        raise InputError(f"{what} values must be positive and finite, got {', '.join(map(str, values))}")
    return values


def gamma_lambda(cfg) -> list[tuple[float, float]]:
    """Every (γ, λ) of the --gamma × --lam grid (non-negative, finite)."""
    for what, values in (("--gamma", cfg.gamma), ("--lam", cfg.lam)):
        if not values or any(not (v >= 0 and math.isfinite(v)) for v in values):
            raise InputError(f"{what} values must be finite and non-negative, got {', '.join(map(str, values))}")
    return [(g, lam) for g in cfg.gamma for lam in cfg.lam]


def load_features(folder: Path, seed: int = 0) -> Features:
    """A features folder, checked: labels match features, finite values, one dimension, labels in range."""
    import torch
    folder = Path(folder)
    if not (folder / "train.safetensors").is_file():
        raise InputError(f"{folder} has no train split (train.safetensors); run `noisecli extract` first")
    from noisecli.how.extract import ExtractManifest
    manifest = read_manifest(folder / "extract.json", schema=ExtractManifest) if (folder / "extract.json").is_file() else {}
    splits = {}
    for split in ("train", "val", "test"):
        path = folder / f"{split}.safetensors"
        if not path.is_file():
            continue
        x, y, _ = read_split(path)
        if x.dim() != 2 or y.dim() != 1:
            raise InputError(f"{path}: features must be [N, d] and labels [N]")
        if len(x) != len(y):
            raise InputError(f"{path}: {len(x)} feature rows but {len(y)} labels")
        if not torch.isfinite(x.float()).all():
            raise InputError(f"{path}: features contain NaN or inf")
        splits[split] = (x.float(), y.long())
    dims = {k: v[0].shape[1] for k, v in splits.items()}
    if len(set(dims.values())) > 1:
        raise InputError(f"{folder}: feature dimensions differ between splits ({dims})")
    if "test" not in splits:
        raise InputError(f"{folder} has no test split (test.safetensors)")
    classes = manifest.get("num_classes") or int(max(int(v[1].max()) for v in splits.values())) + 1
    for split, (_, y) in splits.items():
        if int(y.min()) < 0 or int(y.max()) >= classes:
            bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
            raise InputError(f"{folder}/{split}.safetensors: label {bad} is outside the {classes} classes")
    if "val" not in splits:  # 10 % of train, seeded
        x, y = splits["train"]
        if len(y) < 10:
            raise InputError(f"{folder}: {len(y)} training samples are too few to split off a validation set")
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        k = max(1, len(y) // 10)
        splits["val"], splits["train"] = (x[order[:k]], y[order[:k]]), (x[order[k:]], y[order[k:]])
    return Features(folder.name, _short_name(manifest.get("backbone", folder.name)),
                    manifest.get("task", folder.name), classes, splits, manifest.get("modality", "text"))


def _short_name(backbone: str) -> str:
    """A table label: gpt:RUN@ITER for our checkpoints, kind:NAME for the others."""
    kind, _, name = backbone.partition(":")
    path = Path(name)
    if kind == "gpt" and path.parent.name == "checkpoints" and path.name.startswith("iter_"):
        return f"gpt:{path.parent.parent.name}@{int(path.name[5:])}"
    return f"{kind}:{path.name}" if name else backbone


def _settings(cfg: ProbeConfig, modality: str, kind: str, reg: str) -> dict:
    recipe = cfg.recipe if cfg.recipe != "auto" else ("vision" if modality == "image" else "nlu")
    if recipe not in RECIPES:
        raise InputError(f"--recipe must be nlu, vision or auto, not '{cfg.recipe}'")
    s = dict(RECIPES[recipe], recipe=recipe)
    if recipe == "vision" and kind == "linear" and reg == "none":
        s.update(VISION_LINEAR)
    if cfg.lr:
        s["lr"] = _positive(list(cfg.lr), "--lr")
    if cfg.batch_size:
        s["batch_size"] = _positive([int(b) for b in cfg.batch_size], "--batch-size")
    if cfg.epochs is not None:
        s["epochs"] = cfg.epochs
    if cfg.weight_decay is not None:
        s["weight_decay"] = cfg.weight_decay
    return s


def _check(cfg: ProbeConfig) -> tuple[list[str], list[str]]:
    if not cfg.features:
        raise InputError("give at least one FEATURES_DIR (written by `noisecli extract`)")
    check_choices(cfg)
    heads = list(dict.fromkeys(cfg.head))
    if not heads:
        raise InputError("--head: give at least one head")
    regs = [r for r in cfg.reg if r != "none"]
    if cfg.lgm and "lgm" not in regs:
        regs.append("lgm")
    gamma_lambda(cfg)
    return heads, ["none"] + list(dict.fromkeys(regs))


def fit(feats: Features, kind: str, reg: str, cfg: ProbeConfig, device: torch.device,
        progress: Reporter | None = None, gamma: float | None = None, lam: float | None = None) -> dict:
    """Grid search then seeds for one features × head × method (at one γ, λ: by default the first of
    --gamma × --lam). Returns the chosen setting's row and the whole grid."""
    from noisecli.how.probe.heads import make_head
    from noisecli.how.probe.train_heads import accuracy, diverged, train_heads
    if gamma is None or lam is None:
        gamma, lam = gamma_lambda(cfg)[0]
    s = _settings(cfg, feats.modality, kind, reg)
    seeds = list(range(cfg.seed, cfg.seed + cfg.seeds))
    (xtr, ytr), (xva, yva), (xte, yte) = ((a.to(device), b.to(device)) for a, b in
                                          (feats.splits[k] for k in ("train", "val", "test")))
    grid, t0 = [], time.perf_counter()
    for bs in s["batch_size"]:
        head = train_heads(xtr, ytr, kind, feats.classes, s["lr"], seeds, bs, s["epochs"], s["weight_decay"],
                           reg, gamma, lam, progress)
        val, test = (accuracy(head, a, b).view(len(seeds), -1).T for a, b in ((xva, yva), (xte, yte)))  # [lr, seed]
        untrained = make_head(kind, xtr.shape[1], feats.classes, [sd for sd in seeds for _ in s["lr"]]).to(device)
        finite = diverged(head, untrained, xtr, ytr).view(len(seeds), -1).T.logical_not()                   # [lr, seed]
        for i, lr in enumerate(s["lr"]):
            grid.append({"lr": lr, "batch_size": bs, "val_acc": val[i].tolist(), "test_acc": test[i].tolist(),
                         "diverged": not bool(finite[i].all())})
    usable = [g for g in grid if not g["diverged"]]
    if not usable:
        raise InputError(f"every {kind} head diverged (non-finite weights, or a training loss above the untrained "
                         f"head's) at lr {', '.join(map(str, s['lr']))}: lower --lr (or --lam)")
    best = max(usable, key=lambda g: float(np.mean(g["val_acc"])))
    test = np.array(best["test_acc"]) * 100
    row = {"backbone": feats.backbone, "task": feats.task, "features": feats.name, "head": kind,
           "method": "baseline" if reg == "none" else reg, "lr": best["lr"], "batch_size": best["batch_size"],
           "epochs": s["epochs"], "weight_decay": s["weight_decay"], "recipe": s["recipe"],
           "gamma": gamma if reg != "none" else None, "lam": lam if reg != "none" else None,
           "seeds": len(seeds), "val_acc": float(np.mean(best["val_acc"]) * 100),
           "test_acc": float(test.mean()), "test_std": float(test.std(ddof=1)) if len(test) > 1 else 0.0,
           "test_acc_per_seed": test.tolist(), "seed_list": seeds,   # same seed: same init and batch order
           "variant": None,                                           # "γ=…, λ=…" in a (γ, λ) grid
           "train_samples": len(ytr), "seconds": round(time.perf_counter() - t0, 2)}
    return {"row": row, "grid": [{**{k: row[k] for k in ("features", "head", "method", "gamma", "lam")}, **g}
                                 for g in grid]}


def sensitivity_maps(feats: Features, kind: str, rows: list[dict], cfg: ProbeConfig, device: torch.device,
                     n: int = 121) -> dict:
    """The paper's Figure 6: one seed-`cfg.seed` head per method (none, l2, lgm) trained with the baseline's
    chosen lr and batch size, its predicted class over t + a·u + b·v for a random orthonormal pair (u, v)
    scaled to the sample's norm, |a|, |b| ≤ radius = 0.5."""
    import torch

    from noisecli.how.probe.train_heads import predict_plane, train_heads
    base = next(r for r in rows if r["features"] == feats.name and r["head"] == kind and r["method"] == "baseline")
    s = _settings(cfg, feats.modality, kind, "none")
    (xtr, ytr), (xte, yte) = ((a.to(device), b.to(device)) for a, b in (feats.splits["train"], feats.splits["test"]))
    g = torch.Generator().manual_seed(cfg.seed)
    sample = int(torch.randint(len(yte), (1,), generator=g))
    q, _ = torch.linalg.qr(torch.randn(xte.shape[1], 2, generator=g, dtype=torch.float64))
    scale = xte[sample].norm()
    u, v = (q[:, i].float().to(device) * scale for i in range(2))
    maps = {}
    gamma, lam = gamma_lambda(cfg)[0]
    for reg in ("none", "l2", "lgm"):
        head = train_heads(xtr, ytr, kind, feats.classes, [base["lr"]], [cfg.seed], base["batch_size"],
                           s["epochs"], s["weight_decay"], reg, gamma, lam)
        maps[reg] = predict_plane(head, xte[sample], u, v, 0.5, n)
    return {"maps": maps, "sample": sample, "label": int(yte[sample]), "radius": 0.5}


def _steps(feats: list[Features], heads: list[str], methods: list[str], cfg: ProbeConfig) -> int:
    total = 0
    for f in feats:
        for h in heads:
            for m in methods:
                s = _settings(cfg, f.modality, h, m)
                total += sum(math.ceil(len(f.splits["train"][1]) / b) * s["epochs"] for b in s["batch_size"]) * (
                    1 if m == "none" else len(gamma_lambda(cfg)))
    return total


def probe(cfg: ProbeConfig) -> dict:
    """Fit every features folder × head × method; write results.{json,csv,md} and grid.csv to cfg.out."""
    from noisecli.core import plots, tables
    from noisecli.how.probe.results import write_probe_tables
    from noisecli.training.distributed import pick_device
    heads, methods = _check(cfg)
    check_output(cfg.out)
    device = pick_device(cfg.device)
    feats = [load_features(Path(f), cfg.seed) for f in cfg.features]
    pairs = [(f.backbone, f.task) for f in feats]
    for f in feats:  # two folders with the same backbone and task: label their rows by folder instead
        if pairs.count((f.backbone, f.task)) > 1:
            f.backbone = f.name
    for f in feats:  # settings errors before any work
        for h in heads:
            for m in methods:
                _settings(cfg, f.modality, h, m)
    rows, grid, grid_gl = [], [], gamma_lambda(cfg)
    t0 = time.perf_counter()
    with Reporter("probe", total=_steps(feats, heads, methods, cfg), unit="steps") as bar:
        for f in feats:
            for h in heads:
                for m in methods:
                    fits = [fit(f, h, m, cfg, device, bar, gamma, lam)
                            for gamma, lam in ([(None, None)] if m == "none" else grid_gl)]
                    for fitted in fits:
                        grid += fitted["grid"]
                    if cfg.select_gamma_lam:   # Table 2: the (γ, λ) with the best validation accuracy
                        fits = [max(fits, key=lambda x: x["row"]["val_acc"])]
                    elif m != "none" and len(grid_gl) > 1:   # Table 6: one row per (γ, λ)
                        for fitted in fits:
                            fitted["row"]["variant"] = f"γ={fitted['row']['gamma']:g}, λ={fitted['row']['lam']:g}"
                    rows += [fitted["row"] for fitted in fits]
    result = {"rows": rows, "config": as_dict(cfg), "elapsed_s": round(time.perf_counter() - t0, 2),
              "std": "sample standard deviation (ddof=1) of test accuracy over seeds, in %",
              "selection": "grid point with the best mean validation accuracy over seeds"
                           + (" (lr × batch size × (γ, λ))" if cfg.select_gamma_lam else "")}
    out = Path(cfg.out)
    with staging_dir(out) as tmp:
        tables.write_table(tmp / "grid", [{**g, "val_acc": np.mean(g["val_acc"]), "test_acc": np.mean(g["test_acc"])}
                                          for g in grid], {"grid": grid})
        if cfg.plot_sensitivity:
            maps = sensitivity_maps(feats[0], heads[0], rows, cfg, device)
            plots.decision_regions(maps, feats[0], heads[0], tmp / "sensitivity.png")
            result["sensitivity"] = {"plot": "sensitivity.png", "sample": maps["sample"], "radius": maps["radius"]}
        write_probe_tables(tmp, rows, result)
    result["out"] = str(out)
    return result


STAGE = Stage("probe", ProbeConfig, probe, HELP, done=written("results.json"), show=show)
