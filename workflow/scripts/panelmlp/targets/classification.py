"""Classes from free text: a softmax (or one logit for two classes) trained on cross-entropy, scored by ROC-AUC."""

from __future__ import annotations

from ..epoch_metrics import HISTORY_METRICS
from ..metrics import METRICS
from .base import UNBOUNDED, TargetKind

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
    prediction_text=("true_label", "predicted_label"),
)
"""Classification: ROC-AUC 0.5 is a random ranking; the majority class and logistic regression stand beside it."""
