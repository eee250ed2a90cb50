"""Survival numerics (panelmlp.survival, the survival part of panelmlp.epoch_metrics) against scikit-survival and autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from panelmlp import survival as sv
from panelmlp.baselines import constant_risk, cox_ridge
from panelmlp.epoch_metrics import cox_loss_and_grad, harrell_c_batched, survival_epoch_metrics
from sksurv.compare import compare_survival
from sksurv.linear_model import CoxPHSurvivalAnalysis
from sksurv.linear_model.coxph import BreslowEstimator, CoxPHOptimizer
from sksurv.metrics import (
    concordance_index_censored,
    concordance_index_ipcw,
    cumulative_dynamic_auc,
    integrated_brier_score,
)
from sksurv.nonparametric import CensoringDistributionEstimator, kaplan_meier_estimator
from sksurv.util import Surv

SEEDS = [0, 1, 2, 3, 4]


def tied_data(seed: int, n: int = 80, top: int = 60) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Times on a 10-day grid (many ties), ~60% events, risks rounded to 0.1 (many ties)."""
    rng = np.random.default_rng(seed)
    time = rng.integers(1, top, n) * 10.0
    event = rng.random(n) < 0.6
    risk = np.round(rng.normal(size=n), 1)
    return time, event, risk


def train_test(seed: int) -> tuple[np.ndarray, ...]:
    """Training rows reaching further than the test rows, so scikit-survival's censoring curve covers the test events."""
    tr_t, tr_e, tr_r = tied_data(seed, n=150, top=70)
    tr_t[0], tr_e[0] = 700.0, False  # the last training time is censored ...
    tr_t[1], tr_e[1] = 695.0, True  # ... after an event: G(t) > 0 for every t < 700
    te_t, te_e, te_r = tied_data(seed + 100, n=70, top=60)
    return tr_t, tr_e, tr_r, te_t, te_e, te_r


@pytest.mark.parametrize("seed", SEEDS)
def test_harrell_c_matches_sksurv(seed: int) -> None:
    time, event, risk = tied_data(seed)
    expected = concordance_index_censored(event, time, risk)[0]
    assert sv.harrell_c(time, event, risk) == pytest.approx(expected, abs=1e-12)
    assert sv.harrell_c(time, event.astype(int), risk) == pytest.approx(expected, abs=1e-12)


def test_harrell_c_without_comparable_pair_is_nan() -> None:
    assert np.isnan(sv.harrell_c([1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3]))
    assert np.isnan(sv.harrell_c([1.0, 2.0], [0, 1], [0.1, 0.2]))  # the only event is the last time


@pytest.mark.parametrize("seed", SEEDS)
def test_uno_c_matches_sksurv(seed: int) -> None:
    tr_t, tr_e, _, te_t, te_e, te_r = train_test(seed)
    train, test = Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t)
    for tau in (None, 300.0, 595.0):
        expected = concordance_index_ipcw(train, test, te_r, tau=tau)[0]
        assert sv.uno_c(tr_t, tr_e, te_t, te_e, te_r, tau=tau) == pytest.approx(expected, abs=1e-10)


