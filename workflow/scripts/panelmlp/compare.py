"""Summaries across splits and panels: means with confidence intervals, p-values and q-values.

For every panel, model and metric, ``summary.tsv`` holds the mean over the CV
splits with its corrected resampled t interval and the holdout value. The
MLP's ROC-AUC (and every model's, for the t-test) gets three p-values, each
with a Benjamini-Hochberg q-value over all panels of the run:

- ``t_p``: the corrected resampled t-test (one-sided) of the mean CV ROC-AUC
  against 0.5, chance;
- ``perm_p``: the permutation test, against the same pipeline trained on
  shuffled labels (``evaluate.permutations``);
- ``random_p``: against random gene sets of the panel's size
  (``evaluate.random_panels``): is this panel better than random genes?

The empirical p-values use the add-one estimator, so they cannot fall below
``1 / (N + 1)`` with N replicates; with m panels a lone real signal needs
``m / (N + 1) < 0.05`` to reach q < 0.05. :func:`multiplicity_warnings` says
when N is too small for that.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit

from .errors import PanelMlpError
from .metrics import METRICS, REGRESSION_METRICS

log = logging.getLogger("panelmlp")

ALPHA = 0.05
"""The false discovery rate a panel's q-value must stay under to be called a signal."""

SUMMARY_COLUMNS = [
    "collection",
    "panel",
    "n_genes",
    "model",
    "metric",
    "cv_mean",
    "cv_sd",
    "ci_low",
    "ci_high",
    "n_splits",
    "holdout",
    "t_p",
    "t_q",
    "perm_p",
    "perm_q",
    "n_permutations",
    "random_p",
    "random_q",
    "random_pct",
    "n_random",
    "chance",
]
"""Columns of summary.tsv, in order (``chance``: the main metric's no-signal value, on its rows only)."""

MAIN_METRIC = {"classification": "roc_auc", "regression": "r2"}
"""The metric every verdict, test and ranking reads, by target kind."""

CHANCE = {"roc_auc": 0.5, "r2": 0.0}
"""The main metric's value without signal: ROC-AUC of a random ranking; R^2 of predicting the mean."""

METRIC_RANGE = {
    "mcc": (-1.0, 1.0),
    "r2": (-math.inf, 1.0),
    "rmse": (0.0, math.inf),
    "mae": (0.0, math.inf),
    "pearson": (-1.0, 1.0),
    "spearman": (-1.0, 1.0),
}
"""Range an interval is clipped to; [0, 1] for every other metric."""


def target_kind(metrics: pd.DataFrame) -> str:
    """``regression`` when the per-split metrics are a regression target's (R^2 and friends), else ``classification``."""
    return "regression" if "r2" in metrics.columns else "classification"


TEXT_COLUMNS = (
    "unit",
    "collection",
    "panel",
    "directory",
    "description",
    "model",
    "metric",
    "split_id",
    "kind",
    "status",
    "reason",
    "hint",
    "genes",
    "genes_missing",
    "grid_point",
    "score",
)
"""Columns of the workflow's tables that hold text, never numbers (a panel called ``NA`` stays ``NA``)."""

FLAG_COLUMNS = ("chosen",)
"""Columns of the workflow's tables that hold ``True``/``False``."""


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


def corrected_t_p(values: np.ndarray, test_over_train: float, null: float = 0.5) -> float:
    """One-sided p-value of the corrected resampled t-test that the mean exceeds ``null``.

    The same variance as :func:`corrected_ci`; ``t = (mean - null) / sqrt((1/J +
    n_test/n_train) s^2)`` on J-1 degrees of freedom. With no spread at all the
    test is decided by the mean alone (0 above ``null``, 1 otherwise).
    """
    values = np.asarray(values, dtype=float)
    values = values[~np.isnan(values)]
    j = len(values)
    if j < 2:
        return math.nan
    mean, sd = float(values.mean()), float(values.std(ddof=1))
    if sd == 0:
        return 0.0 if mean > null else 1.0
    t = (mean - null) / math.sqrt((1 / j + test_over_train) * sd**2)
    return float(stdtr(j - 1, -t))


