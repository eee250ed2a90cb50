"""External validation: scoring the predictions of new samples that carry the target (``snakemake predict``).

When ``predict_csv`` has the config's ``target.column``, its values are
turned into the training run's classes with the same regexes (first match
wins, case-insensitive), or read as numbers for a regression target, and each
panel's ensemble predictions are scored on the samples that have both a
prediction and a target value:

- classes: ROC-AUC, PR-AUC (average precision), accuracy (by the workflow's
  decision rule, :func:`panelmlp.metrics.predicted_classes`) and the Brier
  score (:func:`panelmlp.metrics.brier_score`); more than two classes:
  one-vs-rest macro ROC-AUC and PR-AUC;
- a number: R^2, RMSE and MAE.

Each value has a percentile bootstrap 95% interval from
:data:`BOOTSTRAP_RESAMPLES` resamples drawn with a fixed seed
(:data:`BOOTSTRAP_SEED`). For classes the resampling is stratified (each
class resampled within itself, so every resample has every class the
samples have); a metric that a resample leaves undefined is left out of that
metric's interval, and ``resamples`` counts the resamples used.

A cohort scored this way took no part in training or selection, so this is
the one check that catches an association the whole training cohort shares
by chance (a batch, a site, a sampling accident), which no split of that
cohort can reveal.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .labels import class_matcher
from .metrics import brier_score, predicted_classes, ranking_metrics, regression_metrics

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240607
"""A fixed seed: the same predictions give the same intervals on every run."""
LEVEL = 0.95
CLASSIFICATION_EXTERNAL = ("roc_auc", "pr_auc", "accuracy", "brier")
REGRESSION_EXTERNAL = ("r2", "rmse", "mae")
METRIC_COLUMNS = ["collection", "panel", "metric", "value", "ci_low", "ci_high", "n", "resamples", "cohort"]
"""Columns of ``results/predictions/{panel}/{name}.metrics.tsv``, one row per (panel, metric); ``collection``
is empty for a named panel (a named panel and a collection's set may share a name)."""


def class_codes(values: Sequence[object], patterns: Mapping[str, str | None], classes: Sequence[str]) -> np.ndarray:
    """Each value's class code (the index in ``classes``, the checkpoints' order), -1 when missing or unmatched.

    ``patterns`` is the config's ``target.classes`` (class: regex; None drops a
    class). A value is tested against the regexes in config order, as the
    split step does (:func:`panelmlp.labels.derive_labels`).
    """
    label = class_matcher(patterns)
    index = {c: i for i, c in enumerate(classes)}
    out = np.full(len(values), -1, dtype=np.int64)
    for i, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        name = label(value)
        if name is not None:
            out[i] = index.get(name, -1)
    return out


def target_numbers(values: Sequence[object]) -> np.ndarray:
    """A regression target's values as floats; missing, text and non-finite values are NaN."""
    numbers = np.array(pd.to_numeric(pd.Series(list(values), dtype=object), errors="coerce"), dtype=np.float64)
    numbers[~np.isfinite(numbers)] = np.nan
    return numbers


def classification_external(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ROC-AUC, PR-AUC, accuracy and Brier score of probabilities ``[n, C]`` against codes ``y`` (NaN if a class is absent)."""
    y = np.asarray(y, dtype=np.int64)
    proba = np.asarray(proba, dtype=np.float64)
    n_classes = proba.shape[1]
    present = np.bincount(y, minlength=n_classes) > 0
    out = {"accuracy": float(np.mean(predicted_classes(proba) == y)) if len(y) else math.nan}
    if len(y) == 0 or not present.all():
        out["roc_auc"] = out["pr_auc"] = math.nan
    else:
        out.update(ranking_metrics(y, proba))
    out["brier"] = brier_score(y, proba)
    return {k: out[k] for k in CLASSIFICATION_EXTERNAL}


def regression_external(y: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """R^2, RMSE and MAE of predicted values against the true ones."""
    if len(y) < 2:
        return dict.fromkeys(REGRESSION_EXTERNAL, math.nan)
    found = regression_metrics(np.asarray(y, dtype=np.float64), np.asarray(predicted, dtype=np.float64))
    return {k: float(found[k]) for k in REGRESSION_EXTERNAL}


def bootstrap(
    y: np.ndarray,
    predicted: np.ndarray,
    score: Callable[[np.ndarray, np.ndarray], Mapping[str, float]],
    stratify: bool,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
) -> dict[str, tuple[float, float, int]]:
    """Percentile bootstrap interval of every metric ``score`` gives: ``{metric: (low, high, resamples used)}``.

    ``stratify`` resamples each class (value of ``y``) within itself. A
    resample whose metric is NaN is left out of that metric; with none left the
    interval is NaN.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    if n == 0:
        return {}
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(n)]
    values: dict[str, list[float]] = {}
    for _ in range(resamples):
        rows = np.concatenate([g[rng.integers(0, len(g), len(g))] for g in groups])
        for metric, value in score(y[rows], predicted[rows]).items():
            values.setdefault(metric, []).append(value)
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    out = {}
    for metric, found in values.items():
        finite = np.asarray(found, dtype=np.float64)
        finite = finite[np.isfinite(finite)]
        if len(finite) == 0:
            out[metric] = (math.nan, math.nan, 0)
        else:
            low, high = np.percentile(finite, [tail, 100.0 - tail])
            out[metric] = (float(low), float(high), len(finite))
    return out


def external_metrics(
    panel: str,
    kind: str,
    truth: np.ndarray,
    predicted: np.ndarray,
    cohort: str,
    resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = BOOTSTRAP_SEED,
    collection: str = "",
) -> pd.DataFrame:
    """One panel's external metrics with bootstrap intervals (:data:`METRIC_COLUMNS`).

    ``truth`` holds class codes (-1: no label) or numbers (NaN: none);
    ``predicted`` the ensemble's probabilities ``[n, C]`` or values ``[n]``
    (rows of samples not scored are NaN). Only rows with both are scored.
    """
    regression = kind == "regression"
    predicted = np.asarray(predicted, dtype=np.float64)
    scored = np.isfinite(predicted) if regression else np.isfinite(predicted).all(axis=1)
    labelled = np.isfinite(truth) if regression else truth >= 0
    rows = scored & labelled
    y, p = truth[rows], predicted[rows]
    score = regression_external if regression else classification_external
    names = REGRESSION_EXTERNAL if regression else CLASSIFICATION_EXTERNAL
    found = score(y, p)
    intervals = bootstrap(y, p, score, stratify=not regression, resamples=resamples, seed=seed)
    records = []
    for metric in names:
        low, high, used = intervals.get(metric, (math.nan, math.nan, 0))
        records.append(
            {
                "collection": collection,
                "panel": panel,
                "metric": metric,
                "value": found[metric],
                "ci_low": low,
                "ci_high": high,
                "n": int(rows.sum()),
                "resamples": used,
                "cohort": cohort,
            }
        )
    return pd.DataFrame(records, columns=METRIC_COLUMNS)


def empty_metrics() -> pd.DataFrame:
    """The metrics table when the new samples do not carry the target: the header alone."""
    return pd.DataFrame(columns=METRIC_COLUMNS)