def test_uno_c_is_nan_where_sksurv_raises() -> None:
    tr_t, tr_e, _, te_t, te_e, te_r = train_test(0)
    te_t, te_e = te_t.copy(), te_e.copy()
    te_t[0], te_e[0] = 800.0, True  # an event after the training rows' last time
    with pytest.raises(ValueError):
        concordance_index_ipcw(Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), te_r)
    assert np.isnan(sv.uno_c(tr_t, tr_e, te_t, te_e, te_r))
    # Truncating at the training maximum keeps G > 0 and gives scikit-survival's number.
    expected = concordance_index_ipcw(Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), te_r, tau=700.0)[0]
    assert sv.uno_c(tr_t, tr_e, te_t, te_e, te_r, tau=tr_t.max()) == pytest.approx(expected, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_kaplan_meier_and_censoring_curve_match_sksurv(seed: int) -> None:
    time, event, _ = tied_data(seed)
    t_ref, s_ref = kaplan_meier_estimator(event, time)
    t, s = sv.kaplan_meier(time, event)
    np.testing.assert_array_equal(t, t_ref)
    np.testing.assert_allclose(s, s_ref, atol=1e-12)
    time, event = time.copy(), event.copy()
    time[0], event[0] = time.max() + 5.0, True  # a lone event last: G > 0 at the end, unknown beyond
    cens = CensoringDistributionEstimator().fit(Surv.from_arrays(event, time))
    at = np.concatenate([np.unique(time), np.unique(time) + 3.0, [0.0, 5.0]])
    at = at[at <= time.max()]
    np.testing.assert_allclose(sv.censoring_survival(time, event, at), cens.predict_proba(at), atol=1e-12)
    assert np.isnan(sv.censoring_survival(time, event, [time.max() + 1])[0])


def test_censoring_curve_edge_cases() -> None:
    time = np.array([1.0, 2.0, 2.0, 3.0])
    # No censoring: G = 1 everywhere.
    np.testing.assert_array_equal(sv.censoring_survival(time, [1, 1, 1, 1], [0.5, 2.0, 9.0]), [1.0, 1.0, 1.0])
    # Censored at the last time: G reaches 0 there and stays 0 after it (as scikit-survival).
    event = np.array([True, True, False, False])
    cens = CensoringDistributionEstimator().fit(Surv.from_arrays(event, time))
    at = np.array([0.5, 1.0, 2.0, 2.5, 3.0, 4.0])
    np.testing.assert_allclose(sv.censoring_survival(time, event, at), cens.predict_proba(at), atol=1e-15)
    assert sv.censoring_survival(time, event, [4.0])[0] == 0.0


@pytest.mark.parametrize("seed", SEEDS)
def test_td_auc_matches_sksurv(seed: int) -> None:
    tr_t, tr_e, _, te_t, te_e, te_r = train_test(seed)
    horizons = np.array([100.0, 200.0, 250.0, 400.0])
    expected, expected_mean = cumulative_dynamic_auc(
        Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), te_r, horizons
    )
    found = sv.td_auc(tr_t, tr_e, te_t, te_e, te_r, horizons)
    np.testing.assert_allclose(found, expected, atol=1e-10)
    assert sv.td_auc_mean(te_t, te_e, horizons, found) == pytest.approx(expected_mean, abs=1e-10)
    # Unsorted input: answers in the given order.
    np.testing.assert_allclose(sv.td_auc(tr_t, tr_e, te_t, te_e, te_r, horizons[::-1]), expected[::-1], atol=1e-10)
    # One horizon: its own AUC is the mean.
    assert sv.td_auc_mean(te_t, te_e, horizons[:1], found[:1]) == pytest.approx(expected[0], abs=1e-12)


def test_td_auc_horizon_outside_follow_up_is_nan_alone() -> None:
    tr_t, tr_e, _, te_t, te_e, te_r = train_test(7)
    inside = np.array([150.0, 300.0])
    for outside in (te_t.max(), te_t.max() + 50.0, te_t.min() - 1.0):
        with pytest.raises(ValueError):
            cumulative_dynamic_auc(
                Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), te_r, np.r_[inside, outside]
            )
        found = sv.td_auc(tr_t, tr_e, te_t, te_e, te_r, np.r_[inside, outside])
        assert np.isnan(found[-1])
        expected, mean = cumulative_dynamic_auc(
            Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), te_r, inside
        )
        np.testing.assert_allclose(found[:2], expected, atol=1e-10)
        assert sv.td_auc_mean(te_t, te_e, np.r_[inside, outside], found) == pytest.approx(mean, abs=1e-10)


