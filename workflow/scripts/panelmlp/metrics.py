"""Classification and regression metrics of one split's test predictions.

Plain numpy implementations of scikit-learn's definitions (tests check every
one against scikit-learn on the same predictions), with one difference: the
multi-class Brier score (:func:`brier_score`) is scikit-learn's
``brier_score_loss`` (1.9: Brier's sum over classes, in [0, 2]) divided by
the number of classes, so it stays in [0, 1]; with two classes the two agree.
scikit-learn's input validation costs about 60 ms per split, which is most of
an evaluate job.

Thresholded metrics (accuracy, balanced accuracy, precision, recall, F1, MCC
and the confusion counts) follow :func:`predicted_classes`: the positive class
when its probability is at least 0.5 with two classes, the most probable class
with more. Calibration (TRIPOD+AI items 12e and 15) is measured by the Brier
score and by logistic recalibration (:func:`calibration_fit`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

METRICS = (
    "accuracy",
    "balanced_accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "mcc",
    "brier",
    "calibration_slope",
    "calibration_intercept",
)
"""Metric columns of metrics.tsv for class labels, in order."""

PROBABILITY_EPS = 1e-12
"""Probabilities are clipped to [eps, 1 - eps] before their logit is taken (0 and 1 have none)."""


def roc_auc(y: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve of a binary 0/1 ``y``: the Mann-Whitney statistic, ties counted half."""
    y = np.asarray(y).astype(bool)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(score, kind="mergesort")
    _, inverse, counts = np.unique(np.asarray(score)[order], return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2
    ranks = np.empty(len(y))
    ranks[order] = average_rank[inverse]
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(y: np.ndarray, score: np.ndarray) -> float:
    """Average precision (scikit-learn's PR-AUC): sum over thresholds of (R_n - R_n-1) * P_n."""
    if np.sum(y) == 0:
        return math.nan
    tps, fps = _ranked_counts(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def _ranked_counts(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True and false positives at each distinct score threshold, highest threshold first."""
    order = np.argsort(-np.asarray(score), kind="mergesort")
    ranked = np.asarray(score)[order]
    last_of_tie = np.append(np.flatnonzero(np.diff(ranked)), len(ranked) - 1)  # np.r_ costs 10x more
    tps = np.cumsum(np.asarray(y, dtype=float)[order])[last_of_tie]
    return tps, last_of_tie + 1 - tps


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """False and true positive rates of the ROC curve, from (0, 0) (scikit-learn's, keeping every point)."""
    tps, fps = _ranked_counts(y, score)
    return np.r_[0.0, fps / fps[-1]], np.r_[0.0, tps / tps[-1]]


def pr_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall of the precision-recall curve, as scikit-learn's ``precision_recall_curve``."""
    tps, fps = _ranked_counts(y, score)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den, 0 where den is 0 (scikit-learn's ``zero_division=0``)."""
    num, den = np.asarray(num, float), np.asarray(den, float)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def matthews(confusion: np.ndarray) -> float:
    """Matthews correlation coefficient from a confusion matrix (rows true, columns predicted)."""
    confusion = np.asarray(confusion, dtype=float)
    n = confusion.sum()
    correct = np.trace(confusion)
    true, pred = confusion.sum(axis=1), confusion.sum(axis=0)
    denominator = math.sqrt((n**2 - pred @ pred) * (n**2 - true @ true))
    return 0.0 if denominator == 0 else float((correct * n - true @ pred) / denominator)


def predicted_classes(proba: np.ndarray) -> np.ndarray:
    """The decision rule: class 1 when its probability is at least 0.5 (two classes), else the most probable."""
    proba = np.asarray(proba)
    return (proba[:, 1] >= 0.5).astype(int) if proba.shape[1] == 2 else proba.argmax(axis=1)


def logit(p: np.ndarray, eps: float = PROBABILITY_EPS) -> np.ndarray:
    """``log(p / (1 - p))`` of probabilities clipped to [``eps``, 1 - ``eps``] (default :data:`PROBABILITY_EPS`)."""
    p = np.clip(np.asarray(p, dtype=np.float64), eps, 1.0 - eps)
    return np.log(p) - np.log1p(-p)


def brier_score(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Brier score of class probabilities ``proba`` ``[n, C]``: 0 is perfect, lower is better.

    Two classes: the mean squared difference between the positive class's
    probability and the 0/1 outcome (scikit-learn's ``brier_score_loss``).
    More classes: the mean over classes of each class's one-vs-rest Brier
    score, which is Brier's (1950) multi-class sum divided by the number of
    classes, so every run's value lies in [0, 1] and two classes give the same
    number either way. Predicting the class shares scores ``sum p_c (1 - p_c) / C``.
    """
    y = np.asarray(y_true).astype(int)
    proba = np.asarray(proba, dtype=np.float64)
    if len(y) == 0:
        return math.nan
    if proba.shape[1] == 2:
        return float(np.mean((proba[:, 1] - y) ** 2))
    onehot = np.arange(proba.shape[1]) == y[:, None]
    return float(np.mean((proba - onehot) ** 2))


def _logistic_newton(y: np.ndarray, z: np.ndarray, fit_slope: bool) -> tuple[float, float] | None:
    """Maximum likelihood ``(a, b)`` of ``P(y = 1) = sigmoid(a + b z)`` (``b`` fixed at 1 unless ``fit_slope``).

    Newton steps from ``(0, 1)`` with step halving (the log-likelihood is
    concave, so a short enough step always climbs); stops once a step moves no
    parameter by more than 1e-10, after which the quadratic convergence leaves
    the estimate far closer than that. None when it does not converge in 100 steps.
    :func:`_logistic_newton_rows` runs many of these fits at once, each bit for bit this one.
    """
    a, b = 0.0, 1.0
    eta = z.copy()
    current = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    for _ in range(100):
        mu = np.exp(-np.logaddexp(0.0, -eta))
        w = mu * (1.0 - mu)
        resid = y - mu
        g0, h00 = float(resid.sum()), float(w.sum())
        if fit_slope:
            wz = w * z
            g1, h01, h11 = float(resid @ z), float(wz.sum()), float(wz @ z)
            det = h00 * h11 - h01 * h01
            if not det > 0:
                return None
            da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
        else:
            if not h00 > 0:
                return None
            da, db = g0 / h00, 0.0
        if not (math.isfinite(da) and math.isfinite(db)):
            return None
        for _halving in range(60):
            trial = (a + da) + (b + db) * z
            value = float(np.sum(y * trial - np.logaddexp(0.0, trial)))
            if value >= current - 1e-12 * abs(current):
                break
            da, db = da / 2, db / 2
        a, b, eta, current = a + da, b + db, trial, value
        if max(abs(da), abs(db)) < 1e-10:
            return a, b
    return None


def row_dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``u[m] @ v[m]`` per row of two ``[M, n]`` arrays, by the same BLAS dot product as each row alone."""
    return np.matmul(u[:, None, :], v[:, :, None])[:, 0, 0]


def _logistic_newton_rows(y: np.ndarray, z: np.ndarray, fit_slope: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_logistic_newton` of each row of ``y`` and ``z`` ``[M, n]`` at once: ``(a [M], b [M])``, NaN where None.

    Every row takes the steps it would take alone, with the same floating-point
    operations in the same order (row sums of a C-ordered array and batched
    dot products round as the 1-D ones do), so each row's result is bit for
    bit the one-row fit; only the numpy calls are shared, which is what one
    fit of a 17-row test set costs. Rows drop out as they converge or fail.
    """
    m = len(y)
    a, b = np.zeros(m), np.ones(m)
    out_a, out_b = np.full(m, np.nan), np.full(m, np.nan)
    eta = z.copy()
    current = np.sum(y * eta - np.logaddexp(0.0, eta), axis=1)
    live = np.arange(m)
    for _ in range(100):
        if not len(live):
            break
        yy, zz, e = y[live], z[live], eta[live]
        mu = np.exp(-np.logaddexp(0.0, -e))
        w = mu * (1.0 - mu)
        resid = yy - mu
        g0, h00 = resid.sum(axis=1), w.sum(axis=1)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if fit_slope:
                wz = w * zz
                g1, h01, h11 = row_dot(resid, zz), wz.sum(axis=1), row_dot(wz, zz)
                det = h00 * h11 - h01 * h01
                ok = det > 0
                da, db = (h11 * g0 - h01 * g1) / det, (h00 * g1 - h01 * g0) / det
            else:
                ok = h00 > 0
                da, db = g0 / h00, np.zeros(len(live))
        ok &= np.isfinite(da) & np.isfinite(db)
        live, yy, zz, da, db = live[ok], yy[ok], zz[ok], da[ok], db[ok]  # a failed row stays NaN
        base_a, base_b, floor = a[live], b[live], current[live] - 1e-12 * np.abs(current[live])
        trial, value = np.empty_like(zz), np.empty(len(live))
        halving = np.arange(len(live))
        for _halving in range(60):
            if not len(halving):
                break
            t = (base_a[halving] + da[halving])[:, None] + (base_b[halving] + db[halving])[:, None] * zz[halving]
            v = np.sum(yy[halving] * t - np.logaddexp(0.0, t), axis=1)
            trial[halving], value[halving] = t, v
            climbed = v >= floor[halving]
            short = halving[~climbed]
            da[short], db[short] = da[short] / 2, db[short] / 2
            halving = short
        a[live], b[live], eta[live], current[live] = base_a + da, base_b + db, trial, value
        done = np.maximum(np.abs(da), np.abs(db)) < 1e-10
        out_a[live[done]], out_b[live[done]] = a[live[done]], b[live[done]]
        live = live[~done]
    return out_a, out_b


def calibration_fit(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """Calibration slope and intercept of probabilities ``p`` of a binary 0/1 outcome ``y`` (logistic recalibration).

    The slope is ``b`` of the joint fit ``logit P(y = 1) = a + b logit(p)``:
    1 is ideal, below 1 predictions too extreme (overfitting), above 1 too
    timid. The intercept is calibration-in-the-large, ``a`` of the fit with the
    slope fixed at 1 (``logit(p)`` as an offset): 0 is ideal, above 0 the
    predicted risks are too low on average, below 0 too high. This is the
    usual TRIPOD choice (Van Calster et al. 2019). Probabilities are clipped
    to [:data:`PROBABILITY_EPS`, 1 - eps] before the logit.

    NaN when it is undefined: the intercept when ``y`` lacks a class; the slope
    also when every prediction is the same (the majority baseline) or when
    ``logit(p)`` separates the classes completely (no finite maximum
    likelihood, common on a small test set with a strong signal).
    """
    y = np.asarray(y, dtype=np.float64)
    z = logit(p)
    positives, negatives = z[y == 1], z[y == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return math.nan, math.nan
    offset = _logistic_newton(y, z, fit_slope=False)
    intercept = offset[0] if offset is not None else math.nan
    separated = positives.min() >= negatives.max() or negatives.min() >= positives.max()
    if z.min() == z.max() or separated:
        return math.nan, intercept
    joint = _logistic_newton(y, z, fit_slope=True)
    return (joint[1] if joint is not None else math.nan), intercept


def calibration_fits(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`calibration_fit` of every row of ``y`` and ``p`` ``[M, n]``: ``(slopes [M], intercepts [M])``.

    The fits of all rows run together (:func:`_logistic_newton_rows`), each
    bit for bit its own fit: a fit job scores hundreds of models on test sets
    of one size, and one fit at a time costs a hundred numpy calls each.
    """
    y = np.asarray(y, dtype=np.float64)
    z = logit(p)
    slope, intercept = np.full(len(y), np.nan), np.full(len(y), np.nan)
    positive, negative = y == 1, y == 0
    both = positive.any(axis=1) & negative.any(axis=1)
    rows = np.flatnonzero(both)
    if not len(rows):
        return slope, intercept
    intercept[rows] = _logistic_newton_rows(y[rows], z[rows], fit_slope=False)[0]
    zr, pr, nr = z[rows], positive[rows], negative[rows]
    low_pos, high_pos = np.where(pr, zr, np.inf).min(axis=1), np.where(pr, zr, -np.inf).max(axis=1)
    low_neg, high_neg = np.where(nr, zr, np.inf).min(axis=1), np.where(nr, zr, -np.inf).max(axis=1)
    separated = (low_pos >= high_neg) | (low_neg >= high_pos)
    joint = rows[~(separated | (zr.min(axis=1) == zr.max(axis=1)))]
    if len(joint):
        slope[joint] = _logistic_newton_rows(y[joint], z[joint], fit_slope=True)[1]
    return slope, intercept


def _calibration_rows(y_true: np.ndarray, proba: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The one-vs-rest outcomes and probabilities ``[K, n]`` a model's calibration fits: class 1 alone for two classes."""
    y = np.asarray(y_true).astype(int)
    if proba.shape[1] == 2:
        return (y == 1)[None], proba[:, 1][None]
    return np.arange(proba.shape[1])[:, None] == y[None], proba.T


def _calibration_values(fits: np.ndarray) -> tuple[float, float]:
    """``(slope, intercept)`` of a model from its rows' fits ``[K, 2]``: the one fit, or the mean over classes."""
    if len(fits) == 1:
        return float(fits[0, 0]), float(fits[0, 1])
    slope, intercept = (float(v) for v in fits.mean(axis=0))
    return slope, intercept


def calibration_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Brier score, calibration slope and calibration intercept of class probabilities ``proba`` ``[n, C]``.

    Two classes: of the positive class (code 1). More classes: the mean over
    classes of the one-vs-rest values (NaN when one class's value is).
    """
    return calibration_metrics_many([y_true], [proba])[0]


def calibration_metrics_many(y_trues: Sequence[np.ndarray], probas: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """:func:`calibration_metrics` of many models at once, each the same numbers as alone.

    The logistic recalibration fits of all models whose test sets have the
    same size run together (:func:`calibration_fits`).
    """
    probas = [np.asarray(p, dtype=np.float64) for p in probas]
    parts = [_calibration_rows(y, p) for y, p in zip(y_trues, probas, strict=True)]
    fits = [np.full((len(y), 2), np.nan) for y, _ in parts]
    by_size: dict[int, list[int]] = {}
    for i, (y, _) in enumerate(parts):
        by_size.setdefault(y.shape[1], []).append(i)
    for members in by_size.values():
        if len(members) == 1 and len(parts[members[0]][0]) == 1:  # one fit: the one-row way costs less
            y, p = parts[members[0]]
            fits[members[0]][0] = calibration_fit(y[0], p[0])
            continue
        slopes, intercepts = calibration_fits(
            np.concatenate([parts[i][0] for i in members]), np.concatenate([parts[i][1] for i in members])
        )
        at = 0
        for i in members:
            k = len(parts[i][0])
            fits[i][:, 0], fits[i][:, 1] = slopes[at : at + k], intercepts[at : at + k]
            at += k
    out = []
    for y, p, f in zip(y_trues, probas, fits, strict=True):
        slope, intercept = _calibration_values(f)
        out.append({"brier": brier_score(y, p), "calibration_slope": slope, "calibration_intercept": intercept})
    return out


def reliability_bins(y: np.ndarray, p: np.ndarray, bins: int = 10) -> dict[str, np.ndarray]:
    """A reliability diagram's points: per probability bin ``[k/bins, (k+1)/bins)`` (the last closed) with samples,
    the mean predicted probability, the observed share of ``y == 1`` and the count.

    Bins of fixed width (tenths by default), so diagrams of different panels
    and models are read on the same grid; empty bins are left out.
    """
    y = np.asarray(y, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    index = np.clip(np.floor(p * bins).astype(np.int64), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    keep = counts > 0
    predicted = np.bincount(index, weights=p, minlength=bins)[keep] / counts[keep]
    observed = np.bincount(index, weights=y, minlength=bins)[keep] / counts[keep]
    return {
        "low": np.arange(bins)[keep] / bins,
        "high": (np.arange(bins)[keep] + 1) / bins,
        "predicted": predicted,
        "observed": observed,
        "count": counts[keep],
    }


def ranking_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """ROC-AUC and PR-AUC (average precision) of probabilities ``[n, C]``; one-vs-rest macro means for C > 2.

    Two classes: the scores are the probabilities of code 1. The caller makes
    sure every class is present (else these are undefined).
    """
    y_true = np.asarray(y_true).astype(int)
    if proba.shape[1] == 2:
        return {"roc_auc": roc_auc(y_true, proba[:, 1]), "pr_auc": average_precision(y_true, proba[:, 1])}
    classes = range(proba.shape[1])
    return {
        "roc_auc": float(np.mean([roc_auc(y_true == c, proba[:, c]) for c in classes])),
        "pr_auc": float(np.mean([average_precision(y_true == c, proba[:, c]) for c in classes])),
    }


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """Metrics of class probabilities ``proba`` ``[n, C]`` against integer labels.

    Two classes: the positive class is code 1, predicted when its probability is
    at least 0.5; precision/recall/F1 are the positive class's, 0 when undefined
    (``zero_division=0``); PR-AUC is average precision; confusion counts tp, fp,
    tn, fn. More classes: macro averages, one-vs-rest ROC-AUC and PR-AUC, and no
    confusion counts. A ranking metric is NaN when the test set lacks a class.
    Balanced accuracy is the mean recall over the classes present. Brier
    score, calibration slope and intercept: :func:`calibration_metrics`.
    """
    return classification_metrics_many([y_true], [proba])[0]


def classification_metrics_many(y_trues: Sequence[np.ndarray], probas: Sequence[np.ndarray]) -> list[dict[str, float]]:
    """:func:`classification_metrics` of many models, each the same numbers as alone; the calibration fits of
    test sets of one size run together (:func:`calibration_metrics_many`), which is most of the time they take."""
    y_trues = [np.asarray(y).astype(int) for y in y_trues]
    probas = [np.asarray(p, dtype=np.float64) for p in probas]
    calibration = calibration_metrics_many(y_trues, probas)
    out = []
    for y_true, proba, calibrated in zip(y_trues, probas, calibration, strict=True):
        row, counts = _decision_metrics(y_true, proba)
        row.update(calibrated)
        row.update(counts)
        out.append(row)
    return out


def _decision_metrics(y_true: np.ndarray, proba: np.ndarray) -> tuple[dict[str, float], dict[str, int]]:
    """The thresholded and ranking metrics of one model (see :func:`classification_metrics`), and its confusion
    counts (two classes; none with more)."""
    n_classes = proba.shape[1]
    binary = n_classes == 2
    y_pred = predicted_classes(proba)
    confusion = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes).reshape(n_classes, -1)
    tp = np.diag(confusion)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, actual)
    f1 = _ratio(2 * tp, actual + predicted)
    present = actual > 0
    out: dict[str, float] = {
        "accuracy": float(tp.sum() / len(y_true)),
        "balanced_accuracy": float(recall[present].mean()),
        "precision": float(precision[1] if binary else precision.mean()),
        "recall": float(recall[1] if binary else recall.mean()),
        "f1": float(f1[1] if binary else f1.mean()),
        "mcc": matthews(confusion),
    }
    if not present.all():
        out["roc_auc"] = out["pr_auc"] = math.nan
    else:
        out.update(ranking_metrics(y_true, proba))
    counts = {"tp": int(tp[1]), "fp": int(confusion[0, 1]), "tn": int(tp[0]), "fn": int(confusion[1, 0])}
    return out, counts if binary else {}


REGRESSION_METRICS = ("r2", "rmse", "mae", "pearson", "spearman")
"""Metrics of a regression target, in the order metrics.tsv and summary.tsv list them."""


def _rank(values: np.ndarray) -> np.ndarray:
    """1-based average ranks (ties share their mean rank), as scipy's ``rankdata``."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.r_[0, np.flatnonzero(np.diff(ordered) != 0) + 1]
    ends = np.r_[starts[1:], len(values)]
    ranks = np.empty(len(values), dtype=np.float64)
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = (a + b + 1) / 2
    return ranks


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's r of ``a`` and ``b``; NaN when either is constant.

    Constancy is tested on the values themselves: the deviations of a constant
    from its computed mean are rounding noise, not zero, and would give a
    correlation of order 1e-16 instead of the undefined value it is.
    """
    if a.min() == a.max() or b.min() == b.max():
        return math.nan
    da, db = a - a.mean(), b - b.mean()
    denom = math.sqrt(float((da * da).sum() * (db * db).sum()))
    return float((da * db).sum() / denom) if denom > 0 else math.nan


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """R^2 (scikit-learn's ``r2_score``), RMSE, MAE, Pearson's r and Spearman's rho of predictions.

    R^2 compares the squared error with that of the test rows' own mean, so a
    model that predicts the training mean scores just below 0; an undefined
    value (constant truth, or a correlation of constant predictions) is NaN.
    The Brier score and the calibration slope and intercept are for class
    probabilities and have no regression counterpart here.
    """
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(y_pred, dtype=np.float64)
    res = float(((y - p) ** 2).sum())
    tot = float(((y - y.mean()) ** 2).sum()) if len(y) and y.min() != y.max() else 0.0
    return {
        "r2": 1.0 - res / tot if tot > 0 else math.nan,
        "rmse": math.sqrt(res / len(y)) if len(y) else math.nan,
        "mae": float(np.abs(y - p).mean()) if len(y) else math.nan,
        "pearson": _correlation(p, y) if len(y) > 1 else math.nan,
        "spearman": _correlation(_rank(p), _rank(y)) if len(y) > 1 else math.nan,
    }
