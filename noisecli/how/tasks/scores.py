"""The scores GLUE reports per task, in percent: accuracy, F1 of the positive class (MRPC), Matthews
correlation (CoLA), Pearson and Spearman correlation (STS-B). Written out here, in numpy, so that the
formulas can be read and tested against hand computations."""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, y: np.ndarray) -> float:
    return 100.0 * float(np.mean(pred == y))


def f1(pred: np.ndarray, y: np.ndarray) -> float:
    """F1 of class 1: 2·TP / (2·TP + FP + FN); 0 when there is no positive prediction nor label."""
    tp = float(np.sum((pred == 1) & (y == 1)))
    wrong = float(np.sum(pred != y))
    return 100.0 * 2 * tp / (2 * tp + wrong) if tp + wrong else 0.0


def matthews(pred: np.ndarray, y: np.ndarray) -> float:
    """(TP·TN − FP·FN) / √((TP+FP)(TP+FN)(TN+FP)(TN+FN)) for two classes; 0 when a margin is empty
    (a constant prediction), as scikit-learn and GLUE take it."""
    tp, tn = float(np.sum((pred == 1) & (y == 1))), float(np.sum((pred == 0) & (y == 0)))
    fp, fn = float(np.sum((pred == 1) & (y == 0))), float(np.sum((pred == 0) & (y == 1)))
    den = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return 100.0 * (tp * tn - fp * fn) / den if den > 0 else 0.0


def pearson(pred: np.ndarray, y: np.ndarray) -> float:
    a, b = pred - pred.mean(), y - y.mean()
    den = np.sqrt((a * a).sum() * (b * b).sum())
    return 100.0 * float((a * b).sum() / den) if den > 0 else 0.0


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=ranks)
    return sums[inverse] / counts[inverse]


def spearman(pred: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of the ranks."""
    return pearson(_ranks(pred), _ranks(y))


SCORES = {"accuracy": accuracy, "f1": f1, "matthews": matthews, "pearson": pearson, "spearman": spearman}


def score(names: list[str], outputs: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The named scores of a head's outputs: logits [N, C] (prediction = argmax) or regression values [N]."""
    pred = outputs.argmax(-1) if outputs.ndim == 2 else outputs.astype(np.float64)
    return {name: SCORES[name](pred, y.astype(pred.dtype)) for name in names}
