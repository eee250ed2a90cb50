"""Classification metrics of one split's test predictions.

Plain numpy implementations of scikit-learn's definitions (tests check every
one against scikit-learn on the same predictions). scikit-learn's input
validation costs about 60 ms per split, which is most of an evaluate job.
"""

from __future__ import annotations

import math

import numpy as np

METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")
"""Metric columns of metrics.tsv, in order."""


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of a binary 0/1 ``y``: the Mann-Whitney statistic, ties counted half."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    _, inverse, counts = np.unique(np.asarray(score)[order], return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2
    ranks = np.empty(len(y))
    ranks[order] = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (scikit-learn's PR-AUC): sum over thresholds of (R_n - R_n-1) * P_n."""
    if np.sum(y) == 0:
        return math.nan
    tps, fps = _ranked_counts(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _ranked_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score threshold, highest threshold first."""
    order = np.argsort(-np.asarray(score), kind="mergesort")
    ranked = np.asarray(score)[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tps = np.cumsum(np.asarray(y, dtype=float)[order])[last_of_tie]
    return tps, last_of_tie + 1 - tps


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the ROC curve, from (0, 0) (scikit-learn's, keeping every point)."""
    tps, fps = _ranked_counts(y, score)
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def pr_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the precision-recall curve, as scikit-learn's ``precision_recall_curve``."""
    tps, fps = _ranked_counts(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def matthews(confusion: np.ndarray) -> float:
    """Matthews correlation coefficient from a confusion matrix (rows true, columns predicted)."""
    confusion = np.asarray(confusion, dtype=float)
    n = confusion.sum()
    correct = np.trace(confusion)
    true, pred = confusion.sum(axis=1), confusion.sum(axis=0)
    denominator = math.sqrt((n**2 - pred @ pred) * (n**2 - true @ true))
    return 0.0 if denominator == 0 else float((correct * n - true @ pred) / denominator)


def predicted_classes(proba: np.ndarray) -> np.ndarray:
    """The decision rule: class 1 when its probability is at least 0.5 (two classes), else the most probable."""
    proba = np.asarray(proba)
    return (proba[:, 1] >= 0.5).astype(int) if proba.shape[1] == 2 else proba.argmax(axis=1)


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Metrics of class probabilities ``proba`` ``[n, C]`` against integer labels.

    Two classes: the positive class is code 1, predicted when its probability is
    at least 0.5; precision/recall/F1 are the positive class's, 0 when undefined
    (``zero_division=0``); PR-AUC is average precision; confusion counts tp, fp,
    tn, fn. More classes: macro averages, one-vs-rest ROC-AUC and PR-AUC, and no
    confusion counts. A ranking metric is NaN when the test set lacks a class.
    Balanced accuracy is the mean recall over the classes present.
    """
    y_true = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    binary = n_classes == 2
    y_pred = predicted_classes(proba)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, actual + predicted)
    present = actual > 0
    out: dict[str, float] = {
        "accuracy": float(tp.sum() / len(y_true)),
        "balanced_accuracy": float(recall[present].mean()),
        "precision": float(precision[1] if binary else precision.mean()),
        "recall": float(recall[1] if binary else recall.mean()),
        "f1": float(f1[1] if binary else f1.mean()),
        "mcc": matthews(confusion),
    }
    if not present.all():
        out["roc_auc"] = out["pr_auc"] = math.nan
    elif binary:
        out["roc_auc"] = roc_auc(y_true, proba[:, 1])
        out["pr_auc"] = average_precision(y_true, proba[:, 1])
    else:
        out["roc_auc"] = float(np.mean([roc_auc(y_true == c, proba[:, c]) for c in range(n_classes)]))
        out["pr_auc"] = float(np.mean([average_precision(y_true == c, proba[:, c]) for c in range(n_classes)]))
    if binary:
        out.update({"tp": int(tp[1]), "fp": int(confusion[0, 1]), "tn": int(tp[0]), "fn": int(confusion[1, 0])})
    return out


REGRESSION_METRICS = ("r2", "rmse", "mae", "pearson", "spearman")
"""Metrics of a regression target, in the order metrics.tsv and summary.tsv list them."""


def _rank(values: np.ndarray) -> np.ndarray:
    """1-based average ranks (ties share their mean rank), as scipy's ``rankdata``."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered) != 0) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2
    return ranks


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / denom) if denom > 0 else math.nan


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R^2 (scikit-learn's ``r2_score``), RMSE, MAE, Pearson's r and Spearman's rho of predictions.

    R^2 compares the squared error with that of the test rows' own mean, so a
    model that predicts the training mean scores just below 0; an undefined
    value (constant truth or predictions) is NaN.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    res = float(((y - p) ** 2).sum())
    tot = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    return {
        "r2": 1.0 - res / tot if tot > 0 else math.nan,
        "rmse": math.sqrt(res / len(y)) if len(y) else math.nan,
        "mae": float(np.abs(y - p).mean()) if len(y) else math.nan,
        "pearson": _correlation(p, y) if len(y) > 1 else math.nan,
        "spearman": _correlation(_rank(p), _rank(y)) if len(y) > 1 else math.nan,
    }
