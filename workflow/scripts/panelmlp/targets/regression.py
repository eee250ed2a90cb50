"""A numeric column: one linear output trained on MSE or L1, scored by R^2."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..metrics import REGRESSION_METRICS, regression_metrics
from .base import Scoring, TargetKind

if TYPE_CHECKING:
    from ..heads import Head


REGRESSION_HISTORY = ("train_loss", "test_loss", "r2", "rmse", "mae", "pearson", "spearman")
"""Per-epoch quantities of a regression model."""


def head(n_classes: int = 1, loss: str = "mse") -> Head:
    """One linear output on MSELoss or L1Loss (the target standardised with the training rows)."""
    from ..epoch_metrics import regression_loss_and_grad, regression_metrics
    from ..heads import Head, squeeze

    def loss_fn(out, y, valid, n_valid):
        return regression_loss_and_grad(out, y, valid, n_valid, loss)

    def metrics(out, y, valid):
        return regression_metrics(out.squeeze(-1), y, valid)

    return Head(1, loss_fn, metrics, squeeze, True, 1)


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
    head=head,
    standardised=True,
    in_target_units=("rmse", "mae"),
    tuning_label="loss",
    final_metrics=final_metrics,
    prediction_columns=prediction_columns,
)
"""Regression: R^2 0 is predicting the training mean; the mean and ridge regression stand beside it."""
