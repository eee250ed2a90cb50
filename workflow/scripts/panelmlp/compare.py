"""Summaries across splits and panels: means with confidence intervals, p-values and q-values.

For every panel, model and metric, ``summary.tsv`` holds the mean over the CV
splits with its corrected resampled t interval and the holdout value. The
metrics, the main metric and its chance value are the target kind's
(:mod:`panelmlp.targets`, told from metrics.tsv's columns): ROC-AUC against
0.5 for classes, R^2 against 0 for a numeric target, Harrell's C-index against
0.5 for a survival target (whose ``td_auc_<h>`` per horizon are summarised
too). Every input is read, and summary.tsv and panels.tsv written, through
:mod:`panelmlp.tables`. The MLP's main metric (and every model's, for the
t-test) gets three p-values, each with a Benjamini-Hochberg q-value over all
panels of the run:

- ``t_p``: the corrected resampled t-test (one-sided) of the mean CV main
  metric against chance;
- ``perm_p``: the permutation test, against the same pipeline trained on
  shuffled labels (``evaluate.permutations``);
- ``random_p``: against random gene sets of the panel's size bin
  (``evaluate.random_panels``): is this panel better than random genes?

The empirical p-values use the add-one estimator, so they cannot fall below
``1 / (N + 1)`` with N replicates; with m panels a lone real signal needs
``m / (N + 1) < 0.05`` to reach q < 0.05. :func:`multiplicity_warnings` says
when N is too small for that. Where a panel scores above every random set of
its bin (its empirical p sits at the floor), the random-panel p is a tail p
fitted to the pool on the logit scale: the predictive t of a normal pool
(:func:`fitted_tail_p`), with fewer degrees of freedom where a leave-one-out
check at the pool's own top finds it heavier-tailed (:func:`tail_fit`), and
never below :data:`FITTED_FLOOR`; ``random_p_method`` says which was used.

Two questions, two calls (Goeman & Buhlmann 2007): the self-contained test
(t-test, and the permutation test where it ran) asks whether a panel's genes
predict; the competitive test (random panels) asks whether they predict better
than random genes of their size. ``call`` (:func:`panel_call`) is
``set-specific`` when both hold, ``predictive`` when only the first does, and
``none`` otherwise. :func:`screen_summary` gives the screen as a whole
(``verdict.json``): how many panels are predictive, how the random gene sets
of each size bin score (median, share above chance) and what share of them
would have been called predictive under the same rule.

"Set-specific" means "beats random gene sets of its size", not Goeman and
Bühlmann's competitive null exactly: random genes are sampled independently
of their correlation (Wu and Smyth 2012), and a random set may share genes
with the panel (which makes the test conservative).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import stdtr, stdtrit

from .errors import PanelMlpError
from .metrics import logit
from .randomsets import DEFAULT_BIN_WIDTH, pool_size
from .tables import COMPARE_PANELS, NULLS, PANELS, SUMMARY, read_tsv
from .tables import HORIZON_COLUMN as _HORIZON_COLUMN
from .tables import METRICS as METRICS_TABLE
from .targets import KINDS, TargetKind, kind_of_metrics

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
    "random_size",
    "random_p_method",
    "chance",
    "call",
]
"""Columns of summary.tsv, in order (``chance``: the main metric's no-signal value, on its rows only;
``random_size``: the size of the random pool a panel was compared with, its size bin; ``random_p_method``:
``empirical`` or ``fitted``; ``call``: ``set-specific``, ``predictive`` or ``none``, on the MLP's main-metric row)."""

CALLS = ("set-specific", "predictive", "none")
"""The values of summary.tsv's ``call``: both tests, the self-contained test only, neither."""

FIT_MIN = 20
"""The fewest random sets in a pool from which a tail p is fitted beyond the empirical floor."""

TAIL_TOP = 10
"""At most this many of a pool's best random sets are checked against the fitted tail (:func:`tail_fit`)."""

FITTED_FLOOR = 1e-6
"""The smallest fitted random-panel p: a panel further out is "far beyond every random set", with no exact p claimed."""

LOGIT_EPS = 1e-6
"""Scores are clipped this far inside their bounds before the logit (a pool may hold a ROC-AUC of 1)."""

MAIN_METRIC = {name: kind.main_metric for name, kind in KINDS.items()}
"""The metric every verdict, test and ranking reads, by target kind (from :mod:`panelmlp.targets`)."""

CHANCE = {kind.main_metric: kind.chance for kind in KINDS.values()}
"""The main metric's value without signal, by main metric: ROC-AUC and C-index of a random ranking 0.5, R^2 of
predicting the mean 0."""

METRIC_RANGE = {metric: bounds for kind in KINDS.values() for metric, bounds in kind.ranges.items()}
"""Range an interval is clipped to, where not [0, 1] (the Brier score and integrated Brier score included)."""


def target_kind(metrics: pd.DataFrame) -> str:
    """The name of the target kind whose metrics a per-split metrics table holds (:func:`panelmlp.targets.kind_of_metrics`)."""
    return kind_of_metrics(metrics.columns).name


def summary_metrics(kind: TargetKind, columns: Sequence[str]) -> list[str]:
    """The metrics summary.tsv holds for a kind: its own, then (survival) each horizon's ``td_auc_<h>`` found, by h."""
    horizons = sorted((int(m.group(1)), c) for c in columns if (m := _HORIZON_COLUMN.match(str(c))))
    return [*kind.metrics, *(c for _, c in horizons)]


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
    """A TSV of the workflow with name columns kept as text, flags as booleans and the rest numeric.

    Typed by every table's column names (:func:`panelmlp.tables.read_tsv`); a
    column no table knows stays text when it holds text.
    """
    return read_tsv(path)


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


PoolKey = tuple[str, int]
"""A random pool: its universe ('' = the cohort's genes, else the collection whose genes it is drawn from) and size."""


def _random_rows(nulls: pd.DataFrame) -> pd.DataFrame:
    """The random-panel rows of the nulls, each draw once (several jobs may train the same pool)."""
    rows = nulls[nulls["kind"] == "random"]
    collection = rows["collection"].fillna("").astype(str) if "collection" in rows else ""
    rows = rows.assign(collection=collection)
    return rows.drop_duplicates(["collection", "size", "replicate", "split_id"])


def random_pools(nulls: pd.DataFrame, metric: str = "roc_auc") -> dict[PoolKey, np.ndarray]:
    """Per pool ``(universe, size)``, the mean CV ``metric`` of each random gene set; a draw trained by several jobs counts once."""
    means = _null_means(_random_rows(nulls), "random", ["collection", "size"], metric)
    return {(str(u), int(s)): v for (u, s), v in means.items()}


def random_split_scores(nulls: pd.DataFrame, metric: str = "roc_auc") -> dict[PoolKey, np.ndarray]:
    """Per pool, ``[N, S]``: each random gene set's ``metric`` on each CV split (NaN where a split is absent)."""
    rows = _random_rows(nulls)
    if rows.empty or metric not in rows:
        return {}
    out: dict[PoolKey, np.ndarray] = {}
    for (universe, size), part in rows.groupby(["collection", "size"], sort=True):
        table = part.pivot(index="replicate", columns="split_id", values=metric)
        out[(str(universe), int(size))] = table.to_numpy(np.float64)
    return out


def pool_of(
    pools: Mapping[PoolKey, np.ndarray], collection: str, size: object, universe: str | None = None
) -> np.ndarray | None:
    """The pool a panel of ``collection`` is compared with at pool size ``size``; None when it was not drawn.

    ``universe`` is ``evaluate.random_universe``: ``collection`` (a collection's
    sets meet random sets of the collection's own genes, named panels the
    cohort's), ``cohort`` (every panel meets the cohort's), or None: inferred,
    a collection draws its own when any pool of its universe exists. A
    collection that draws its own never falls back to the cohort's pool of
    that size (a different universe): when its own is missing (the size bin is
    as large as its universe), the panel gets no random-panel p.
    """
    key = pool_key(pools, collection, size, universe)
    return None if key is None else pools.get(key)


def pool_key(
    pools: Mapping[PoolKey, np.ndarray], collection: str, size: object, universe: str | None = None
) -> PoolKey | None:
    """The key of the pool :func:`pool_of` looks up (whether drawn or not); None without a size."""
    try:
        n = int(size)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        return None
    collection = str(collection)
    if universe is None:
        own = bool(collection) and any(u == collection for u, _ in pools)
    else:
        own = bool(collection) and universe == "collection"
    return (collection, n) if own else ("", n)


def _tail_scale(values: np.ndarray, metric: str) -> np.ndarray:
    """Scores on an unbounded scale where a normal can fit them: logit for [0, 1] metrics, ``-log(1 - R^2)`` for R^2."""
    v = np.asarray(values, dtype=np.float64)
    if metric == "r2":
        return -np.log(np.clip(1.0 - v, LOGIT_EPS, None))
    if METRIC_RANGE.get(metric, (0.0, 1.0)) == (0.0, 1.0):
        return logit(v, LOGIT_EPS)
    return v


def _tail_t(value: float, scaled: np.ndarray) -> float:
    """The predictive t statistic of ``value`` against ``scaled`` (both on the tail scale); NaN when they do not vary.

    With n pool scores of mean m and sd s (ddof 1), one more draw from the
    same normal satisfies ``(x - m) / (s sqrt(1 + 1/n)) ~ t(n - 1)`` exactly:
    the uncertainty of m and s widens the tail (a plug-in normal does not, and
    is anti-conservative in small pools).
    """
    n = len(scaled)
    sd = float(scaled.std(ddof=1))
    if not sd > 0:
        return math.nan
    return (value - float(scaled.mean())) / (sd * math.sqrt(1 + 1 / n))


def fitted_tail_p(observed: float, null: np.ndarray, metric: str = "roc_auc", df: float | None = None) -> float:
    """One-sided tail p of ``observed`` under the predictive t of a random pool's scores on an unbounded scale.

    The pool's mean CV scores (ROC-AUC on the logit scale, R^2 as
    ``-log(1 - R^2)``): ``p = stdtr(df, -(T(observed) - mean) / (sd sqrt(1 + 1/n)))``
    with ``df = n - 1`` (exact for a normal pool) unless given (a heavier tail,
    :func:`tail_fit`). It reaches below the empirical floor ``1 / (N + 1)``,
    at the price of assuming the tail's shape. NaN with fewer than
    :data:`FIT_MIN` finite scores or none of them different.
    """
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    if len(null) < FIT_MIN or math.isnan(observed):
        return math.nan
    t = _tail_t(float(_tail_scale(np.array([observed]), metric)[0]), _tail_scale(null, metric))
    return math.nan if math.isnan(t) else float(stdtr(len(null) - 1 if df is None else df, -t))


def tail_top(n: int) -> int:
    """How many of a pool's best random sets :func:`tail_fit` checks: ``min(TAIL_TOP, N // 20)``, at least 1."""
    return max(1, min(TAIL_TOP, n // 20))


def _df_reaching(t: float, share: float, most: float) -> float:
    """The largest df in [1, ``most``] whose t tail at ``t`` is at least ``share`` (1 if none is)."""
    if stdtr(most, -t) >= share:
        return most
    if stdtr(1.0, -t) <= share:
        return 1.0
    from scipy.optimize import brentq  # here, not at the top: scipy.optimize adds ~0.2 s to every importer

    return math.exp(brentq(lambda log_df: stdtr(math.exp(log_df), -t) - share, 0.0, math.log(most)))


@dataclass(frozen=True)
class TailFit:
    """What the leave-one-out check at a pool's top found (:func:`tail_fit`); NaN fields when no tail is fitted."""

    df: float
    """Degrees of freedom of the t tail the fitted p uses: ``N - 1`` when the pool's top is no heavier than a normal's."""
    ratio: float
    """The largest ratio empirical / fitted p over the top sets under the plain predictive t (``N - 1`` df), floored at 1."""
    top: int
    """How many of the pool's best sets were checked."""


def tail_fit(null: np.ndarray, metric: str = "roc_auc") -> TailFit:
    """A leave-one-out check at the pool's own top, and the t tail heavy enough to cover it.

    For each of the pool's k best random sets (:func:`tail_top`), its score's
    predictive t statistic from the other N - 1 sets and its empirical upper
    tail p, the share of the pool at or above it (rank / N). ``ratio`` is the
    largest empirical / fitted p under the plain predictive t (a normal pool
    gives about 1; real pools of random gene sets are heavier-tailed). ``df``
    is the largest df whose t tail reaches every one of the k empirical p's
    (the smallest df over the k, at most ``N - 1``): at the checked points the
    fitted p is then never below the empirical one, and beyond them, where a
    panel above every random set is extrapolated to, the tail stays as heavy
    as the pool's top showed. A constant factor (the ratio) would not: a tail
    heavier than the normal's departs from it further out still. The smallest
    df, not the median, errs on the safe side; a normal pool pays for it with
    larger p-values beyond its top.
    """
    null = np.asarray(null, dtype=np.float64)
    null = null[np.isfinite(null)]
    n = len(null)
    if n < FIT_MIN:
        return TailFit(math.nan, math.nan, 0)
    scaled = _tail_scale(null, metric)
    order = np.argsort(-scaled, kind="stable")
    top = tail_top(n)
    dfs, ratios = [], []
    for i in order[:top]:
        t = _tail_t(float(scaled[i]), np.delete(scaled, i))
        if math.isnan(t):
            return TailFit(math.nan, math.nan, top)
        share = float(np.mean(scaled >= scaled[i]))
        fitted = float(stdtr(n - 2, -t))
        ratios.append(share / fitted if fitted > 0 else math.inf)
        dfs.append(_df_reaching(t, share, n - 1))
    return TailFit(float(min(dfs)), max(1.0, *ratios), top)


def random_p_value(
    observed: float, null: np.ndarray, metric: str = "roc_auc", tail: TailFit | None = None
) -> tuple[float, str]:
    """The random-panel p-value and how it was got: ``empirical`` (add-one), or ``fitted`` beyond every random set.

    When no random set reaches ``observed`` and the pool holds at least
    :data:`FIT_MIN` sets, the empirical p would be ``1 / (N + 1)`` whatever the
    margin. The fitted p replaces it where smaller: the predictive t tail
    (:func:`fitted_tail_p`) with the df of the pool's :func:`tail_fit`
    (``tail``, computed here when not given), never below
    :data:`FITTED_FLOOR` (far beyond every random set no exact probability is
    claimed).
    """
    empirical = permutation_p_value(observed, null)
    finite = np.asarray(null, dtype=np.float64)
    finite = finite[np.isfinite(finite)]
    if len(finite) >= FIT_MIN and not math.isnan(observed) and not np.any(finite >= observed):
        tail = tail_fit(finite, metric) if tail is None else tail
        fitted = fitted_tail_p(observed, finite, metric, tail.df) if not math.isnan(tail.df) else math.nan
        if not math.isnan(fitted):
            fitted = max(FITTED_FLOOR, fitted)
            if fitted < empirical:
                return fitted, "fitted"
    return empirical, "empirical"


def at_floor(p: object, method: object) -> bool:
    """Whether a random-panel p is the fitted floor: the panel lies far beyond every random set (:data:`FITTED_FLOOR`)."""
    try:
        value = float(p)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return str(method) == "fitted" and value <= FITTED_FLOOR


def random_p_text(p: object, method: object) -> str:
    """A random-panel p for the report: three significant digits, or ``< 1e-06`` at the fitted floor."""
    if at_floor(p, method):
        return f"< {FITTED_FLOOR:.0e}"
    value = float(p) if p is not None else math.nan  # type: ignore[arg-type]
    return "–" if math.isnan(value) else f"{value:.3g}"


def summarise(
    metrics: pd.DataFrame,
    nulls: pd.DataFrame | None = None,
    sizes: dict | None = None,
    bin_width: float = DEFAULT_BIN_WIDTH,
    random_universe: str | None = None,
) -> pd.DataFrame:
    """One row per (collection, panel, model, metric): CV mean, sd, 95% CI, holdout value, p- and q-values, call.

    The interval is clipped to the metric's range ([-1, 1] for MCC, [0, 1]
    otherwise). ``nulls`` is the concatenated nulls.parquet of all units:
    permutation replicates per panel, random-panel replicates per pool (the
    same draws may come from several jobs; each is counted once). ``sizes``
    maps ``(collection, panel)`` to the panel's number of genes; a panel meets
    the random pool of its size bin (``randomsets.pool_size`` with
    ``bin_width``, as the fit jobs drew them) and universe (:func:`pool_of`,
    ``random_universe`` as ``evaluate.random_universe``, inferred when None).
    """
    if "collection" not in metrics:
        metrics = metrics.assign(collection="")
    kind = kind_of_metrics(metrics.columns)
    main, chance = kind.main_metric, kind.chance
    metric_names = summary_metrics(kind, list(metrics.columns))
    nulls = (
        nulls
        if nulls is not None
        else pd.DataFrame(columns=["kind", "collection", "panel", "size", "replicate", "split_id", main])
    )
    perms = permutation_nulls(nulls, main)
    randoms = random_pools(nulls, main)
    tails: dict[int, TailFit] = {}  # per pool (by identity), its tail fit: computed once
    missing: set[tuple[str, int]] = set()
    sizes = sizes or {}
    rows = []
    # One pass over numpy columns: a screen of 5,000 panels has 15,000 (panel, model) groups, and a pandas
    # selection per group and metric would cost minutes. Groups in order of first appearance, as groupby(sort=False).
    group = metrics.groupby(["collection", "panel", "model"], sort=False).ngroup().to_numpy()
    order = np.argsort(group, kind="stable")
    order = order[group[order] >= 0]  # rows with a missing key belong to no group, as in groupby
    starts = np.flatnonzero(np.r_[True, np.diff(group[order]) != 0]) if len(order) else np.zeros(0, dtype=np.int64)
    ends = np.r_[starts[1:], len(order)] if len(starts) else starts
    key_columns = [metrics[c].to_numpy(dtype=object) for c in ("collection", "panel", "model")]
    kinds = metrics["kind"].to_numpy(dtype=object)
    test_share = (metrics["n_test"] / metrics["n_train"]).to_numpy(np.float64)
    columns = {m: metrics[m].to_numpy(np.float64) for m in metric_names}
    for start, end in zip(starts, ends, strict=True):
        at = order[start:end]
        collection, panel, model = (c[at[0]] for c in key_columns)
        cv, holdout = at[kinds[at] == "cv"], at[kinds[at] == "holdout"]
        ratio = float(pd.Series(test_share[cv]).mean()) if len(cv) else math.nan
        n_genes = sizes.get((collection, panel), math.nan)
        for metric in metric_names:
            values = columns[metric][cv]
            mean, sd, low, high = corrected_ci(values, ratio)
            floor, ceiling = kind.metric_range(metric)  # the interval stays inside the metric's range
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
                "n_splits": int(np.count_nonzero(~np.isnan(values))),
                "holdout": float(columns[metric][holdout[0]]) if len(holdout) else math.nan,
                "t_p": math.nan,
                "perm_p": math.nan,
                "n_permutations": 0,
                "random_p": math.nan,
                "random_pct": math.nan,
                "n_random": 0,
                "random_size": math.nan,
                "random_p_method": "",
                "chance": chance if metric == main else math.nan,
                "call": "",
            }
            if metric == main:
                row["t_p"] = corrected_t_p(values, ratio, null=chance)
            if metric == main and model == "mlp":
                null = perms.get((collection, panel))
                if null is not None and len(null):
                    row["perm_p"] = permutation_p_value(mean, null)
                    row["n_permutations"] = len(null)
                size = pool_size(int(n_genes), bin_width) if not math.isnan(n_genes) else None
                key = pool_key(randoms, collection, size, random_universe)
                null = None if key is None else randoms.get(key)
                if null is None and key is not None and key[0]:
                    missing.add(key)
                if null is not None and len(null):
                    tail = tails.setdefault(id(null), tail_fit(null, main))
                    row["random_p"], row["random_p_method"] = random_p_value(mean, null, main, tail)
                    row["random_pct"] = percentile_in(mean, null)
                    row["n_random"] = len(null)
                    row["random_size"] = size
            rows.append(row)
    for universe, size in sorted(missing):
        log.warning(
            "no random gene sets of %d genes were drawn from collection %s's genes (evaluate.random_universe: "
            "collection; the bin is as large as its universe?), so its sets of that size bin get no random-panel p; "
            "they are not compared with the cohort's pool, a different universe",
            size,
            universe,
        )
    summary = pd.DataFrame(rows)
    for p_col, q_col in (("t_p", "t_q"), ("perm_p", "perm_q"), ("random_p", "random_q")):
        summary[q_col] = math.nan
        for (_model, metric), part in summary.groupby(["model", "metric"], sort=False):
            if metric == main:
                summary.loc[part.index, q_col] = benjamini_hochberg(part[p_col].to_numpy())
    mains = (summary["model"] == "mlp") & (summary["metric"] == main)
    summary.loc[mains, "call"] = [panel_call(row) for _, row in summary[mains].iterrows()]
    return summary.reindex(columns=SUMMARY_COLUMNS)


def multiplicity_warnings(
    n_panels: int, permutations: int, random_panels: int, random_family: int | None = None
) -> list[str]:
    """Warnings for empirical p-values that can never reach q < 0.05 with this many replicates and panels.

    The permutation family is ``n_panels``; the random-panel family is
    ``random_family``, the panels that have a random-panel p-value (``all``
    and panels as large as the gene universe have none), ``n_panels`` when not
    given.
    """
    out = []
    for name, n, key, family in (
        ("permutation", permutations, "evaluate.permutations", n_panels),
        ("random-panel", random_panels, "evaluate.random_panels", n_panels if random_family is None else random_family),
    ):
        if n <= 0 or family <= 0:
            continue
        floor = 1 / (n + 1)
        fitted = (
            "; a panel above every random set of its bin gets a fitted tail p instead (random_p_method: fitted), "
            "a t tail on the logit scale as heavy as the pool's own top, no smaller than "
            f"{FITTED_FLOOR:g}"
            if name == "random-panel" and n >= FIT_MIN
            else ""
        )
        if floor >= ALPHA:
            out.append(
                f"{key}={n}: a {name} p-value cannot fall below 1/(N+1) = {floor:.3g}, so it can never reach {ALPHA}; "
                f"use at least {math.ceil(1 / ALPHA)} replicates{fitted}"
            )
        elif family > 1 and family * floor >= ALPHA:
            need = math.floor(family / ALPHA + 1e-9)
            out.append(
                f"{key}={n} with {family} panels: a single panel's empirical {name} q-value cannot fall below "
                f"m/(N+1) = {family * floor:.3g}, so a lone signal cannot reach q < {ALPHA}; "
                f"use at least {need} replicates (about 20 per panel"
                + (", or evaluate.random_panels: auto" if name == "random-panel" else "")
                + f"){fitted}"
            )
    return out


def test_over_train(metrics: pd.DataFrame) -> float:
    """The mean ``n_test / n_train`` of the MLP's CV splits: the variance correction every panel's splits share."""
    cv = metrics[(metrics["kind"] == "cv") & (metrics["model"] == "mlp")]
    return float((cv["n_test"] / cv["n_train"]).mean()) if len(cv) else math.nan


def bh_threshold(p: Sequence[float], q: Sequence[float]) -> float:
    """The largest p-value Benjamini-Hochberg accepted (q < ALPHA); ``ALPHA / m`` when it accepted none.

    A further set with a p-value at most this would have been accepted too (to
    within one place in the ranking): the screen's own bar for ``predictive``.
    """
    p, q = np.asarray(p, dtype=np.float64), np.asarray(q, dtype=np.float64)
    ok = np.isfinite(p) & np.isfinite(q)
    if not ok.any():
        return math.nan
    accepted = p[ok & (q < ALPHA)]
    return float(accepted.max()) if len(accepted) else ALPHA / int(ok.sum())


def random_predictive(scores: np.ndarray, ratio: float, chance: float, threshold: float) -> np.ndarray:
    """Per random gene set (rows of ``[N, S]`` split scores), whether it is predictive on its own.

    The same rule as a panel's self-contained call, on its own splits: the
    corrected 95% interval lies above ``chance`` and the corrected t-test's p is
    at most ``threshold`` (:func:`bh_threshold` of the screen's t-test family).
    """
    out = np.zeros(len(scores), dtype=bool)
    for i, values in enumerate(np.asarray(scores, dtype=np.float64)):
        _mean, _sd, low, _high = corrected_ci(values, ratio)
        p = corrected_t_p(values, ratio, null=chance)
        out[i] = bool(low > chance) and bool(p <= threshold)
    return out


BROAD_MARGIN = {kind.main_metric: kind.broad_margin for kind in KINDS.values()}
"""From this margin of the random sets' median score over chance, the verdict speaks of a broad program."""

BROAD_ABOVE = 0.75
"""From this share of random sets scoring above chance, the verdict speaks of a broad program."""


def broad_program(median: float, share_above: float, metric: str = "roc_auc") -> bool:
    """Whether random gene sets carry the signal broadly: their median score is :data:`BROAD_MARGIN` above chance,
    or at least :data:`BROAD_ABOVE` of them score above chance.

    Based on the random sets' mean CV scores, not on how many pass the per-set
    test: with few CV splits that test has little power, and a program that
    most genes share can lift the typical random set well above chance while
    few random sets pass it on their own.
    """
    margin = median - CHANCE[metric] if math.isfinite(median) else -math.inf
    return bool(margin >= BROAD_MARGIN[metric] - 1e-12 or (math.isfinite(share_above) and share_above >= BROAD_ABOVE))


def _label(collection: str, panel: str) -> str:
    return f"{collection}/{panel}" if collection else str(panel)


def screen_summary(
    summary: pd.DataFrame, nulls: pd.DataFrame | None, ratio: float, random_plan: Mapping | None = None
) -> dict:
    """The screen as a whole, for ``verdict.json`` and the verdict's opening sentences.

    - ``n_panels``, ``n_predictive`` (the self-contained test holds: call
      ``predictive`` or ``set-specific``), ``n_set_specific`` and the panels' names;
    - ``random_pools``: per pool (universe, size bin), how many random gene
      sets were trained, how many are predictive on their own under the same
      rule as the panels (:func:`random_predictive`, at the screen's t-test
      threshold :func:`bh_threshold`; no permutation test, which random sets
      do not get), the share, how many panels it serves, the median of the
      random sets' mean CV scores (``median_score``) and the share of them
      above chance (``share_above_chance``), and the pool's :func:`tail_fit`
      (``tail_df``, ``tail_ratio``, ``tail_top``);
    - ``random_predictive_share``: that share per pool (``"14"``, or
      ``"hallmark:14"`` for a collection's own universe), and
      ``random_predictive_share_overall``, the shares weighted by the panels each
      pool serves. It measures the per-set test's power as much as the signal's
      breadth (with few CV splits a random set rarely passes on its own);
    - ``random_median_score_overall`` and ``random_share_above_chance_overall``:
      the pools' ``median_score`` and ``share_above_chance`` weighted the same
      way, how broadly random genes carry the signal (:data:`BROAD_MARGIN`,
      :data:`BROAD_ABOVE`);
    - ``families``: the size of each test's family (panels with a p-value);
    - ``thresholds`` and ``random_plan`` (how N was chosen).
    """
    kind = kind_of_metrics(summary["metric"])
    main_metric, chance = kind.main_metric, kind.chance
    mains = summary[(summary["model"] == "mlp") & (summary["metric"] == main_metric)]
    calls = mains["call"].fillna("").astype(str)
    names = [_label(c, p) for c, p in zip(mains["collection"], mains["panel"], strict=True)]
    predictive = [n for n, c in zip(names, calls, strict=True) if c in ("predictive", "set-specific")]
    specific = [n for n, c in zip(names, calls, strict=True) if c == "set-specific"]
    threshold = bh_threshold(mains["t_p"].to_numpy(), mains["t_q"].to_numpy())
    split_scores = random_split_scores(nulls, main_metric) if nulls is not None else {}
    pools = []
    shares: dict[str, float] = {}
    weighted, served_total = 0.0, 0
    compared = mains[mains["n_random"] > 0]
    universe_setting = (random_plan or {}).get("universe")
    serving = [  # the pool each compared panel met (pool_key: its collection's own universe, or the cohort's)
        pool_key(split_scores, c, n, universe_setting)
        for c, n in zip(compared["collection"], compared["random_size"], strict=True)
    ]
    medians, above = [0.0, 0], [0.0, 0]
    for (universe, size), scores in sorted(split_scores.items()):
        flags = random_predictive(scores, ratio, chance, threshold) if math.isfinite(threshold) else np.zeros(0, bool)
        share = float(flags.mean()) if len(flags) else math.nan
        served = serving.count((universe, size))
        key = f"{universe}:{size}" if universe else str(size)
        shares[key] = share
        means = np.nanmean(scores, axis=1) if scores.size else np.zeros(0)
        means = means[np.isfinite(means)]
        median = float(np.median(means)) if len(means) else math.nan
        share_above = float(np.mean(means > chance)) if len(means) else math.nan
        tail = tail_fit(means, main_metric)
        pools.append(
            {
                "universe": universe or "cohort",
                "size": size,
                "n_random": len(scores),
                "n_predictive": int(flags.sum()),
                "share": share,
                "panels": served,
                "median_score": median,
                "share_above_chance": share_above,
                "tail_df": tail.df,
                "tail_ratio": tail.ratio,
                "tail_top": tail.top,
            }
        )
        if served and math.isfinite(share):
            weighted += share * served
            served_total += served
        if served and math.isfinite(median):
            medians = [medians[0] + median * served, medians[1] + served]
            above = [above[0] + share_above * served, above[1] + served]
    methods = mains["random_p_method"].fillna("").astype(str)
    return {
        "metric": main_metric,
        "chance": chance,
        "n_panels": len(mains),
        "n_predictive": len(predictive),
        "n_set_specific": len(specific),
        "n_none": int(len(mains) - len(predictive)),
        "predictive": predictive,
        "set_specific": specific,
        "random_predictive_share": shares,
        "random_predictive_share_overall": weighted / served_total if served_total else math.nan,
        "random_median_score_overall": medians[0] / medians[1] if medians[1] else math.nan,
        "random_share_above_chance_overall": above[0] / above[1] if above[1] else math.nan,
        "broad": broad_program(
            medians[0] / medians[1] if medians[1] else math.nan,
            above[0] / above[1] if above[1] else math.nan,
            main_metric,
        ),
        "random_pools": pools,
        "random_p_method": {m: int((methods == m).sum()) for m in ("empirical", "fitted")},
        "families": {
            "t_test": int(mains["t_p"].notna().sum()),
            "permutation": int(mains["perm_p"].notna().sum()),
            "random_panel": int(mains["random_p"].notna().sum()),
        },
        "thresholds": {
            "alpha": ALPHA,
            "q": f"Benjamini-Hochberg q < {ALPHA} within each test's family",
            "interval": f"corrected 95% interval above {chance:g}",
            "predictive": "interval above chance, t_q < 0.05 and, where permutations ran, perm_q < 0.05",
            "set_specific": "predictive, and random_q < 0.05",
            "random_t_p": threshold,
            "random_rule": (
                "a random gene set is predictive on its own when its corrected 95% interval over its CV splits lies "
                "above chance and its corrected t-test p is at most random_t_p, the largest t_p the screen's "
                "Benjamini-Hochberg procedure accepted (0.05 / m when it accepted none)"
            ),
            "test_over_train": ratio,
            "fitted_floor": FITTED_FLOOR,
            "broad": (
                f"random sets' median mean CV score at least {BROAD_MARGIN[main_metric]:g} above chance, "
                f"or at least {BROAD_ABOVE:.0%} of them above chance"
            ),
        },
        "random_plan": dict(random_plan) if random_plan else None,
    }


def _json_ready(value: object) -> object:
    """NaN as null, numpy numbers as Python numbers, recursively."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def compare_step(
    panel_paths: Sequence[str],
    metrics_paths: Sequence[str],
    null_paths: Sequence[str],
    summary_out: str,
    panels_out: str,
    permutations: int = 0,
    random_panels: int = 0,
    verdict_out: str | None = None,
    random_bin_width: float = DEFAULT_BIN_WIDTH,
    random_plan: Mapping | None = None,
) -> pd.DataFrame:
    """Every unit's tables -> summary.tsv (means, CIs, p- and q-values, calls), panels.tsv and verdict.json."""
    panels = pd.concat([PANELS.read(p) for p in panel_paths], ignore_index=True)
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
    COMPARE_PANELS.write(panels, panels_out)
    frames = [METRICS_TABLE.read(p) for p in metrics_paths]  # each holds its kind's metrics, or stops the step
    metrics = pd.concat([f for f in frames if len(f)], ignore_index=True)
    nulls = pd.concat([NULLS.read(p) for p in null_paths], ignore_index=True)
    kept = panels[panels["status"] == "kept"]
    sizes = {(c, p): int(n) for c, p, n in zip(kept["collection"], kept["panel"], kept["n_found"], strict=True)}
    universe = (random_plan or {}).get("universe")
    summary = summarise(metrics, nulls, sizes, random_bin_width, universe)
    from .calibration import pooled_summary  # calibration rows: each CV repeat's pooled out-of-fold predictions

    summary = pooled_summary(summary, metrics_paths)
    SUMMARY.write(summary, summary_out)
    if random_plan:
        log.info("random panels: %s", random_plan.get("describe") or json.dumps(_json_ready(dict(random_plan))))
    main = summary[(summary["model"] == "mlp") & (summary["chance"].notna())]
    family = int(main["random_p"].notna().sum())
    for warning in multiplicity_warnings(len(kept), permutations, random_panels, family):
        log.warning("%s", warning)
    screen = screen_summary(summary, nulls, test_over_train(metrics), random_plan)
    if verdict_out:
        with open(verdict_out, "w", encoding="utf-8") as handle:
            json.dump(_json_ready(screen), handle, indent=2)
            handle.write("\n")
    log.info(
        "compare: %s",
        json.dumps(
            _json_ready(
                {
                    "panels": len(kept),
                    "skipped": int(len(panels) - len(kept)),
                    "predictive": screen["n_predictive"],
                    "set_specific": screen["n_set_specific"],
                    "random_predictive_share": screen["random_predictive_share"],
                }
            )
        ),
    )
    return summary


def self_contained(row: dict | pd.Series) -> bool:
    """The self-contained test holds: the interval lies above chance, t_q < ALPHA and, where permutations ran, perm_q < ALPHA."""
    low = float(row.get("ci_low", math.nan))
    chance = float(row.get("chance", 0.5))
    chance = 0.5 if math.isnan(chance) else chance
    if not low > chance:
        return False
    t_q = float(row.get("t_q", math.nan))
    if math.isnan(t_q):
        t_q = float(row.get("t_p", math.nan))
    if not t_q < ALPHA:
        return False
    return not (int(row.get("n_permutations", 0) or 0) > 0 and not float(row.get("perm_q", math.nan)) < ALPHA)


def panel_call(row: dict | pd.Series) -> str:
    """``set-specific`` (self-contained and competitive tests both hold), ``predictive`` (the first only), or ``none``.

    The competitive test holds when random panels ran for the panel and its
    ``random_q`` (over the panels with a random-panel p) is below ALPHA.
    """
    if not self_contained(row):
        return "none"
    if int(row.get("n_random", 0) or 0) > 0 and float(row.get("random_q", math.nan)) < ALPHA:
        return "set-specific"
    return "predictive"


def signal_level(row: dict | pd.Series) -> str:
    """The verdict on one panel's model from its main-metric row of summary.tsv (ROC-AUC, or R^2 for a regression target).

    Chance is the row's ``chance`` (0.5 for ROC-AUC, 0 for R^2).
    ``set-specific`` and ``predictive``: see :func:`panel_call`.
    ``unconfirmed``: the interval lies above chance but a q-value of the
    self-contained test is not below :data:`ALPHA` (with many panels, chance
    alone lifts some intervals above chance). ``below``: the interval lies
    under chance. ``none``: it includes chance. ``unknown``: too few CV
    splits, or test sets lacking a class.
    """
    mean, low, high = float(row["cv_mean"]), float(row["ci_low"]), float(row["ci_high"])
    chance = float(row.get("chance", 0.5))
    chance = 0.5 if math.isnan(chance) else chance
    if math.isnan(mean) or math.isnan(low) or math.isnan(high):
        return "unknown"
    if low > chance:
        return panel_call(row) if self_contained(row) else "unconfirmed"
    if high < chance:
        return "below"
    return "none"


def beats_random(row: dict | pd.Series) -> str:
    """Is the panel better than random gene sets of its size? ``yes`` (q < ALPHA), ``no``, or ``not run``."""
    if not int(row.get("n_random", 0) or 0):
        return "not run"
    q = float(row.get("random_q", math.nan))
    return "yes" if q < ALPHA else "no"
