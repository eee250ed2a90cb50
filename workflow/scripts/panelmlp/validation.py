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
- a number: R^2, RMSE and MAE;
- a survival target (the file has ``target.event.column`` and the
  ``target.time`` column(s), read by the split step's rules,
  :func:`panelmlp.targets.survival.survival_labels`): Harrell's C of the
  ensemble risk, Uno's C, the time-dependent AUC at the checkpoints'
  horizons (``td_auc_{h}``) and their mean (``td_auc``). Uno's C and the AUC
  weight by the censoring distribution of the new cohort itself (its own
  follow-up is what censors it; the training cohort's need not apply), Uno's
  C truncated at the cohort's last time. The integrated Brier score is left
  out: it needs survival curves, which need the training rows' risks.

Each value has a percentile bootstrap 95% interval from
:data:`BOOTSTRAP_RESAMPLES` resamples drawn with a fixed seed
(:data:`BOOTSTRAP_SEED`). For classes the resampling is stratified (each
class resampled within itself, so every resample has every class the
samples have), for a survival target by event (events and censored samples
each within themselves); a metric that a resample leaves undefined is left
out of that metric's interval, and ``resamples`` counts the resamples used.

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
from .targets import target_kind
from .targets.survival import horizon_column, survival_labels, time_columns

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 20240607
"""A fixed seed: the same predictions give the same intervals on every run."""
LEVEL = 0.95
CLASSIFICATION_EXTERNAL = ("roc_auc", "pr_auc", "accuracy", "brier")
REGRESSION_EXTERNAL = ("r2", "rmse", "mae")
SURVIVAL_EXTERNAL = ("c_index", "uno_c", "td_auc")
"""A survival target's external metrics; ``td_auc_{h}`` per horizon follow (:func:`survival_metric_names`)."""
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


def truth_columns(target: Mapping) -> list[str]:
    """The columns of the new samples' file that carry the target: ``target.column``, or a survival target's
    event column and time column(s)."""
    if target_kind(target.get("kind")).name == "survival":
        return list(dict.fromkeys([str(target["event"]["column"]), *map(str, time_columns(target))]))
    return [str(target["column"])] if target.get("column") else []


def survival_truth(ids: Sequence[str], columns: Mapping[str, Sequence[object]], target: Mapping) -> np.ndarray:
    """Time (days) and event (1/0) per new sample ``[n, 2]``, read as the split step reads the cohort's.

    ``columns`` holds the file's :func:`truth_columns` as read (None: missing).
    A sample whose event value is missing or matches neither regex, or whose
    time is missing, not a number or negative, has NaN in both.
    """
    frame = pd.DataFrame({c: pd.Series(list(v), dtype=object) for c, v in columns.items()})
    frame.index = pd.Index([str(i) for i in ids])
    found = survival_labels(frame, target)
    out = np.full((len(ids), 2), np.nan)
    position = {str(s): i for i, s in enumerate(ids)}
    rows = np.array([position[s] for s in found.time.index], dtype=np.int64)
    if len(rows):
        out[rows, 0] = found.time.to_numpy(dtype=np.float64)
        out[rows, 1] = found.event.to_numpy(dtype=np.float64)
    return out


def survival_metric_names(horizons: Sequence[float]) -> tuple[str, ...]:
    """The external metrics of a survival target: :data:`SURVIVAL_EXTERNAL`, then ``td_auc_{h}`` per horizon."""
    return (*SURVIVAL_EXTERNAL, *(horizon_column(h) for h in horizons))


def survival_external(y: np.ndarray, risk: np.ndarray, horizons: Sequence[float] = ()) -> dict[str, float]:
    """Harrell's C, Uno's C and the time-dependent AUC (mean, per horizon) of risks against ``y`` ``[n, 2]``.

    Uno's C and the AUC weight by the censoring distribution of these samples
    themselves; Uno's C is truncated at their last time, where that
    distribution ends. A quantity the samples cannot give (no comparable pair,
    a horizon outside their follow-up) is NaN.
    """
    from . import survival as sv

    time, event = np.asarray(y[:, 0], dtype=np.float64), np.asarray(y[:, 1]).astype(bool)
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    h = np.asarray(list(horizons), dtype=np.float64)
    names = survival_metric_names(horizons)
    if len(time) < 2 or not event.any():
        return dict.fromkeys(names, math.nan)
    auc = sv.td_auc(time, event, time, event, risk, h) if len(h) else np.zeros(0)
    out = {
        "c_index": sv.harrell_c(time, event, risk),
        "uno_c": sv.uno_c(time, event, time, event, risk, tau=float(time.max())),
        "td_auc": sv.td_auc_mean(time, event, h, auc) if len(h) else math.nan,
    }
    out.update({horizon_column(d): float(a) for d, a in zip(horizons, auc, strict=True)})
    return {k: float(out[k]) for k in names}


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
    strata: np.ndarray | None = None,
) -> dict[str, tuple[float, float, int]]:
    """Percentile bootstrap interval of every metric ``score`` gives: ``{metric: (low, high, resamples used)}``.

    ``stratify`` resamples each class (value of ``strata``, by default of
    ``y``) within itself. A resample whose metric is NaN is left out of that
    metric; with none left the interval is NaN.
    """
    rng = np.random.default_rng(seed)
    n = len(y)
    if n == 0:
        return {}
    by = y if strata is None else np.asarray(strata)
    groups = [np.flatnonzero(by == c) for c in np.unique(by)] if stratify else [np.arange(n)]
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
    horizons: Sequence[float] = (),
) -> pd.DataFrame:
    """One panel's external metrics with bootstrap intervals (:data:`METRIC_COLUMNS`).

    ``truth`` holds class codes (-1: no label), numbers (NaN: none) or, for
    a survival target, time and event ``[n, 2]`` (NaN time: none);
    ``predicted`` the ensemble's probabilities ``[n, C]``, values ``[n]`` or
    risks ``[n]`` (rows of samples not scored are NaN). Only rows with both
    are scored. ``horizons``: a survival target's days of the time-dependent AUC.
    """
    record = target_kind(kind)
    predicted = np.asarray(predicted, dtype=np.float64)
    strata = None  # classes stratify by themselves; a survival target by event
    if record.class_probabilities:
        rows = np.isfinite(predicted).all(axis=1) & (truth >= 0)
        score, names = classification_external, CLASSIFICATION_EXTERNAL
    elif record.standardised:
        rows = np.isfinite(predicted) & np.isfinite(truth)
        score, names = regression_external, REGRESSION_EXTERNAL
    else:  # a risk per sample against (time, event)
        truth = np.asarray(truth, dtype=np.float64).reshape(-1, 2)
        rows = np.isfinite(predicted) & np.isfinite(truth).all(axis=1)
        names = survival_metric_names(horizons)
        strata = truth[rows, 1]

        def score(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
            return survival_external(y, p, horizons)

    y, p = truth[rows], predicted[rows]
    found = score(y, p)
    stratify = record.class_probabilities or strata is not None
    intervals = bootstrap(y, p, score, stratify=stratify, resamples=resamples, seed=seed, strata=strata)
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
