"""What the report reads each panel by: ROC-AUC for classes, R^2 for a regression target."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Score:
    """The main metric of a run and the words the report uses for it and its baselines."""

    kind: str
    metric: str
    name: str
    chance: float
    meaning: str
    baseline: str
    baseline_name: str
    trivial: str
    trivial_name: str
    key_metrics: tuple[str, ...]


CLASSIFICATION = Score(
    kind="classification",
    metric="roc_auc",
    name="ROC-AUC",
    chance=0.5,
    meaning="0.5 is what random guessing scores and 1.0 is perfect separation",
    baseline="logreg",
    baseline_name="logistic regression",
    trivial="majority",
    trivial_name="the majority class",
    key_metrics=("roc_auc", "balanced_accuracy", "accuracy", "f1", "mcc", "pr_auc"),
)

REGRESSION = Score(
    kind="regression",
    metric="r2",
    name="R²",
    chance=0.0,
    meaning=(
        "0 is what predicting the training mean scores (slightly below 0 on average on a test set), "
        "1.0 is perfect prediction, and below 0 is worse than the mean"
    ),
    baseline="ridge",
    baseline_name="ridge regression",
    trivial="mean",
    trivial_name="the training mean",
    key_metrics=("r2", "rmse", "mae", "pearson", "spearman"),
)


def score_of(summary: pd.DataFrame) -> Score:
    """The run's score: regression when summary.tsv has R^2 rows."""
    if "metric" in summary and (summary["metric"] == "r2").any():
        return REGRESSION
    return CLASSIFICATION