def permutation_p_value(observed: float, null: np.ndarray) -> float:
    """Empirical one-sided p-value with the add-one estimator: (1 + #{null >= observed}) / (N + 1)."""
    null = np.asarray(null, dtype=float)
    null = null[~np.isnan(null)]
    if len(null) == 0 or math.isnan(observed):
        return math.nan
    return float((1 + np.sum(null >= observed)) / (len(null) + 1))


def percentile_in(observed: float, null: np.ndarray) -> float:
    """Where ``observed`` falls in ``null``, in percent: the share below it, ties counted half."""
    null = np.asarray(null, dtype=float)
    null = null[~np.isnan(null)]
    if len(null) == 0 or math.isnan(observed):
        return math.nan
    return float(100 * (np.sum(null < observed) + 0.5 * np.sum(null == observed)) / len(null))


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg q-values (step-up, monotone, capped at 1); NaN p-values stay NaN and do not count."""
    p = np.asarray(p, dtype=float)
    q = np.full(len(p), math.nan)
    ok = np.flatnonzero(~np.isnan(p))
    m = len(ok)
    if m == 0:
        return q
    order = ok[np.argsort(p[ok], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(np.minimum.accumulate(ranked[::-1])[::-1], 1.0)
    return q


def read_table(path: str) -> pd.DataFrame:
    """A TSV of the workflow with name columns kept as text, flags as booleans and the rest numeric."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column in FLAG_COLUMNS:
            frame[column] = frame[column] == "True"
        elif column not in TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
    return frame


def _null_means(
    nulls: pd.DataFrame, kind: str, keys: Sequence[str], metric: str = "roc_auc"
) -> dict[tuple, np.ndarray]:
    """Per key (e.g. panel or size), the mean over CV splits of ``metric`` for each null replicate."""
    part = nulls[nulls["kind"] == kind]
    if part.empty or metric not in part:
        return {}
    means = part.groupby([*keys, "replicate"], sort=True)[metric].mean()
    out: dict[tuple, np.ndarray] = {}
    for key, values in means.groupby(level=list(range(len(keys)))):
        out[key if isinstance(key, tuple) else (key,)] = values.to_numpy(np.float64)
    return out


def permutation_nulls(nulls: pd.DataFrame, metric: str = "roc_auc") -> dict[tuple[str, str], np.ndarray]:
    """Per ``(collection, panel)``, the mean CV ``metric`` (ROC-AUC, or R^2) of each label-shuffled replicate."""
    means = _null_means(nulls, "permutation", ["collection", "panel"], metric)
    return {(str(c), str(p)): v for (c, p), v in means.items()}


def random_pools(nulls: pd.DataFrame, metric: str = "roc_auc") -> dict[int, np.ndarray]:
    """Per panel size, the mean CV ``metric`` of each random gene set; a draw trained by several jobs counts once."""
    rows = nulls[nulls["kind"] == "random"].drop_duplicates(["size", "replicate", "split_id"])
    return {int(size): v for (size,), v in _null_means(rows, "random", ["size"], metric).items()}


