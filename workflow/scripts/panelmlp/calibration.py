"""Calibration slope and intercept of the pooled out-of-fold predictions: summary.tsv's calibration rows.

metrics.tsv keeps a slope and intercept per split, but their mean over CV
splits is biased: a logistic fit on a small test fold overshoots (perfectly
calibrated predictions on 30 test rows give a mean slope of 1.18 to 1.47,
depending on how strong the signal is), and a fold whose predictions separate
its classes has no finite slope and drops out, which selects the folds with
the weaker fits. Each repeat of k-fold CV predicts every labelled sample once,
so its test predictions pooled form one out-of-fold prediction per sample, as
large as the cohort; :func:`pooled_calibration` fits slope and intercept once
per (panel, model, repeat) on them (:func:`panelmlp.metrics.calibration_fit`,
more classes: the mean of the one-vs-rest values), with the Wald standard
error of the fit.

:func:`pooled_summary` puts these into summary.tsv's ``calibration_slope`` and
``calibration_intercept`` rows: ``cv_mean`` is the mean over CV repeats,
``cv_sd`` the spread across repeats (fold assignment only; NaN with one
repeat), ``n_splits`` the number of repeats with a finite fit, and the 95%
interval ``cv_mean ± 1.96 se`` with ``se`` the repeats' root-mean-square Wald
standard error. The repeats predict the same samples, so averaging them does
not shrink the sampling error, and the spread across repeats alone would
miss it; the Wald error treats the predictions as fixed, so it leaves out the
variation of the trained models. The ``holdout`` column stays the holdout
split's own value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import ndtri

from .errors import PanelMlpError
from .metrics import calibration_fit, logit

CALIBRATION = ("calibration_slope", "calibration_intercept")
"""summary.tsv's metrics that come from the pooled out-of-fold predictions."""

POOLED_COLUMNS = ["collection", "panel", "model", "repeat", *CALIBRATION, "slope_se", "intercept_se", "n_samples"]
"""Columns of :func:`pooled_calibration`'s table."""

_REPEAT = re.compile(r"^cv_r(\d+)_f\d+$")


def wald_se(y: np.ndarray, p: np.ndarray, slope: float, intercept: float) -> tuple[float, float]:
    """Wald standard errors of :func:`panelmlp.metrics.calibration_fit`'s slope and intercept.

    The slope's from the inverse Fisher information of the joint fit ``a + b
    logit(p)`` at its maximum (its ``a`` refitted here); the intercept's from
    the offset fit, ``1 / sqrt(sum w)``. NaN where the estimate is.
    """
    y = np.asarray(y, dtype=np.float64)
    z = logit(p)
    slope_se = intercept_se = math.nan
    if math.isfinite(intercept):
        mu = 1.0 / (1.0 + np.exp(-(intercept + z)))
        info = float(np.sum(mu * (1.0 - mu)))
        intercept_se = 1.0 / math.sqrt(info) if info > 0 else math.nan
    if math.isfinite(slope):
        # a of the joint fit: one-dimensional Newton with b fixed at the slope
        a = 0.0
        for _ in range(100):
            mu = 1.0 / (1.0 + np.exp(-(a + slope * z)))
            w = mu * (1.0 - mu)
            step = float(np.sum(y - mu)) / max(float(w.sum()), 1e-300)
            a += step
            if abs(step) < 1e-12:
                break
        mu = 1.0 / (1.0 + np.exp(-(a + slope * z)))
        w = mu * (1.0 - mu)
        h00, h01, h11 = float(w.sum()), float(w @ z), float(w @ (z * z))
        det = h00 * h11 - h01 * h01
        slope_se = math.sqrt(h00 / det) if det > 0 else math.nan
    return slope_se, intercept_se


def _positive_class(frame: pd.DataFrame) -> str | None:
    """The positive class of binary predictions, read from the decision rule (predicted when probability >= 0.5)."""
    above = frame.loc[frame["probability"] >= 0.5, "predicted_label"].dropna().unique()
    if len(above):
        return str(above[0])
    below = set(frame.loc[frame["probability"] < 0.5, "predicted_label"].dropna().unique())
    others = sorted(set(frame["true_label"].dropna().unique()) - below)
    return str(others[0]) if others else None


def _fit(y: np.ndarray, p: np.ndarray, constant_within_splits: bool) -> tuple[float, float, float, float]:
    """Slope, intercept and their Wald errors; no slope when every split's predictions are constant (majority)."""
    slope, intercept = calibration_fit(y, p)
    if constant_within_splits:
        slope = math.nan  # the pooled spread is only the folds' class shares: no ranking to recalibrate
    slope_se, intercept_se = wald_se(y, p, slope, intercept)
    return slope, intercept, slope_se, intercept_se


