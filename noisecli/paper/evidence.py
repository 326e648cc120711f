"""What the report's findings read (paper/report.py): eval-ntp's final rows and per-window losses, the
clean data's unigram cross-entropy on the very tokens the clean model was scored on, and the clean
configuration's seed-to-seed difference, the noise floor every comparison is held to."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from noisecli.core import stats

MARGIN = 1.0          # nats below the unigram cross-entropy before any finding is decided
SEED2 = "clean-seed2"  # the clean configuration with another seed: the run-to-run noise floor


def load_json(path: Path) -> dict | None:
    """A JSON file's content, or None where it does not exist (a stage that did not run)."""
    return json.loads(path.read_text()) if path.is_file() else None


class Evidence:
    """What the findings read: eval-ntp's final rows and windows, the clean data, the noise parameters.
    `evaluation` is eval-ntp's folder, `clean` the clean run (its baseline) and `seed2` the clean
    configuration with another seed (GPT-2's by default; Table 9's BERT runs have their own)."""

    def __init__(self, out: Path, evaluation: str = "eval", clean: str = "clean", seed2: str = SEED2):
        self.out, self.clean_run, self.seed2 = out, clean, seed2
        self.ev = load_json(out / evaluation / "results.json")
        self.windows = {}
        if (out / evaluation / "windows.safetensors").is_file():
            from safetensors.numpy import load_file
            self.windows = load_file(out / evaluation / "windows.safetensors")
        rows = (self.ev or {}).get("rows", []) + (self.ev or {}).get("baseline_rows", [])
        self.last = {}
        for r in rows:
            self.last[r["run"]] = max(self.last.get(r["run"], 0), r["iter"])
        self.final = {(r["run"], r["dataset"]): r for r in rows if r["iter"] == self.last[r["run"]]}
        self.runs = {r["run"]: r for r in rows}
        self.unigram = self._unigram()
        clean = self.loss(clean, "clean/val")
        self.clean_loss = clean
        self.margin = (self.unigram - clean) if clean is not None and self.unigram is not None else None
        self.decidable = self.margin is not None and self.margin >= MARGIN
        self.seed_diff = None
        if self.loss(seed2, "clean/val") is not None and clean is not None:
            self.seed_diff = abs(self.loss(seed2, "clean/val") - clean)

    def _unigram(self) -> float | None:
        """The unigram cross-entropy of exactly the clean validation tokens the clean model was scored on
        (eval-ntp's windows of the first --max-tokens tokens): the same tokens on both sides of the margin.
        For a BERT those are the masked positions of the same fixed masks."""
        from noisecli.what.scoring import mlm_scored_tokens, predicted_tokens
        from noisecli.what.tokens import token_counts
        folder, w = self.out / "data" / "clean", self.w(self.clean_run, "clean/val")
        run = load_json(self.out / "runs" / self.clean_run / "run.json")
        if not (folder / "train.bin").is_file() or w is None or run is None:
            return None
        train = token_counts(folder / "train.bin")
        val = np.memmap(folder / "val.bin", dtype=np.uint16, mode="r")
        if run.get("arch") == "bert":
            scored = mlm_scored_tokens(val[:self.ev.get("max_tokens") or len(val)], run["model"]["block_size"])
        else:
            scored = predicted_tokens(val[:int(w[:, 1].sum() + len(w))], run["model"]["block_size"] + 1)
        return stats.unigram_cross_entropy(train, np.bincount(scored, minlength=len(train)))

    def loss(self, run: str, dataset: str) -> float | None:
        r = self.final.get((run, dataset))
        return r["loss"] if r else None

    def w(self, run: str, dataset: str) -> np.ndarray | None:
        return self.windows.get(f"{run}|{self.last.get(run)}|{dataset}")

    def gate(self) -> str | None:
        """Why nothing can be decided, or None when the clean model has learned enough."""
        if self.margin is None:
            return "the clean run's validation loss or the unigram cross-entropy is missing"
        if not self.decidable:
            where = (f"only {self.margin:.2f} nats below" if self.margin >= 0 else f"{-self.margin:.2f} nats above")
            return (f"the clean model's validation loss ({self.clean_loss:.3f} nats) is {where} the clean data's "
                    f"unigram cross-entropy ({self.unigram:.3f}); at least {MARGIN:.1f} nat below is "
                    f"needed before the model has learned anything about context, which every mechanism of the "
                    f"paper needs (telling noise context from clean context, p_c ≫ p_n, k ≫ 1)")
        return None

    def rise(self, run: str) -> dict | None:
        """The clean-loss rise of `run` over the clean run: value, paired bootstrap interval, noise floor."""
        a, b = self.w(run, "clean/val"), self.w(self.clean_run, "clean/val")
        if a is None or b is None or a.shape != b.shape:
            return None
        d, lo, hi = stats.paired_difference(a, b)
        base = self.clean_loss
        noise = lo <= 0 <= hi or (self.seed_diff is not None and abs(d) <= self.seed_diff)
        return {"run": run, "alpha": self.runs[run]["alpha"], "rise": d, "lo": lo, "hi": hi,
                "relative": d / base, "rel_lo": lo / base, "rel_hi": hi / base, "within_noise": noise}