def summarise(metrics: pd.DataFrame, nulls: pd.DataFrame | None = None, sizes: dict | None = None) -> pd.DataFrame:
    """One row per (collection, panel, model, metric): CV mean, sd, 95% CI, holdout value, p- and q-values.

    The interval is clipped to the metric's range ([-1, 1] for MCC, [0, 1]
    otherwise). ``nulls`` is the concatenated nulls.parquet of all units:
    permutation replicates per panel, random-panel replicates per size (the
    same draws may come from several jobs; each is counted once). ``sizes``
    maps ``(collection, panel)`` to the panel's number of genes.
    """
    if "collection" not in metrics:
        metrics = metrics.assign(collection="")
    kind = target_kind(metrics)
    main = MAIN_METRIC[kind]
    chance = CHANCE[main]
    metric_names = REGRESSION_METRICS if kind == "regression" else METRICS
    nulls = (
        nulls
        if nulls is not None
        else pd.DataFrame(columns=["kind", "collection", "panel", "size", "replicate", "split_id", main])
    )
    perms = permutation_nulls(nulls, main)
    randoms = random_pools(nulls, main)
    sizes = sizes or {}
    rows = []
    for (collection, panel, model), part in metrics.groupby(["collection", "panel", "model"], sort=False):
        cv = part[part["kind"] == "cv"]
        holdout = part[part["kind"] == "holdout"]
        ratio = float((cv["n_test"] / cv["n_train"]).mean()) if len(cv) else math.nan
        n_genes = sizes.get((collection, panel), math.nan)
        for metric in metric_names:
            values = cv[metric].to_numpy(np.float64)
            mean, sd, low, high = corrected_ci(values, ratio)
            floor, ceiling = METRIC_RANGE.get(metric, (0.0, 1.0))  # the interval stays inside the metric's range
            row = {
                "collection": collection,
                "panel": panel,
                "n_genes": n_genes,
                "model": model,
                "metric": metric,
                "cv_mean": mean,
                "cv_sd": sd,
                "ci_low": max(low, floor),
                "ci_high": min(high, ceiling),
                "n_splits": int(cv[metric].notna().sum()),
                "holdout": float(holdout[metric].iloc[0]) if len(holdout) else math.nan,
                "t_p": math.nan,
                "perm_p": math.nan,
                "n_permutations": 0,
                "random_p": math.nan,
                "random_pct": math.nan,
                "n_random": 0,
                "chance": chance if metric == main else math.nan,
            }
            if metric == main:
                row["t_p"] = corrected_t_p(values, ratio, null=chance)
            if metric == main and model == "mlp":
                null = perms.get((collection, panel))
                if null is not None and len(null):
                    row["perm_p"] = permutation_p_value(mean, null)
                    row["n_permutations"] = len(null)
                null = randoms.get(int(n_genes)) if not math.isnan(n_genes) else None
                if null is not None and len(null):
                    row["random_p"] = permutation_p_value(mean, null)
                    row["random_pct"] = percentile_in(mean, null)
                    row["n_random"] = len(null)
            rows.append(row)
    summary = pd.DataFrame(rows)
    for p_col, q_col in (("t_p", "t_q"), ("perm_p", "perm_q"), ("random_p", "random_q")):
        summary[q_col] = math.nan
        for (_model, metric), part in summary.groupby(["model", "metric"], sort=False):
            if metric == main:
                summary.loc[part.index, q_col] = benjamini_hochberg(part[p_col].to_numpy())
    return summary.reindex(columns=SUMMARY_COLUMNS)


def multiplicity_warnings(n_panels: int, permutations: int, random_panels: int) -> list[str]:
    """Warnings for empirical p-values that can never reach q < 0.05 with this many replicates and panels."""
    out = []
    for name, n, key in (
        ("permutation", permutations, "evaluate.permutations"),
        ("random-panel", random_panels, "evaluate.random_panels"),
    ):
        if n <= 0:
            continue
        floor = 1 / (n + 1)
        if floor >= ALPHA:
            out.append(
                f"{key}={n}: a {name} p-value cannot fall below 1/(N+1) = {floor:.3g}, so it can never reach {ALPHA}; "
                f"use at least {math.ceil(1 / ALPHA)} replicates"
            )
        elif n_panels > 1 and n_panels * floor >= ALPHA:
            need = math.ceil(n_panels / ALPHA) - 1
            out.append(
                f"{key}={n} with {n_panels} panels: a single panel's {name} q-value cannot fall below "
                f"m/(N+1) = {n_panels * floor:.3g}, so a lone signal cannot reach q < {ALPHA}; "
                f"use at least {need} replicates (about 20 per panel)"
            )
    return out


