"""Survival-analysis numerics in numpy: concordance, time-dependent AUC, Brier score, Kaplan-Meier, log-rank, Cox.

Conventions: ``time`` float days (>= 0), ``event`` bool or 0/1 (1 = event
observed, 0 = censored), ``risk`` float with higher meaning an earlier event
(a Cox linear predictor). Every metric reproduces scikit-survival 0.28.0
(checked in ``tests/test_survival_metrics.py``) where scikit-survival returns a
number; where it raises (no comparable pair, a time outside the follow-up, a
censoring probability that is unknown or zero) these functions return NaN, so
one unlucky split yields a missing number instead of a failed run.

Inverse-probability-of-censoring weights always come from the censoring
Kaplan-Meier curve of the TRAINING rows (:func:`censoring_survival`), never
from the test rows, as in scikit-survival's ``CensoringDistributionEstimator``.
scikit-survival is imported lazily and only by :func:`cox_ridge`.
"""

from __future__ import annotations

import numpy as np

TIED_TOL = 1e-8
"""Risks closer than this count as tied (scikit-survival's ``tied_tol``)."""

_CHUNK = 1 << 22
"""Pairs compared at once in the pairwise concordance sums (bounds memory at a few tens of MB)."""


def survival_arrays(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``time`` as float64 and ``event`` as bool, 1-D and of one length."""
    t = np.asarray(time, dtype=np.float64).reshape(-1)
    e = np.asarray(event).reshape(-1).astype(bool)
    if t.shape != e.shape:
        raise ValueError(f"time and event differ in length: {t.shape[0]} and {e.shape[0]}")
    return t, e


def _risk_array(risk: np.ndarray, n: int) -> np.ndarray:
    """``risk`` as 1-D float64 of length ``n``."""
    r = np.asarray(risk, dtype=np.float64).reshape(-1)
    if r.shape[0] != n:
        raise ValueError(f"risk has {r.shape[0]} entries for {n} rows")
    return r


def _counts(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Unique times (ascending), events, censorings and number at risk (time >= u) at each."""
    uniq, inverse = np.unique(time, return_inverse=True)
    total = np.bincount(inverse, minlength=uniq.shape[0])
    events = np.bincount(inverse, weights=event.astype(np.float64), minlength=uniq.shape[0]).astype(np.int64)
    at_risk = time.shape[0] - np.concatenate(([0], np.cumsum(total)[:-1]))
    return uniq, events, total - events, at_risk


def _step(x: np.ndarray, y: np.ndarray, at: np.ndarray, before: float) -> np.ndarray:
    """Right-continuous step function through ``(x, y)`` at ``at``: ``y`` of the last ``x <= at``, ``before`` earlier."""
    idx = np.searchsorted(x, at, side="right") - 1
    return np.where(idx >= 0, y[np.clip(idx, 0, None)], before)


def kaplan_meier(time: np.ndarray, event: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Kaplan-Meier survival estimate at each unique time, as ``sksurv.nonparametric.kaplan_meier_estimator``.

    Returns ``(times, survival)``: the sorted unique times (event and censoring
    times) and S(t) = P(T > t) just after each of them (the curve is
    right-continuous: an event at t already lowers S(t)).
    """
    t, e = survival_arrays(time, event)
    uniq, d, _, n = _counts(t, e)
    return uniq, np.cumprod(1.0 - d / n)


def _censoring_km(train_time: np.ndarray, train_event: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """Censoring Kaplan-Meier curve of the training rows: unique times, G at each, and whether all were events.

    As ``kaplan_meier_estimator(reverse=True)``: censoring is the "event"; at a
    tied time the events leave the risk set first, so a censoring at t is
    divided by the rows at risk at t less the events at t.
    """
    t, e = survival_arrays(train_time, train_event)
    uniq, d, c, n = _counts(t, e)
    if e.all():
        return uniq, np.ones(uniq.shape[0]), True
    remaining = n - d
    ratio = np.divide(c, remaining, out=np.zeros(uniq.shape[0]), where=c != 0)
    return uniq, np.cumprod(1.0 - ratio), False


def censoring_survival(train_time: np.ndarray, train_event: np.ndarray, at: np.ndarray) -> np.ndarray:
    """G(t) = P(censoring time > t), the training rows' censoring Kaplan-Meier curve, at the times ``at``.

    The same values as ``CensoringDistributionEstimator().fit(train).predict_proba(at)``:
    right-continuous (G at a training censoring time already includes that
    censoring), 1 before the first training time, 1 everywhere when no training
    row is censored, 0 beyond the last training time when G has reached 0 there.
    Beyond the last training time while G > 0 the curve is unknown and
    scikit-survival raises; here that value is NaN.
    """
    a = np.asarray(at, dtype=np.float64)
    uniq, g, all_events = _censoring_km(train_time, train_event)
    if all_events:
        return np.ones(a.shape)
    out = _step(uniq, g, a, 1.0)
    beyond = a > uniq[-1]
    out[beyond] = 0.0 if g[-1] <= 0 else np.nan
    return out


def _ipcw(train_time: np.ndarray, train_event: np.ndarray, time: np.ndarray, event: np.ndarray) -> np.ndarray:
    """1/G(t_i) for the test events (0 for censored rows); inf where G is 0, NaN where G is unknown."""
    g = censoring_survival(train_time, train_event, time)
    with np.errstate(divide="ignore"):
        inv = 1.0 / g
    return np.where(event, inv, 0.0)


def _concordance(time: np.ndarray, event: np.ndarray, risk: np.ndarray, weight: np.ndarray) -> float:
    """Weighted concordance as scikit-survival's ``_estimate_concordance_index`` (pairwise, in chunks).

    A pair (i, j) is comparable when i had an event and t_j > t_i, or t_j == t_i
    and j is censored. It counts ``weight[i]`` in the denominator and
    ``weight[i]`` (risk_j < risk_i), ``weight[i] / 2`` (risks within
    :data:`TIED_TOL`) or 0 in the numerator. NaN when the denominator is 0.
    """
    n = time.shape[0]
    rows = np.flatnonzero(event & (weight != 0))
    step = max(1, _CHUNK // max(n, 1))
    numerator = 0.0
    denominator = 0.0
    for start in range(0, rows.shape[0], step):
        i = rows[start : start + step]
        ti = time[i][:, None]
        comparable = (time[None, :] > ti) | ((time[None, :] == ti) & ~event[None, :])
        diff = risk[None, :] - risk[i][:, None]
        tie = np.abs(diff) <= TIED_TOL
        score = np.where(tie, 0.5, (diff < 0).astype(np.float64))
        w = weight[i]
        numerator += float((w * (score * comparable).sum(1)).sum())
        denominator += float((w * comparable.sum(1)).sum())
    if denominator == 0 or not np.isfinite(denominator):
        return float("nan")
    return numerator / denominator


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's concordance index, as ``sksurv.metrics.concordance_index_censored(...)[0]``.

    Comparable pairs: i had an event and t_j > t_i, or t_j == t_i with j censored;
    concordant when risk_i > risk_j, risks within :data:`TIED_TOL` count 1/2.
    NaN (scikit-survival raises) when there is no comparable pair, e.g. no event.
    """
    t, e = survival_arrays(time, event)
    r = _risk_array(risk, t.shape[0])
    return _concordance(t, e, r, np.ones(t.shape[0]))


def uno_c(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    tau: float | None = None,
) -> float:
    """Uno's IPCW concordance, as ``sksurv.metrics.concordance_index_ipcw(train, test, risk, tau)[0]``.

    Harrell's pairs, each weighted by 1/G(t_i)^2 with G the TRAINING rows'
    censoring curve (:func:`censoring_survival`). With ``tau``, events at
    t_i >= tau get weight 0 (they still serve as the later member of a pair).
    scikit-survival raises when an event (before ``tau``) lies where G is
    unknown (beyond the last training time) or 0 (at or after a censoring at the
    last training time); this returns NaN then, and when no pair is comparable.
    ``tau = train_time.max()`` always avoids those cases: G > 0 before it.
    """
    t, e = survival_arrays(time, event)
    r = _risk_array(risk, t.shape[0])
    counted = e if tau is None else e & (t < tau)
    ipcw = _ipcw(train_time, train_event, t, counted)
    if not np.isfinite(ipcw).all():
        return float("nan")
    return _concordance(t, e, r, np.square(ipcw))


def _horizons_ok(time: np.ndarray, horizons: np.ndarray) -> np.ndarray:
    """Per horizon, whether it lies in the test rows' follow-up ``[min time, max time)`` (scikit-survival's rule)."""
    if time.shape[0] == 0:
        return np.zeros(horizons.shape, dtype=bool)
    return (horizons >= time.min()) & (horizons < time.max())


def td_auc(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    horizons: np.ndarray,
) -> np.ndarray:
    """Cumulative/dynamic AUC at each horizon, as ``sksurv.metrics.cumulative_dynamic_auc(...)[0]``.

    Cases at horizon h: events with t_i <= h, weighted by 1/G(t_i) from the
    TRAINING censoring curve; controls: rows with t_j > h, weight 1. AUC =
    sum_cases,controls w_i [risk_i > risk_j] (ties 1/2) / (sum w_i * n_controls).
    Returned in the order of ``horizons`` (scikit-survival sorts and deduplicates).
    NaN for a horizon outside ``[min test time, max test time)`` (where
    scikit-survival raises for the whole call), with no case, or with a case
    whose G is unknown or 0. scikit-survival also raises when any test event
    (even one after h) has such a G; this only drops the horizons it touches.
    """
    t, e = survival_arrays(time, event)
    r = _risk_array(risk, t.shape[0])
    h = np.asarray(horizons, dtype=np.float64).reshape(-1)
    out = np.full(h.shape[0], np.nan)
    ok = _horizons_ok(t, h)
    if not ok.any() or not e.any():
        return out
    with np.errstate(invalid="ignore", divide="ignore"):  # G = 0 only where no weight is used
        inv = np.where(e, 1.0 / censoring_survival(train_time, train_event, t), 0.0)
    for k in np.flatnonzero(ok):
        case = e & (t <= h[k])
        control = t > h[k]
        w = inv[case]
        if not case.any() or not np.isfinite(w).all():
            continue
        diff = r[case][:, None] - r[control][None, :]
        score = np.where(np.abs(diff) <= TIED_TOL, 0.5, (diff > 0).astype(np.float64))
        out[k] = float((w * score.sum(1)).sum() / (w.sum() * control.sum()))
    return out


def td_auc_mean(time: np.ndarray, event: np.ndarray, horizons: np.ndarray, aucs: np.ndarray) -> float:
    """scikit-survival's summary of :func:`td_auc`: the AUCs weighted by the drop of the test rows' Kaplan-Meier curve.

    ``cumulative_dynamic_auc(...)[1]``: with S the test rows' KM curve and the
    horizons sorted, ``sum_k AUC_k (S(h_{k-1}) - S(h_k)) / (1 - S(h_last))``,
    S(h_0) = 1; a single horizon gives its AUC. Computed over the horizons
    whose AUC is finite (equal to scikit-survival's value when all are); NaN
    when none is or the weights sum to 0.
    """
    t, e = survival_arrays(time, event)
    h = np.asarray(horizons, dtype=np.float64).reshape(-1)
    a = np.asarray(aucs, dtype=np.float64).reshape(-1)
    keep = np.isfinite(a)
    if not keep.any():
        return float("nan")
    h, first = np.unique(h[keep], return_index=True)
    a = a[keep][first]
    if h.shape[0] == 1:
        return float(a[0])
    uniq, s = kaplan_meier(t, e)
    s_h = _step(uniq, s, h, 1.0)
    d = -np.diff(np.concatenate(([1.0], s_h)))
    total = 1.0 - s_h[-1]
    if total <= 0:
        return float("nan")
    return float((a * d).sum() / total)


def breslow_survival(
    train_time: np.ndarray,
    train_event: np.ndarray,
    train_risk: np.ndarray,
    test_risk: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """Survival S(t | x) = exp(-H0(t) exp(risk)) of the test rows at ``times``, ``[n_test, len(times)]``.

    H0 is Breslow's cumulative baseline hazard of the training rows,
    H0(t) = sum over unique training times u <= t of d_u / sum_{j: t_j >= u} exp(r_j),
    as ``sksurv.linear_model.coxph.BreslowEstimator``. Within the training
    rows' range the values are scikit-survival's. Outside it scikit-survival
    differs: before the first training time it returns H0 at that first time
    (it clips) where this returns H0 = 0 (S = 1), and after the last it raises
    where this keeps the last value. Risks are shifted by their training
    maximum before exponentiating, which leaves S unchanged and avoids overflow.
    """
    t, e = survival_arrays(train_time, train_event)
    r = _risk_array(train_risk, t.shape[0])
    x = np.asarray(test_risk, dtype=np.float64).reshape(-1)
    at = np.asarray(times, dtype=np.float64).reshape(-1)
    shift = float(r.max()) if r.shape[0] else 0.0
    uniq, inverse = np.unique(t, return_inverse=True)
    d = np.bincount(inverse, weights=e.astype(np.float64), minlength=uniq.shape[0])
    mass = np.bincount(inverse, weights=np.exp(r - shift), minlength=uniq.shape[0])
    at_risk = np.cumsum(mass[::-1])[::-1]
    h0 = np.cumsum(np.divide(d, at_risk, out=np.zeros_like(d), where=d > 0))
    h_at = _step(uniq, h0, at, 0.0)
    return np.exp(-np.outer(np.exp(x - shift), h_at))


def brier_scores(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    survival_at: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """IPCW Brier score at each of ``times`` (strictly increasing), as ``sksurv.metrics.brier_score(...)[1]``.

    BS(t) = mean_i [ S_i(t)^2 [t_i <= t, event] / G(t_i) + (1 - S_i(t))^2 [t_i > t] / G(t) ],
    G the TRAINING censoring curve; a weight with G = 0 is 0 (as scikit-survival).
    ``survival_at[i, k]`` is S(times[k] | x_i). A time outside the test follow-up
    ``[min, max)`` or a needed G that is unknown gives NaN (scikit-survival raises).
    """
    t, e = survival_arrays(time, event)
    at = np.asarray(times, dtype=np.float64).reshape(-1)
    est = np.asarray(survival_at, dtype=np.float64).reshape(t.shape[0], -1)
    if est.shape[1] != at.shape[0]:
        raise ValueError(f"survival_at has {est.shape[1]} columns for {at.shape[0]} times")
    if at.shape[0] > 1 and not (np.diff(at) > 0).all():
        raise ValueError("times must be strictly increasing")
    out = np.full(at.shape[0], np.nan)
    g_t = censoring_survival(train_time, train_event, at)
    g_y = censoring_survival(train_time, train_event, t)
    with np.errstate(divide="ignore"):
        inv_t = np.where(g_t == 0, 0.0, 1.0 / g_t)
        inv_y = np.where(g_y == 0, 0.0, 1.0 / g_y)
    for k in np.flatnonzero(_horizons_ok(t, at)):
        case = (t <= at[k]) & e
        control = t > at[k]
        if not np.isfinite(inv_y[case]).all() or not np.isfinite(inv_t[k]):
            continue
        s = est[:, k]
        out[k] = float(np.mean(np.where(case, s**2 * inv_y, 0.0) + np.where(control, (1 - s) ** 2 * inv_t[k], 0.0)))
    return out


def integrated_brier_score(
    train_time: np.ndarray,
    train_event: np.ndarray,
    time: np.ndarray,
    event: np.ndarray,
    survival_at: np.ndarray,
    times: np.ndarray,
) -> float:
    """Integrated Brier score, as ``sksurv.metrics.integrated_brier_score``: trapezoid of :func:`brier_scores` over ``times`` / span.

    ``times`` strictly increasing (see :func:`ibs_times`); NaN when fewer than two
    are given or any Brier score is NaN (scikit-survival raises in those cases).
    """
    at = np.asarray(times, dtype=np.float64).reshape(-1)
    if at.shape[0] < 2:
        return float("nan")
    bs = brier_scores(train_time, train_event, time, event, survival_at, at)
    if not np.isfinite(bs).all():
        return float("nan")
    return float(np.trapezoid(bs, at) / (at[-1] - at[0]))


def ibs_times(time: np.ndarray, event: np.ndarray, n: int = 15, limit: float | None = None) -> np.ndarray:
    """A grid for :func:`integrated_brier_score` strictly inside the test rows' follow-up.

    Rule: the 10th to 80th percentiles (``n`` evenly spaced levels, linear
    interpolation) of all test times (events and censorings), deduplicated and
    kept only where ``min time <= t < max time`` and, with ``limit`` (pass the
    training rows' largest time, so G is known), ``t < limit``. May hold fewer
    than two points (then the IBS is NaN). ``event`` is accepted for symmetry.
    """
    t, _ = survival_arrays(time, event)
    if t.shape[0] == 0:
        return np.empty(0)
    grid = np.unique(np.percentile(t, np.linspace(10.0, 80.0, n)))
    keep = (grid >= t.min()) & (grid < t.max())
    if limit is not None:
        keep &= grid < limit
    return grid[keep]


def logrank(time: np.ndarray, event: np.ndarray, group: np.ndarray) -> tuple[float, float]:
    """Log-rank test of two or more groups: ``(chi2, p)`` as ``sksurv.compare.compare_survival``.

    At each event time, observed minus expected events per group with the
    hypergeometric covariance; chi2 on k-1 degrees of freedom. NaN, NaN when
    there are fewer than two groups or no event (scikit-survival raises).
    """
    t, e = survival_arrays(time, event)
    groups, g = np.unique(np.asarray(group).reshape(-1), return_inverse=True)
    if g.shape[0] != t.shape[0]:
        raise ValueError(f"group has {g.shape[0]} entries for {t.shape[0]} rows")
    k = groups.shape[0]
    if k < 2 or not e.any():
        return float("nan"), float("nan")
    uniq, inverse = np.unique(t, return_inverse=True)
    m = uniq.shape[0]
    rows = np.zeros((m, k))
    deaths = np.zeros((m, k))
    np.add.at(rows, (inverse, g), 1.0)
    np.add.at(deaths, (inverse, g), e.astype(np.float64))
    at_risk = np.cumsum(rows[::-1], axis=0)[::-1]
    n = at_risk.sum(1)
    d = deaths.sum(1)
    keep = d > 0
    at_risk, n, d, deaths = at_risk[keep], n[keep], d[keep], deaths[keep]
    observed = deaths.sum(0)
    expected = (at_risk * (d / n)[:, None]).sum(0)
    mult = np.divide(d * (n - d), n * (n - 1), out=np.zeros_like(n), where=n > 1)
    cov = np.diag((at_risk * mult[:, None]).sum(0)) - (at_risk * (mult / n)[:, None]).T @ at_risk
    z = (observed - expected)[: k - 1]
    try:
        chi2 = float(np.linalg.solve(cov[: k - 1, : k - 1], z) @ z)
    except np.linalg.LinAlgError:
        return float("nan"), float("nan")
    from scipy import stats  # here, not at the top: scipy.stats costs every importer ~0.5 s

    return chi2, float(stats.chi2.sf(chi2, k - 1))


def cox_partial_likelihood(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Negative Breslow partial log-likelihood, mean over ALL rows (a plain loop; the reference for the fast versions).

    L = (1/n) sum_i event_i (log sum_{j: t_j >= t_i} exp(r_j) - r_i).
    """
    t, e = survival_arrays(time, event)
    r = _risk_array(risk, t.shape[0])
    total = 0.0
    for i in range(t.shape[0]):
        if e[i]:
            at_risk = r[t >= t[i]]
            top = at_risk.max()
            total += top + np.log(np.exp(at_risk - top).sum()) - r[i]
    return total / max(t.shape[0], 1)
