"""Classification metrics of one split's test predictions, with scikit-learn."""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

METRICS = ("accuracy", "balanced_accuracy", "precision", "recall", "f1", "roc_auc", "pr_auc", "mcc")
"""Metric columns of metrics.tsv, in order."""


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Metrics of class probabilities ``proba`` ``[n, C]`` against integer labels.

    Two classes: the positive class is code 1, predicted when its probability is
    at least 0.5; precision/recall/F1 are the positive class's, 0 when undefined
    (``zero_division=0``); PR-AUC is average precision; confusion counts tp, fp,
    tn, fn. More classes: macro averages, one-vs-rest ROC-AUC and PR-AUC, and no
    confusion counts. A ranking metric is NaN when the test set lacks a class.
    """
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    binary = n_classes == 2
    y_pred = (proba[:, 1] >= 0.5).astype(int) if binary else proba.argmax(axis=1)
    average = "binary" if binary else "macro"
    labels = list(range(n_classes))
    out = {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "balanced_accuracy": _balanced_accuracy(y_true, y_pred, labels),
        "precision": skm.precision_score(
            y_true, y_pred, average=average, labels=labels if not binary else None, zero_division=0
        ),
        "recall": skm.recall_score(
            y_true, y_pred, average=average, labels=labels if not binary else None, zero_division=0
        ),
        "f1": skm.f1_score(y_true, y_pred, average=average, labels=labels if not binary else None, zero_division=0),
        "mcc": skm.matthews_corrcoef(y_true, y_pred),
    }
    present = np.unique(y_true)
    if len(present) < 2 or (not binary and len(present) < n_classes):
        out["roc_auc"] = math.nan
        out["pr_auc"] = math.nan
    elif binary:
        out["roc_auc"] = skm.roc_auc_score(y_true, proba[:, 1])
        out["pr_auc"] = skm.average_precision_score(y_true, proba[:, 1])
    else:
        out["roc_auc"] = skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro", labels=labels)
        onehot = np.eye(n_classes)[y_true]
        out["pr_auc"] = skm.average_precision_score(onehot, proba, average="macro")
    if binary:
        tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
        out.update({"tp": int(tp), "fp": int(fp), "tn": int(tn), "fn": int(fn)})
    return {k: (float(v) if not isinstance(v, int) else v) for k, v in out.items()}


def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, labels: list[int]) -> float:
    """Mean recall over the classes present in ``y_true`` (scikit-learn's definition)."""
    recalls = [np.mean(y_pred[y_true == c] == c) for c in labels if np.any(y_true == c)]
    return float(np.mean(recalls))