@pytest.mark.parametrize("seed", SEEDS)
def test_breslow_survival_matches_sksurv(seed: int) -> None:
    tr_t, tr_e, tr_r, _, _, te_r = train_test(seed)
    tr_r = tr_r * 3.0  # large risks: the shift before exp must not change anything
    times = np.unique(np.r_[tr_t, tr_t + 2.5, [tr_t.min()]])
    times = times[(times >= tr_t.min()) & (times <= tr_t.max())]
    funcs = BreslowEstimator().fit(tr_r, tr_e, tr_t).get_survival_function(te_r)
    expected = np.array([f(times) for f in funcs])
    np.testing.assert_allclose(sv.breslow_survival(tr_t, tr_e, tr_r, te_r, times), expected, rtol=1e-10, atol=1e-12)
    # Before the first training time the baseline hazard is 0.
    np.testing.assert_array_equal(sv.breslow_survival(tr_t, tr_e, tr_r, te_r, [0.0]), 1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_integrated_brier_score_matches_sksurv(seed: int) -> None:
    tr_t, tr_e, tr_r, te_t, te_e, te_r = train_test(seed)
    times = sv.ibs_times(te_t, te_e, n=12, limit=tr_t.max())
    assert times.shape[0] >= 2
    surv = sv.breslow_survival(tr_t, tr_e, tr_r, te_r, times)
    expected = integrated_brier_score(Surv.from_arrays(tr_e, tr_t), Surv.from_arrays(te_e, te_t), surv, times)
    found = sv.integrated_brier_score(tr_t, tr_e, te_t, te_e, surv, times)
    assert found == pytest.approx(expected, abs=1e-10)
    # A time at the test rows' last follow-up: scikit-survival raises, here NaN.
    assert np.isnan(
        sv.integrated_brier_score(tr_t, tr_e, te_t, te_e, np.c_[surv, surv[:, -1]], np.r_[times, te_t.max()])
    )
    assert np.isnan(sv.integrated_brier_score(tr_t, tr_e, te_t, te_e, surv[:, :1], times[:1]))


def test_ibs_times_lie_inside_follow_up() -> None:
    time, event, _ = tied_data(3)
    grid = sv.ibs_times(time, event, n=15)
    assert grid.shape[0] >= 2
    assert (np.diff(grid) > 0).all() and grid.min() >= time.min() and grid.max() < time.max()
    np.testing.assert_allclose(grid[0], np.percentile(time, 10))
    assert (sv.ibs_times(time, event, limit=200.0) < 200.0).all()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_groups", [2, 3])
def test_logrank_matches_sksurv(seed: int, n_groups: int) -> None:
    time, event, risk = tied_data(seed, n=120)
    group = np.array(["high", "low", "mid"])[np.random.default_rng(seed).integers(0, n_groups, time.shape[0])]
    group[risk > 1.0] = "high"  # a real difference for some seeds
    chi2_ref, p_ref = compare_survival(Surv.from_arrays(event, time), group)
    chi2, p = sv.logrank(time, event, group)
    assert chi2 == pytest.approx(chi2_ref, rel=1e-10)
    assert p == pytest.approx(p_ref, rel=1e-8, abs=1e-14)
    assert all(np.isnan(sv.logrank(time, event, np.zeros(time.shape[0]))))


@pytest.mark.parametrize("seed", SEEDS)
def test_cox_partial_likelihood_matches_sksurv_optimizer(seed: int) -> None:
    time, event, risk = tied_data(seed)
    opt = CoxPHOptimizer(risk[:, None], event, time, np.zeros(1), "breslow")
    assert sv.cox_partial_likelihood(time, event, risk) == pytest.approx(opt.nlog_likelihood(np.ones(1)), abs=1e-12)


# --- torch: Cox loss and batched C-index -------------------------------------


def batch(seed: int, k: int = 5, b: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """K models on B padded rows: tied times and risks, censoring, garbage in padding, model 2 without events."""
    rng = np.random.default_rng(seed)
    out = np.round(rng.normal(size=(k, b, 1)), 1) * 2.0
    time = rng.integers(1, 15, (k, b)) * 7.0
    event = (rng.random((k, b)) < 0.5).astype(np.float64)
    valid = np.zeros((k, b))
    for m in range(k):
        valid[m, : rng.integers(b // 2, b + 1)] = 1.0
    valid[:, -1] = 0.0
    event[2] = 0.0
    time[valid == 0] = np.nan
    out[valid == 0] = 1e6
    y = np.stack([time, event], axis=-1)
    return torch.tensor(out), torch.tensor(y), torch.tensor(valid)


def reference_cox(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-model mean Breslow loss by a plain loop, and its autograd gradient."""
    eta = out.detach().clone().requires_grad_(True)
    losses = []
    for m in range(out.shape[0]):
        rows = torch.nonzero(valid[m] > 0).flatten()
        t, d, e = y[m, rows, 0], y[m, rows, 1], eta[m, rows, 0]
        total = eta.new_zeros(())
        for i in range(rows.shape[0]):
            if d[i] > 0:
                total = total + torch.logsumexp(e[t >= t[i]], 0) - e[i]
        losses.append(total / rows.shape[0])
    loss = torch.stack(losses)
    loss.sum().backward()
    return loss.detach(), eta.grad


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cox_loss_and_grad_match_autograd_and_numpy(seed: int) -> None:
    out, y, valid = batch(seed)
    n_valid = valid.sum(1)
    rows, grad = cox_loss_and_grad(out, y, valid, n_valid)
    ref_loss, ref_grad = reference_cox(out, y, valid)
    torch.testing.assert_close(rows.sum(1) / n_valid, ref_loss, atol=1e-10, rtol=0)
    torch.testing.assert_close(grad, ref_grad, atol=1e-10, rtol=0)
    assert (rows[valid == 0] == 0).all() and (grad[valid == 0] == 0).all()
    assert (rows[2] == 0).all() and (grad[2] == 0).all()  # no events: loss 0, gradient 0
    for m in range(out.shape[0]):
        keep = valid[m].numpy() > 0
        expected = sv.cox_partial_likelihood(y[m, keep, 0].numpy(), y[m, keep, 1].numpy(), out[m, keep, 0].numpy())
        assert float(rows[m].sum() / n_valid[m]) == pytest.approx(expected, abs=1e-10)


def test_cox_loss_keeps_dtype_and_survives_large_outputs() -> None:
    out, y, valid = batch(5)
    rows, grad = cox_loss_and_grad(out.float() * 100, y.float(), valid.float(), valid.float().sum(1))
    assert rows.dtype == torch.float32 and grad.dtype == torch.float32
    assert torch.isfinite(rows).all() and torch.isfinite(grad).all()


@pytest.mark.parametrize("seed", [0, 1])
def test_harrell_c_batched_matches_numpy(seed: int) -> None:
    out, y, valid = batch(seed, k=7, b=50)
    risk = out.squeeze(-1)
    for max_pairs in (1 << 22, 2 * 50 * 50):  # one chunk, and chunks of two models
        found = harrell_c_batched(risk, y, valid, max_pairs=max_pairs)
        for m in range(risk.shape[0]):
            keep = valid[m].numpy() > 0
            expected = sv.harrell_c(y[m, keep, 0].numpy(), y[m, keep, 1].numpy(), risk[m, keep].numpy())
            if np.isnan(expected):
                assert torch.isnan(found[m])
            else:
                assert float(found[m]) == pytest.approx(expected, abs=1e-12)
    assert torch.isnan(found[2])  # the model without events
    metrics = survival_epoch_metrics(out.float(), y.float(), valid.float())
    assert metrics.shape == (7, 1) and metrics.dtype == torch.float32
    torch.testing.assert_close(metrics[:, 0], found.float(), equal_nan=True)


# --- baselines -----------------------------------------------------------------


def planted(seed: int, n: int = 300, p: int = 20) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expression z (n x p); hazard exp(z0 - z1 + 0.8 z2) on an exponential baseline; uniform censoring."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, p))
    lp = z[:, 0] - z[:, 1] + 0.8 * z[:, 2]
    t_event = rng.exponential(365.0 * np.exp(-lp))
    t_cens = rng.uniform(100.0, 1500.0, n)
    return z, np.minimum(t_event, t_cens), t_event <= t_cens


def test_cox_ridge_finds_planted_genes_and_matches_sksurv() -> None:
    z, time, event = planted(0)
    tr, te = slice(0, 200), slice(200, 300)
    test_risk, train_risk = cox_ridge(z[tr], time[tr], event[tr], z[te], alpha=1.0)
    assert sv.harrell_c(time[te], event[te], test_risk) > 0.7
    model = CoxPHSurvivalAnalysis(alpha=1.0, ties="breslow").fit(z[tr], Surv.from_arrays(event[tr], time[tr]))
    np.testing.assert_allclose(test_risk, model.predict(z[te]), atol=1e-10)
    np.testing.assert_allclose(train_risk, model.predict(z[tr]), atol=1e-10)
    assert sv.harrell_c(time[te], event[te], constant_risk(100)) == 0.5


def test_cox_ridge_falls_back_instead_of_crashing() -> None:
    z, time, event = planted(1, n=120, p=4)
    z = np.c_[z, z[:, 0]]  # a duplicated column: singular without a penalty
    test_risk, train_risk = cox_ridge(z[:80], time[:80], event[:80], z[80:], alpha=0.0)
    # scikit-survival warns of an ill-conditioned Hessian at alpha 0; the first retry is alpha 1e-2.
    model = CoxPHSurvivalAnalysis(alpha=1e-2, ties="breslow").fit(z[:80], Surv.from_arrays(event[:80], time[:80]))
    np.testing.assert_allclose(test_risk, model.predict(z[80:]), atol=1e-10)
    np.testing.assert_allclose(train_risk, model.predict(z[:80]), atol=1e-10)
    assert sv.harrell_c(time[80:], event[80:], test_risk) > 0.6
    # No event among the training rows: the constant model.
    test_risk, train_risk = cox_ridge(z[:80], time[:80], np.zeros(80, bool), z[80:], alpha=1.0)
    assert (test_risk == 0).all() and (train_risk == 0).all()
