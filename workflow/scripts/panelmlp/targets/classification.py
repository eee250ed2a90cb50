"""Classes from free text: a softmax (or one logit for two classes) trained on cross-entropy, scored by ROC-AUC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..metrics import METRICS, classification_metrics, classification_metrics_many, predicted_classes
from .base import UNBOUNDED, Scoring, TargetKind

HISTORY_METRICS = ("train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc")
"""Per-epoch quantities of a classification model, in the order of the trainer's history axis."""


def final_metrics(y_test: np.ndarray, output: np.ndarray, scoring: Scoring) -> dict:
    """Accuracy to calibration of class probabilities ``[n, C]`` (see :func:`panelmlp.metrics.classification_metrics`)."""
    return classification_metrics(y_test, output)


def final_metrics_many(items: Sequence[tuple[np.ndarray, np.ndarray, Scoring]]) -> list[dict]:
    """:func:`final_metrics` of many ``(y_test, output, scoring)`` at once, each the same numbers as alone
    (the calibration fits run together: :func:`panelmlp.metrics.classification_metrics_many`)."""
    return classification_metrics_many([y for y, _, _ in items], [output for _, output, _ in items])


def prediction_columns(y: np.ndarray, output: np.ndarray, classes: Sequence[str], cut: object = None) -> dict:
    """True and predicted class, the positive class's probability (the largest with more classes), ``prob_<class>``."""
    names = np.asarray(classes, dtype=object)
    columns = {
        "true_label": names[y.astype(np.int64)],
        "predicted_label": names[predicted_classes(output)] if len(output) else np.zeros(0, object),
        "probability": output[:, -1] if len(classes) == 2 else output.max(axis=1),
    }
    if len(classes) > 2:
        for c, name in enumerate(classes):
            columns[f"prob_{name}"] = output[:, c]
    return columns


KIND = TargetKind(
    name="classification",
    history=HISTORY_METRICS,
    metrics=METRICS,
    main_metric="roc_auc",
    chance=0.5,
    tuning_score="roc_auc",
    broad_margin=0.05,
    baselines=("majority", "logreg"),
    optional_baselines=("sklearn_mlp",),
    chance_levels={"roc_auc": 0.5, "balanced_accuracy": 0.5, "mcc": 0.0},
    ranges={"mcc": (-1.0, 1.0), "calibration_slope": UNBOUNDED, "calibration_intercept": UNBOUNDED},
    prediction_types=(("true_label", "text"), ("predicted_label", "text"), ("probability", "float64")),
    class_probabilities=True,
    final_metrics=final_metrics,
    final_metrics_many=final_metrics_many,
    prediction_columns=prediction_columns,
)
"""Classification: ROC-AUC 0.5 is a random ranking; the majority class and logistic regression stand beside it."""
