"""What the report's findings read (paper/findings/): eval-ntp's losses and per-window losses at every
checkpoint, the clean data's unigram cross-entropy on the very tokens the clean models were scored on, and
the clean configuration's training seeds, whose spread every comparison is held to.

Comparisons (`compare`) are against the mean of the clean seeds, window by window, in two ways:
- at the same iteration (the paper's §3.2 comparison);
- at the same number of clean tokens seen ("calibrated", Figure 2(c)): a run with noise α at iteration i
  has seen (1−α)·i iterations' worth of clean tokens, so each clean seed's window losses are interpolated
  linearly to iteration (1−α)·i between its two nearest checkpoints. The loss curve is convex in the
  iteration, so the interpolated clean loss lies above the true one and the calibrated rise is biased
  low, by at most the curve's bend between two checkpoints (the report says so).
Each has a 95 % interval that holds both the scored windows (paired bootstrap) and the training seeds: a
t-interval with the clean seeds' standard deviation, assuming a noisy run's seed varies as much as a clean
one's (stats.seed_half_width), the two added in quadrature (stats.combine).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from noisecli.core import stats
from noisecli.core.manifest import read_manifest
from noisecli.paper.plan import CLEAN_SEEDS
from noisecli.what.eval_ntp import EvalResults
from noisecli.what.pretrain import RunManifest

MARGIN = 1.0          # nats below the unigram cross-entropy before any finding is decided
OVERFIT = 0.02        # nats: the clean run's last validation loss above its minimum over checkpoints


def load_json(path: Path, schema: type) -> dict | None:
    """A stage's JSON output checked against its schema (declared beside the stage that writes it), or None where
    it does not exist (a stage that did not run); a damaged file is one line naming the file and the field."""
    return read_manifest(path, schema=schema) if path.is_file() else None


class Evidence:
    """What the findings read. `evaluation` is eval-ntp's folder, `clean` the clean run (eval-ntp's
    baseline) and `seeds` the clean configuration's other seeds (GPT-2's by default; Table 9's BERT runs
    have their own)."""

    def __init__(self, out: Path, evaluation: str = "eval", clean: str = "clean",
                 seeds: tuple[str, ...] = tuple(CLEAN_SEEDS)):
        self.out, self.clean_run = Path(out), clean
        self.ev = load_json(self.out / evaluation / "results.json", EvalResults)
        self.windows = {}
        if (self.out / evaluation / "windows.safetensors").is_file():
            from safetensors.numpy import load_file
            self.windows = load_file(self.out / evaluation / "windows.safetensors")
        rows = (self.ev or {}).get("rows", []) + (self.ev or {}).get("baseline_rows", [])
        self.table = {(r["run"], r["iter"], r["dataset"]): r for r in rows}
        self.iters: dict[str, list[int]] = {}
        for r in rows:
            self.iters.setdefault(r["run"], [])
            if r["iter"] not in self.iters[r["run"]]:
                self.iters[r["run"]].append(r["iter"])
        for its in self.iters.values():
            its.sort()
        self.runs = {r["run"]: r for r in rows}
        self.clean_seeds = [clean] + [s for s in seeds if s in self.runs] if clean in self.runs else []
        self.unigram = self._unigram()
        self.margins = {s: self.unigram - self.loss(s, "clean/val") for s in self.clean_seeds
                        if self.unigram is not None and self.loss(s, "clean/val") is not None}
        self.clean_loss = self.loss(clean, "clean/val")
        self.margin = min(self.margins.values()) if self.margins else None   # the worst clean seed's
        self.decidable = self.margin is not None and self.margin >= MARGIN
        self.epochs = self._epochs()

    # ------------------------------------------------------------------ reading
    def last(self, run: str) -> int | None:
        return self.iters[run][-1] if run in self.iters else None

    def loss(self, run: str, dataset: str, it: int | None = None) -> float | None:
        r = self.table.get((run, self.last(run) if it is None else it, dataset))
        return r["loss"] if r else None

    def w(self, run: str, dataset: str, it: int | None = None) -> np.ndarray | None:
        return self.windows.get(f"{run}|{self.last(run) if it is None else it}|{dataset}")

    def alpha(self, run: str) -> float:
        return float(self.runs[run].get("alpha") or 0.0)

    def _unigram(self) -> float | None:
        """The unigram cross-entropy of exactly the clean validation tokens the clean model was scored on
        (eval-ntp's windows of the first --max-tokens tokens): the same tokens on both sides of the margin.
        For a BERT those are the masked positions of the same fixed masks."""
        from noisecli.what.architectures import architecture
        from noisecli.what.token_files import token_counts
        folder, w = self.out / "data" / "clean", self.w(self.clean_run, "clean/val")
        run = load_json(self.out / "runs" / self.clean_run / "run.json", RunManifest)
        if not (folder / "train.bin").is_file() or w is None or run is None:
            return None
        train = token_counts(folder / "train.bin")
        val = np.memmap(folder / "val.bin", dtype=np.uint16, mode="r")
        scored = architecture(run.get("arch", "gpt")).scored_tokens(val[:self.ev.get("max_tokens") or len(val)],
                                                                    run["model"]["block_size"])
        return stats.unigram_cross_entropy(train, np.bincount(scored, minlength=len(train)))

    def _epochs(self) -> float | None:
        """Epochs of the clean training data the clean run saw by its last evaluated checkpoint."""
        run = load_json(self.out / "runs" / self.clean_run / "run.json", RunManifest)
        train = self.out / "data" / "clean" / "train.bin"
        if run is None or not train.is_file() or self.last(self.clean_run) is None:
            return None
        return self.last(self.clean_run) * run["tokens_per_iter"] / (train.stat().st_size // 2)

    def gate(self) -> str | None:
        """Why nothing can be decided, or None when every clean seed has learned enough."""
        if self.margin is None:
            return "the clean runs' validation losses or the unigram cross-entropy are missing"
        if not self.decidable:
            worst = min(self.margins, key=self.margins.get)
            where = f"only {self.margin:.2f} nats below" if self.margin >= 0 else f"{-self.margin:.2f} nats above"
            return (f"the clean model {worst} ({self.loss(worst, 'clean/val'):.3f} nats on the clean validation "
                    f"tokens) is {where} the unigram cross-entropy of those tokens ({self.unigram:.3f}); every clean "
                    f"seed must be at least {MARGIN:.1f} nat below before a model has learned anything about "
                    "context, which every mechanism of the paper needs (telling noise context from clean context, "
                    "p_c ≫ p_n, k ≫ 1)")
        return None

    def overfitting(self) -> dict | None:
        """The clean run's validation loss at its last checkpoint against its minimum over checkpoints: a run
        that trains past its best (several epochs of a small corpus) is `overfits` when it ends more than
        OVERFIT nats above it, and its findings then describe an over-trained model."""
        losses = [(it, self.loss(self.clean_run, "clean/val", it)) for it in self.iters.get(self.clean_run, [])]
        losses = [(it, x) for it, x in losses if x is not None]
        if len(losses) < 2:
            return None
        best = min(losses, key=lambda p: p[1])
        excess = losses[-1][1] - best[1]
        return {"last_iter": losses[-1][0], "last": losses[-1][1], "best_iter": best[0], "best": best[1],
                "excess": excess, "limit": OVERFIT, "overfits": excess > OVERFIT}

    # ------------------------------------------------------------------ the clean seeds
    def _clean_at(self, dataset: str, it: float) -> list[np.ndarray] | None:
        """Each clean seed's windows at iteration `it`, interpolated linearly between its two nearest
        checkpoints where `it` is none; None where a seed lacks them."""
        out = []
        for seed in self.clean_seeds:
            its = self.iters.get(seed, [])
            below, above = [i for i in its if i <= it], [i for i in its if i >= it]
            if not below or not above:
                return None
            a, b = self.w(seed, dataset, below[-1]), self.w(seed, dataset, above[0])
            if a is None or b is None:
                return None
            f = 0.0 if above[0] == below[-1] else (it - below[-1]) / (above[0] - below[-1])
            out.append(np.stack([a[:, 0] + f * (b[:, 0] - a[:, 0]), a[:, 1]], 1))
        return out or None

    def spread(self, dataset: str = "clean/val", it: float | None = None) -> tuple[float, int] | None:
        """(standard deviation over the clean seeds of their loss, its degrees of freedom) at iteration `it`
        (default: the clean run's last), or None with fewer than two seeds."""
        ws = self._clean_at(dataset, self.last(self.clean_run) if it is None else it)
        if ws is None or len(ws) < 2:
            return None
        losses = [w[:, 0].sum() / w[:, 1].sum() for w in ws]
        return float(np.std(losses, ddof=1)), len(losses) - 1

    # ------------------------------------------------------------------ comparisons
    def compare(self, run: str, dataset: str = "clean/val", it: int | None = None, calibrated: bool = False,
                seeds: int = 1) -> dict | None:
        """loss(run) − mean loss of the clean seeds on `dataset` at the run's iteration `it` (default: its
        last), or at the same clean tokens seen; with its window interval, its seed half-width and the
        interval that holds both. `seeds`: how many seeds `run`'s loss is a mean of. None where the
        windows are missing (or, calibrated, the clean checkpoints do not bracket (1−α)·it)."""
        it = self.last(run) if it is None else it
        a = self.w(run, dataset, it)
        target = (1 - self.alpha(run)) * it if calibrated else it
        clean = self._clean_at(dataset, target) if a is not None else None
        if clean is None or any(c.shape != a.shape for c in clean):
            return None
        mean = np.stack([np.mean([c[:, 0] for c in clean], 0), a[:, 1]], 1)
        d, lo, hi = stats.paired_difference(a, mean)
        spread = self.spread(dataset, target)
        seed_hw = None if spread is None else stats.seed_half_width(spread[0], spread[1], seeds, len(clean))
        tlo, thi = (lo, hi) if seed_hw is None else stats.combine(d, lo, hi, seed_hw)
        base = float(mean[:, 0].sum() / mean[:, 1].sum())
        return {"run": run, "dataset": dataset, "iter": it, "baseline_iter": target, "calibrated": calibrated,
                "alpha": self.alpha(run), "rise": d, "window_lo": lo, "window_hi": hi, "seed_half_width": seed_hw,
                "lo": tlo, "hi": thi, "baseline": base, "relative": d / base, "rel_lo": tlo / base,
                "rel_hi": thi / base, "seeds": seeds, "clean_seeds": len(clean), "seeds_known": seed_hw is not None}

    def trend(self, run: str) -> dict | None:
        """How the same-iteration gap changed from the run's first to its last checkpoint:
        (noisy − clean) at the last − (noisy − clean) at the first, paired over windows, with the clean
        seeds' spread of their own change as the seed term."""
        its = [i for i in self.iters.get(run, []) if self.w(run, "clean/val", i) is not None]
        if len(its) < 2:
            return None
        first, last = its[0], its[-1]
        c0, c1 = self._clean_at("clean/val", first), self._clean_at("clean/val", last)
        if c0 is None or c1 is None:
            return None
        terms = [(1.0, self.w(run, "clean/val", last)), (-1.0, self.w(run, "clean/val", first))]
        terms += [(-1.0 / len(c1), w) for w in c1] + [(1.0 / len(c0), w) for w in c0]
        d, lo, hi = stats.paired_contrast(terms)
        changes = [w1[:, 0].sum() / w1[:, 1].sum() - w0[:, 0].sum() / w0[:, 1].sum() for w0, w1 in zip(c0, c1)]
        seed_hw = (stats.seed_half_width(float(np.std(changes, ddof=1)), len(changes) - 1, 1, len(changes))
                   if len(changes) > 1 else None)
        tlo, thi = (lo, hi) if seed_hw is None else stats.combine(d, lo, hi, seed_hw)
        gaps = [self.compare(run, it=i) for i in its]
        return {"run": run, "first": first, "last": last, "change": d, "lo": tlo, "hi": thi,
                "seeds_known": seed_hw is not None, "gaps": [g for g in gaps if g is not None]}

    def between(self, a: str, b: str, dataset_a: str = "clean/val", dataset_b: str | None = None) -> dict | None:
        """loss(a) − loss(b) of two single-seed runs at their last checkpoints: paired over windows on one
        file (with the clean seeds' spread on it as the seed term, twice: each run is one seed), unpaired on
        two files (each run's own noise: no seed spread is measured there, so the interval is the windows'
        alone and says so)."""
        dataset_b = dataset_b or dataset_a
        wa, wb = self.w(a, dataset_a), self.w(b, dataset_b)
        if wa is None or wb is None:
            return None
        paired = dataset_a == dataset_b and wa.shape == wb.shape
        d, lo, hi = (stats.paired_difference if paired else stats.unpaired_difference)(wa, wb)
        spread = self.spread(dataset_a) if paired else None
        seed_hw = None if spread is None else stats.seed_half_width(spread[0], spread[1], 1, 1)
        tlo, thi = (lo, hi) if seed_hw is None else stats.combine(d, lo, hi, seed_hw)
        return {"a": a, "b": b, "dataset": dataset_a if paired else f"{dataset_a} vs {dataset_b}", "difference": d,
                "window_lo": lo, "window_hi": hi, "seed_half_width": seed_hw, "lo": tlo, "hi": thi,
                "seeds_known": seed_hw is not None}

    def k_interval(self, run: str) -> dict | None:
        """k at the run's last checkpoint (Appendix B.3, against the clean run) with a 95 % bootstrap interval
        over scored windows: the clean validation windows and the noise's windows resampled apart, each pair
        of models on the same windows. The training seeds are not in it (only one noisy seed is trained), and
        the share of replicates where k is undefined (the noisy model no better on the noise) is reported."""
        val = [self.w(run, "clean/val"), self.w(self.clean_run, "clean/val", self.last(run))]
        noise = [self.w(run, f"{run}/noise"), self.w(self.clean_run, f"{run}/noise", self.last(run))]
        if any(w is None for w in val + noise) or val[0].shape != val[1].shape or noise[0].shape != noise[1].shape:
            return None
        v, n = stats.paired_resamples(val, seed=1), stats.paired_resamples(noise, seed=2)
        eps = np.exp(-v[:, 1]) - np.exp(-v[:, 0])
        eps_k = np.exp(-n[:, 0]) - np.exp(-n[:, 1])
        k = np.where(eps_k > 0, eps / np.where(eps_k > 0, eps_k, 1.0), np.nan)
        defined = np.isfinite(k)
        lo, hi = stats.percentile_interval(k) if defined.sum() >= 20 else (None, None)
        return {"iter": self.last(run), "lo": lo, "hi": hi, "undefined_share": float(1 - defined.mean())}
