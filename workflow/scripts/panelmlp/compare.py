"""Summaries across splits: means with confidence intervals, and permutation p-values."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtrit

from .metrics import METRICS


def corrected_ci(values: np.ndarray, test_over_train: float, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean, sd and a confidence interval for a metric over repeated CV splits.

    CV folds share training rows, so their scores are correlated and the naive
    standard error is too small. This uses the corrected resampled t interval of
    Nadeau & Bengio (2003): variance ``(1/J + n_test/n_train) * s^2`` with J-1
    degrees of freedom. NaN values (a fold missing a class) are left out.
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    j = len(values)
    if j == 0:
        return (math.nan,) * 4
    mean = float(values.mean())
    if j == 1:
        return mean, math.nan, math.nan, math.nan
    sd = float(values.std(ddof=1))
    half = stdtrit(j - 1, 0.5 + level / 2) * math.sqrt((1 / j + test_over_train) * sd**2)
    return mean, sd, mean - half, mean + half


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """Empirical one-sided p-value with the add-one estimator: (1 + #{null >= observed}) / (N + 1)."""
    null = np.asarray(null, dtype=float)
    null = null[~np.isnan(null)]
    if len(null) == 0 or math.isnan(observed):
        return math.nan
    return float((1 + np.sum(null >= observed)) / (len(null) + 1))


def read_metrics(path: str) -> pd.DataFrame:
    """A metrics.tsv with names kept as text (a panel called ``NA`` stays ``NA``)."""
    return pd.read_csv(
        path,
        sep="\t",
        keep_default_na=False,
        na_values={m: ["", "nan", "NaN"] for m in METRICS},
        dtype={"panel": str, "model": str, "split_id": str, "kind": str},
    )


def summarise(metrics: pd.DataFrame, permutations: Mapping[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """One row per (panel, model, metric): CV mean, sd, 95% CI, number of splits, holdout value.

    The interval is clipped to the metric's range ([-1, 1] for MCC, [0, 1] otherwise).

    For the MLP's ROC-AUC, ``perm_p`` is the permutation p-value of its mean CV
    ROC-AUC against the mean CV ROC-AUC of each label-shuffled replicate, and
    ``n_permutations`` how many replicates there were (0: not run).
    """
    rows = []
    for (panel, model), part in metrics.groupby(["panel", "model"], sort=False):
        cv = part[part["kind"] == "cv"]
        holdout = part[part["kind"] == "holdout"]
        ratio = float((cv["n_test"] / cv["n_train"]).mean()) if len(cv) else math.nan
        for metric in METRICS:
            mean, sd, low, high = corrected_ci(cv[metric].to_numpy(), ratio)
            floor = -1.0 if metric == "mcc" else 0.0  # the interval stays inside the metric's range
            low, high = max(low, floor), min(high, 1.0)
            row = {
                "panel": panel,
                "model": model,
                "metric": metric,
                "cv_mean": mean,
                "cv_sd": sd,
                "ci_low": low,
                "ci_high": high,
                "n_splits": int(cv[metric].notna().sum()),
                "holdout": float(holdout[metric].iloc[0]) if len(holdout) else math.nan,
                "perm_p": math.nan,
                "n_permutations": 0,
            }
            if model == "mlp" and metric == "roc_auc" and permutations is not None and panel in permutations:
                perm = permutations[panel]
                if len(perm):
                    null = perm.groupby("permutation")["roc_auc"].mean().to_numpy()
                    row["perm_p"] = permutation_p_value(mean, null)
                    row["n_permutations"] = len(null)
            rows.append(row)
    return pd.DataFrame(rows)


def compare_step(metrics_paths: Sequence[str], permutation_paths: Sequence[str], out: str) -> pd.DataFrame:
    """Every panel's metrics.tsv -> summary.tsv: CV mean with 95% CI, holdout value, permutation p."""
    frames = [read_metrics(p) for p in metrics_paths]
    metrics = pd.concat(frames, ignore_index=True)
    perms = {}
    for frame, ppath in zip(frames, permutation_paths, strict=True):
        perms[frame["panel"].iloc[0]] = pd.read_parquet(ppath)
    summary = summarise(metrics, perms)
    summary.to_csv(out, sep="\t", index=False, float_format="%.6g")
    return summary