def _codes(column: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """A column's integer codes by first appearance and its distinct values (missing: code -1)."""
    codes, uniques = pd.factorize(column)
    return codes.astype(np.int64), np.asarray(uniques, dtype=object)


def _repeat_of(split_ids: np.ndarray) -> np.ndarray:
    """The CV repeat of each distinct split id (``cv_r{repeat}_f{fold}``), NaN where it is none; one more NaN
    last, which a missing split id's code, -1, picks."""
    found = [_REPEAT.match(str(s)) for s in split_ids]
    return np.array([float(m.group(1)) if m else math.nan for m in found] + [math.nan])


def pooled_calibration(predictions: pd.DataFrame) -> pd.DataFrame:
    """Slope and intercept of each (collection, panel, model, CV repeat)'s pooled test predictions, with Wald errors.

    ``predictions`` is predictions.parquet (fit.py): the CV rows (split ids
    ``cv_r{repeat}_f{fold}``) are pooled per repeat, where each sample must
    appear once. Two classes: of the positive class (``probability``). More
    classes: the mean over classes of the one-vs-rest values of the
    ``prob_<class>`` columns (and of their standard errors). A regression
    target has none: an empty table.

    Groups are numbered once on integer codes (the repeat parsed once per
    distinct split id) and every table column is read as numpy once: pandas'
    grouping and regex on the text columns cost more than the fits in a screen.
    """
    if "true_label" not in predictions or not len(predictions):
        return pd.DataFrame(columns=POOLED_COLUMNS)
    cv = predictions[predictions["kind"] == "cv"]
    split_codes, split_ids = _codes(cv["split_id"])
    repeat = _repeat_of(split_ids)[split_codes]
    cv = cv[~np.isnan(repeat)]
    split_codes, repeat = split_codes[~np.isnan(repeat)], repeat[~np.isnan(repeat)].astype(np.int64)
    collections = cv["collection"].fillna("").astype(str) if "collection" in cv else pd.Series("", index=cv.index)
    class_columns = [c for c in cv.columns if c.startswith("prob_")]
    positive = None if class_columns else _positive_class(cv)
    # one code per (collection, panel, model, repeat), numbered by first appearance as groupby(sort=False)
    parts = [_codes(collections), _codes(cv["panel"]), _codes(cv["model"])]
    combined = np.zeros(len(cv), dtype=np.int64)
    for codes, uniques in parts:
        combined = combined * (len(uniques) + 1) + codes + 1  # + 1: a missing value (-1) is a value of its own
    combined = combined * (int(repeat.max()) + 1 if len(repeat) else 1) + repeat
    group, _ = pd.factorize(combined)
    n_groups = int(group.max()) + 1 if len(group) else 0
    sample_codes, samples = _codes(cv["sample_id"])
    twice = pd.Series(group * (len(samples) + 1) + sample_codes + 1).duplicated().to_numpy()
    key_values = [
        collections.to_numpy(dtype=object),
        cv["panel"].to_numpy(dtype=object),
        cv["model"].to_numpy(dtype=object),
        repeat,
    ]
    if twice.any():
        at = int(np.argmax(twice))
        collection, panel, model, rep = (k[at] for k in key_values)
        raise PanelMlpError(
            f"predictions of {collection + '/' if collection else ''}{panel}, {model}, CV repeat {int(rep)}: "
            "a sample is predicted twice in one repeat (predictions.parquet from two runs?); "
            "rerun snakemake with --forcerun fit"
        )
    value_columns = class_columns or ["probability"]
    values = {c: cv[c].to_numpy(np.float64) for c in value_columns}
    # per group and column: whether every split's predictions are one value (the majority baseline)
    flat_all = np.column_stack([_constant_within(group, split_codes, values[c], n_groups) for c in value_columns])
    order, starts, ends = _group_runs(group)
    truth_all = cv["true_label"].astype(str).to_numpy()
    rows = []
    for g, (start, end) in enumerate(zip(starts, ends, strict=True)):
        at = order[start:end]
        collection, panel, model, rep = (k[at[0]] for k in key_values)
        truth = truth_all[at]
        flat = dict(zip(value_columns, flat_all[g], strict=True))
        if class_columns:
            fits = [
                _fit(truth == column[len("prob_") :], values[column][at], bool(flat[column]))
                for column in class_columns
            ]
            slope, intercept, slope_se, intercept_se = (float(v) for v in np.mean(fits, axis=0))
        elif positive is not None:
            slope, intercept, slope_se, intercept_se = _fit(
                truth == positive, values["probability"][at], bool(flat["probability"])
            )
        else:
            slope = intercept = slope_se = intercept_se = math.nan
        rows.append([collection, panel, model, int(rep), slope, intercept, slope_se, intercept_se, len(at)])
    return pd.DataFrame(rows, columns=POOLED_COLUMNS)


def _group_runs(group: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows by group number (stable; a group of -1, a missing key, left out as groupby does) and where each
    group's run starts and ends in that order."""
    order = np.argsort(group, kind="stable")
    order = order[group[order] >= 0]
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0]) if len(order) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(order)] if len(starts) else starts
    return order, starts, ends


