"""A numeric column: one linear output trained on MSE or L1, scored by R^2."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..metrics import REGRESSION_METRICS, regression_metrics
from .base import Scoring, TargetKind

REGRESSION_HISTORY = ("train_loss", "test_loss", "r2", "rmse", "mae", "pearson", "spearman")
"""Per-epoch quantities of a regression model."""


def final_metrics(y_test: np.ndarray, output: np.ndarray, scoring: Scoring) -> dict:
    """R^2, RMSE, MAE, Pearson and Spearman of predicted values ``[n, 1]``."""
    return regression_metrics(y_test, output[:, 0])


def prediction_columns(y: np.ndarray, output: np.ndarray, classes: Sequence[str] = (), cut: object = None) -> dict:
    """The value, true and predicted."""
    return {"true_value": y.astype(np.float64), "predicted_value": output[:, 0]}


KIND = TargetKind(
    name="regression",
    history=REGRESSION_HISTORY,
    metrics=REGRESSION_METRICS,
    prediction_types=(("true_value", "float64"), ("predicted_value", "float64")),
    main_metric="r2",
    chance=0.0,
    tuning_score="test_loss",
    broad_margin=0.02,
    baselines=("mean", "ridge"),
    chance_levels={"r2": 0.0, "pearson": 0.0, "spearman": 0.0},
    ranges={
        "r2": (-math.inf, 1.0),
        "rmse": (0.0, math.inf),
        "mae": (0.0, math.inf),
        "pearson": (-1.0, 1.0),
        "spearman": (-1.0, 1.0),
    },
    standardised=True,
    in_target_units=("rmse", "mae"),
    tuning_label="loss",
    final_metrics=final_metrics,
    prediction_columns=prediction_columns,
)
"""Regression: R^2 0 is predicting the training mean; the mean and ridge regression stand beside it."""
