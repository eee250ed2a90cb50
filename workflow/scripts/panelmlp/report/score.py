"""What the report reads each panel by: ROC-AUC for classes, R^2 for a regression target, C-index for survival.

The metric, its chance value and the baselines come from the target kind's
record (:mod:`panelmlp.targets`); this module adds the words the report uses
for them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from ..targets import KINDS, TargetKind, kind_of_metrics


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

    @property
    def target(self) -> TargetKind:
        """The target kind's record (:data:`panelmlp.targets.KINDS`)."""
        return KINDS[self.kind]


def _score(kind: TargetKind, **words: object) -> Score:
    """A kind's score: metric, chance and baselines from its record, the rest from ``words``."""
    trivial, baseline = kind.baselines
    return Score(
        kind=kind.name,
        metric=kind.main_metric,
        chance=kind.chance,
        baseline=baseline,
        trivial=trivial,
        **words,  # type: ignore[arg-type]
    )


CLASSIFICATION = _score(
    KINDS["classification"],
    name="ROC-AUC",
    meaning="0.5 is what random guessing scores and 1.0 is perfect separation",
    baseline_name="logistic regression",
    trivial_name="the majority class",
    key_metrics=("roc_auc", "balanced_accuracy", "accuracy", "f1", "mcc", "pr_auc"),
)

REGRESSION = _score(
    KINDS["regression"],
    name="R²",
    meaning=(
        "0 is what predicting the training mean scores (slightly below 0 on average on a test set), "
        "1.0 is perfect prediction, and below 0 is worse than the mean"
    ),
    baseline_name="ridge regression",
    trivial_name="the training mean",
    key_metrics=("r2", "rmse", "mae", "pearson", "spearman"),
)

SURVIVAL = _score(
    KINDS["survival"],
    name="C-index",
    meaning=(
        "0.5 is what a random ranking of the risks scores and 1.0 is a risk order that matches every comparable "
        "pair of event times"
    ),
    baseline_name="ridge Cox regression",
    trivial_name="a constant risk",
    key_metrics=("c_index", "uno_c", "td_auc", "ibs"),
)

SCORES = {s.kind: s for s in (CLASSIFICATION, REGRESSION, SURVIVAL)}
"""Every kind's score by kind name."""


def score_of(summary: pd.DataFrame) -> Score:
    """The run's score: the kind whose main metric summary.tsv has rows of (classification when none)."""
    metrics = summary["metric"].unique() if "metric" in summary else ()
    return SCORES[kind_of_metrics(metrics).name]