def _constant_within(group: np.ndarray, split: np.ndarray, values: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group: whether each of its splits predicts at most one distinct value (missing values left out)."""
    ok = ~np.isnan(values)
    cell = group[ok] * (int(split.max()) + 2 if len(split) else 1) + split[ok] + 1
    order = np.lexsort((values[ok], cell))
    cell, sorted_values = cell[order], values[ok][order]
    # a new value within the same (group, split) cell breaks the group's constancy
    differs = (cell[1:] == cell[:-1]) & (sorted_values[1:] != sorted_values[:-1])
    constant = np.ones(n_groups, dtype=bool)
    constant[group[ok][order][1:][differs]] = False
    return constant


def summarise_pooled(pooled: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per (collection, panel, model, metric): mean over repeats, sd across repeats, Wald interval, repeats with a fit.

    Groups in order of first appearance (as ``groupby(sort=False)``), each
    summarised on numpy slices: a pandas selection per group and metric cost
    more than the fits in a screen of many panels.
    """
    z = float(ndtri(0.5 + level / 2))
    columns = ["collection", "panel", "model", "metric", "cv_mean", "cv_sd", "ci_low", "ci_high", "n_splits"]
    keys = ["collection", "panel", "model"]
    if not len(pooled):
        return pd.DataFrame([], columns=columns)
    group = pooled.groupby(keys, sort=False).ngroup().to_numpy()
    order, starts, ends = _group_runs(group)
    key_values = [pooled[c].to_numpy(dtype=object) for c in keys]
    numbers = {c: pooled[c].to_numpy(np.float64) for c in (*CALIBRATION, "slope_se", "intercept_se")}
    rows = []
    for start, end in zip(starts, ends, strict=True):
        at = order[start:end]
        collection, panel, model = (k[at[0]] for k in key_values)
        for metric, se_column in zip(CALIBRATION, ("slope_se", "intercept_se"), strict=True):
            ok = at[np.isfinite(numbers[metric][at])]
            values = numbers[metric][ok]
            mean = float(values.mean()) if len(values) else math.nan
            sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
            se = float(np.sqrt(np.nanmean(numbers[se_column][ok] ** 2))) if len(values) else math.nan
            rows.append([collection, panel, model, metric, mean, sd, mean - z * se, mean + z * se, len(values)])
    return pd.DataFrame(rows, columns=columns)


def pooled_summary(summary: pd.DataFrame, metrics_paths: Sequence[str]) -> pd.DataFrame:
    """summary.tsv with its calibration rows from the pooled out-of-fold predictions (:func:`summarise_pooled`).

    Each unit's predictions.parquet lies beside its metrics.tsv (the fit job
    writes both into the unit's folder). A regression run is returned as is.
    """
    if not (summary["metric"].isin(CALIBRATION)).any():
        return summary
    parts = []
    for path in metrics_paths:
        source = Path(path).with_name("predictions.parquet")
        if not source.exists():
            raise PanelMlpError(
                f"{source}: missing (the fit job writes it beside {Path(path).name}); "
                f"rerun `snakemake --forcerun {path}` to refit it"
            )
        parts.append(pooled_calibration(pd.read_parquet(source)))
    parts = [p for p in parts if len(p)]
    pooled = summarise_pooled(pd.concat(parts, ignore_index=True)) if parts else None
    out = summary.copy()
    rows = out["metric"].isin(CALIBRATION)
    columns = ["cv_mean", "cv_sd", "ci_low", "ci_high", "n_splits"]
    out.loc[rows, columns] = math.nan
    out.loc[rows, "n_splits"] = 0
    if pooled is not None and len(pooled):
        keys = ["collection", "panel", "model", "metric"]
        indexed = pooled.set_index(keys)
        where = pd.MultiIndex.from_frame(out.loc[rows, keys].fillna({"collection": ""}).astype({"collection": str}))
        found = indexed.reindex(where)
        out.loc[rows, columns] = found[columns].to_numpy()
        out.loc[rows, "n_splits"] = found["n_splits"].fillna(0).to_numpy()
    out["n_splits"] = out["n_splits"].astype("int64")
    return out
