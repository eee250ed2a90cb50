"""Time to an event with censoring: one linear risk output trained on the Cox partial likelihood, scored by C-index."""

from __future__ import annotations

from .base import TargetKind

SURVIVAL_HISTORY = ("train_loss", "test_loss", "c_index")
"""Per-epoch quantities of a survival model: the Cox loss (Breslow ties) on training and test rows, Harrell's C."""

SURVIVAL_METRICS = ("c_index", "uno_c", "td_auc", "ibs")
"""Metric columns of a survival target: Harrell's C, Uno's C (training censoring), the mean time-dependent AUC
over ``target.horizons`` and the integrated Brier score; ``td_auc_{h}`` per horizon follow in metrics.tsv."""

KIND = TargetKind(
    name="survival",
    history=SURVIVAL_HISTORY,
    metrics=SURVIVAL_METRICS,
    main_metric="c_index",
    chance=0.5,
    tuning_score="c_index",
    broad_margin=0.05,
    baselines=("constant", "cox_ridge"),
    chance_levels={"c_index": 0.5, "uno_c": 0.5, "td_auc": 0.5},
    prediction_text=("risk_group",),
)
"""Survival: C-index 0.5 is a random ranking of risks; a constant risk and a ridge Cox model stand beside it."""
