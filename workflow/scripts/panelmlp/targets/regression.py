"""A numeric column: one linear output trained on MSE or L1, scored by R^2."""

from __future__ import annotations

import math

from ..epoch_metrics import REGRESSION_HISTORY
from ..metrics import REGRESSION_METRICS
from .base import TargetKind

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
)
"""Regression: R^2 0 is predicting the training mean; the mean and ridge regression stand beside it."""