def compare_step(
    panel_paths: Sequence[str],
    metrics_paths: Sequence[str],
    null_paths: Sequence[str],
    summary_out: str,
    panels_out: str,
    permutations: int = 0,
    random_panels: int = 0,
) -> pd.DataFrame:
    """Every unit's tables -> summary.tsv (means, CIs, p- and q-values) and panels.tsv (every panel and skipped set)."""
    panels = pd.concat([read_table(p) for p in panel_paths], ignore_index=True)
    twice = panels[panels.duplicated(["collection", "panel"], keep=False)]
    if len(twice):
        names = sorted({f"{c}/{p}" if c else p for c, p in zip(twice["collection"], twice["panel"], strict=True)})
        raise PanelMlpError(
            f"gene sets {names[:5]} were fitted by two jobs (the GMT file changed during the run?); "
            "rerun snakemake so every set is fitted once"
        )
    for collection, part in panels[panels["collection"] != ""].groupby("collection", sort=False):
        if not (part["status"] == "kept").any():
            reasons = (
                part["reason"].str.split("; ").explode().str.replace(r"^\d+ genes? found", "n genes found", regex=True)
            )
            common = reasons.value_counts().index[0] if len(reasons) else "?"
            raise PanelMlpError(
                f"config panels.{collection}: none of its {len(part)} gene sets passes the filters "
                f"(most common reason: {common}); lower min_size or min_coverage, raise max_size, or check the gene names"
            )
    panels.to_csv(panels_out, sep="\t", index=False)
    frames = [read_table(p) for p in metrics_paths]
    metrics = pd.concat([f for f in frames if len(f)], ignore_index=True)
    nulls = pd.concat([pd.read_parquet(p) for p in null_paths], ignore_index=True)
    kept = panels[panels["status"] == "kept"]
    sizes = {(c, p): int(n) for c, p, n in zip(kept["collection"], kept["panel"], kept["n_found"], strict=True)}
    summary = summarise(metrics, nulls, sizes)
    summary.to_csv(summary_out, sep="\t", index=False, float_format="%.6g")
    for warning in multiplicity_warnings(len(kept), permutations, random_panels):
        log.warning("%s", warning)
    log.info("compare: %s", json.dumps({"panels": len(kept), "skipped": int(len(panels) - len(kept))}))
    return summary


def signal_level(row: dict | pd.Series) -> str:
    """The verdict on one panel's model from its main-metric row of summary.tsv (ROC-AUC, or R^2 for a regression target).

    Chance is the row's ``chance`` (0.5 for ROC-AUC, 0 for R^2). ``signal``: the 95% interval lies above chance, the t-test's q-value over all
    panels is below :data:`ALPHA`, and so is the permutation test's where it
    ran. ``unconfirmed``: the interval lies above 0.5 but a q-value is not
    below :data:`ALPHA` (with many panels, chance alone lifts some intervals
    above 0.5). ``below``: the interval lies under 0.5. ``none``: it includes
    0.5. ``unknown``: too few CV splits, or test sets lacking a class.
    """
    mean, low, high = float(row["cv_mean"]), float(row["ci_low"]), float(row["ci_high"])
    chance = float(row.get("chance", 0.5))
    chance = 0.5 if math.isnan(chance) else chance
    if math.isnan(mean) or math.isnan(low) or math.isnan(high):
        return "unknown"
    if low > chance:
        t_q = float(row.get("t_q", math.nan))
        if math.isnan(t_q):
            t_q = float(row.get("t_p", math.nan))
        if not t_q < ALPHA:
            return "unconfirmed"
        if int(row.get("n_permutations", 0) or 0) > 0 and not float(row.get("perm_q", math.nan)) < ALPHA:
            return "unconfirmed"
        return "signal"
    if high < chance:
        return "below"
    return "none"


def beats_random(row: dict | pd.Series) -> str:
    """Is the panel better than random gene sets of its size? ``yes`` (q < ALPHA), ``no``, or ``not run``."""
    if not int(row.get("n_random", 0) or 0):
        return "not run"
    q = float(row.get("random_q", math.nan))
    return "yes" if q < ALPHA else "no"
