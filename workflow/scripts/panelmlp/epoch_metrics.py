"""Torch-side metrics and losses of stacked models: every model's numbers for one epoch at once.

Each function takes ``[K, T]`` (or ``[K, T, out]``) tensors of K models on
their padded test (or minibatch) rows, with ``valid`` marking the real rows,
and returns one row per model. The numpy metrics of the final models live in
:mod:`panelmlp.metrics`; these are checked against them in the tests.
"""

from __future__ import annotations

import torch

from .targets.classification import HISTORY_METRICS as HISTORY_METRICS
from .targets.regression import REGRESSION_HISTORY as REGRESSION_HISTORY


def batched_metrics(score: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Accuracy, precision, recall, F1 and ROC-AUC of every model, ``[K, 5]``.

    ``score`` is the positive-class probability ``[K, T]`` for two classes
    (threshold 0.5) or class probabilities ``[K, T, C]``; ``y`` the true classes, ``valid`` marks real (not padded)
    rows. Two classes: the positive class's precision, recall and F1, zero when
    undefined, as scikit-learn's ``zero_division=0``; ROC-AUC from average ranks
    (the Mann-Whitney statistic, ties counted half), NaN when a class is absent.
    More classes: macro averages and one-vs-rest macro ROC-AUC. Probabilities
    are expected; see :func:`metrics_from_logits` for logits.
    """
    v = valid.to(score.dtype)
    n = v.sum(dim=1).clamp(min=1)
    if n_classes == 2:
        pred = (score >= 0.5).to(score.dtype)
        return _binary_metrics(score, pred, y, v, n)
    pred = score.argmax(dim=-1)
    return _multiclass_metrics(score, pred, y, v, n, n_classes)


def metrics_from_logits(logits: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_classes: int) -> torch.Tensor:
    """:func:`batched_metrics` of logits ``[K, T, out]``, ranking on the logits themselves.

    A sigmoid or softmax can round distinct logits to equal probabilities
    (1.0 in float32); ranking the logits keeps them apart. The decision rule is
    the same: positive when the logit is at least 0 (probability at least 0.5).
    """
    if logits.shape[-1] == 1:
        o = logits.squeeze(-1)
        v = valid.to(o.dtype)
        n = v.sum(dim=1).clamp(min=1)
        return _binary_metrics(o, (o >= 0).to(o.dtype), y, v, n)
    v = valid.to(logits.dtype)
    n = v.sum(dim=1).clamp(min=1)
    return _multiclass_metrics(torch.log_softmax(logits, dim=-1), logits.argmax(dim=-1), y, v, n, logits.shape[-1])


def _binary_metrics(
    score: torch.Tensor, pred: torch.Tensor, y: torch.Tensor, v: torch.Tensor, n: torch.Tensor
) -> torch.Tensor:
    truth = y.to(score.dtype)
    accuracy = ((pred == truth).to(score.dtype) * v).sum(1) / n
    precision, recall, f1 = _prf(pred * v, truth * v)
    auc = _auc(score, truth * v, (1 - truth) * v, v)
    return torch.stack([accuracy, precision, recall, f1, auc], dim=1)


def _multiclass_metrics(
    score: torch.Tensor, pred: torch.Tensor, y: torch.Tensor, v: torch.Tensor, n: torch.Tensor, n_classes: int
) -> torch.Tensor:
    accuracy = ((pred == y).to(score.dtype) * v).sum(1) / n
    parts = []
    for c in range(n_classes):
        pc_ = (pred == c).to(score.dtype) * v
        tc = (y == c).to(score.dtype) * v
        p, r, f = _prf(pc_, tc)
        parts.append(torch.stack([p, r, f, _auc(score[..., c], tc, (1 - tc) * v, v)], dim=1))
    macro = torch.stack(parts).mean(dim=0)
    return torch.cat([accuracy[:, None], macro], dim=1)


def _prf(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tp = (pred * truth).sum(1)
    predicted = pred.sum(1)
    actual = truth.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), 0.0)
    denom = predicted + actual
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), 0.0)
    return precision, recall, f1


def _auc(score: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """ROC-AUC per row from average ranks among the valid entries (ties share their mean rank).

    Sorting costs ``T log T`` per model, so a per-epoch AUC stays cheap for
    large test sets (comparing all pairs was 10x slower already at 17 rows).
    Padded entries are moved past every valid one.
    """
    ranks = average_ranks(score, valid)
    pos64, neg64 = pos.to(torch.float64), neg.to(torch.float64)
    n_pos, n_neg = pos64.sum(1), neg64.sum(1)
    u = (ranks * pos64).sum(1) - n_pos * (n_pos + 1) / 2
    auc = torch.where((n_pos > 0) & (n_neg > 0), u / (n_pos * n_neg).clamp(min=1), torch.nan)
    return auc.to(score.dtype)


def average_ranks(score: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Per row, the 1-based average rank (ties share their mean rank) of each valid entry, float64; padding ranks last."""
    k, t = score.shape
    big = torch.finfo(score.dtype).max
    keyed = torch.where(valid > 0, score.to(torch.float64), big)
    ordered, order = torch.sort(keyed, dim=1, stable=True)
    new_group = torch.ones_like(ordered, dtype=torch.bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    group = torch.cumsum(new_group, dim=1) - 1
    flat = group + torch.arange(k, device=score.device)[:, None] * t
    position = torch.arange(t, device=score.device, dtype=torch.float64).expand(k, t).reshape(-1)
    first = torch.full((k * t,), float(t), dtype=torch.float64, device=score.device)
    last = torch.zeros(k * t, dtype=torch.float64, device=score.device)
    first.scatter_reduce_(0, flat.reshape(-1), position, reduce="amin")
    last.scatter_reduce_(0, flat.reshape(-1), position, reduce="amax")
    rank_sorted = ((first[flat] + last[flat]) / 2 + 1).view(k, t)
    return torch.empty_like(rank_sorted).scatter_(1, order, rank_sorted)


def regression_loss_and_grad(
    out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor, loss: str = "mse"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row losses ``[K, B]`` (0 where invalid) and the gradient w.r.t. the outputs ``[K, B, 1]``.

    ``mse`` is torch's MSELoss, ``l1`` its L1Loss (gradient the sign of the
    error, 0 at 0), each the mean over a model's own valid rows.
    """
    o = out.squeeze(-1)
    diff = (o - y) * valid
    scale = 1.0 / n_valid[:, None]
    if loss == "l1":
        return diff.abs(), (torch.sign(diff) * scale).unsqueeze(-1)
    return diff * diff, (2.0 * diff * scale).unsqueeze(-1)


def regression_metrics(y: torch.Tensor, pred: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """R^2, RMSE, MAE, Pearson's and Spearman's correlation of every model on its valid rows, ``[K, 5]`` (float64 inside).

    Truth first, as :func:`panelmlp.metrics.regression_metrics` takes it.

    R^2 is ``1 - SS_res / SS_tot`` around the test rows' own mean (scikit-learn's
    ``r2_score``); undefined values (constant truth or predictions) are NaN.
    """
    o, t = pred.to(torch.float64), y.to(torch.float64)
    v = valid.to(torch.float64)
    n = v.sum(1).clamp(min=1)
    t_mean = (t * v).sum(1) / n
    res = ((o - t) ** 2 * v).sum(1)
    tot = ((t - t_mean[:, None]) ** 2 * v).sum(1)
    mask = v > 0

    def constant(a: torch.Tensor) -> torch.Tensor:
        """Per model, whether ``a`` takes one value on its valid rows (its deviations are then rounding noise)."""
        return torch.where(mask, a, -torch.inf).amax(1) == torch.where(mask, a, torch.inf).amin(1)

    r2 = torch.where((tot > 0) & ~constant(t), 1 - res / tot.clamp(min=1e-300), torch.nan)
    rmse = torch.sqrt(res / n)
    mae = ((o - t).abs() * v).sum(1) / n

    def corr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        am = (a * v).sum(1) / n
        bm = (b * v).sum(1) / n
        da, db = (a - am[:, None]) * v, (b - bm[:, None]) * v
        denom = torch.sqrt((da * da).sum(1) * (db * db).sum(1))
        defined = (denom > 0) & ~constant(a) & ~constant(b)
        return torch.where(defined, (da * db).sum(1) / denom.clamp(min=1e-300), torch.nan)

    pearson = corr(o, t)
    spearman = corr(average_ranks(o, valid), average_ranks(t, valid))
    return torch.stack([r2, rmse, mae, pearson, spearman], dim=1).to(pred.dtype)


# ---------------------------------------------------------------------------
# Survival targets (Cox loss, Harrell's C). The numpy references live in
# :mod:`panelmlp.survival`; ``y`` here is ``[K, B, 2]``: (time in days, event 0/1).
# ---------------------------------------------------------------------------

SURVIVAL_TIED_TOL = 1e-8
"""Risks closer than this count as tied in :func:`harrell_c_batched` (scikit-survival's ``tied_tol``)."""


def cox_loss_and_grad(
    out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row Cox losses ``[K, B]`` and the gradient of their per-model mean w.r.t. the outputs ``[K, B, 1]``.

    Row i's loss is event_i (S_i - eta_i) with eta = ``out`` and S_i the log of
    the sum of exp(eta_j) over the model's valid rows with t_j >= t_i (Breslow
    ties); it is 0 for censored and invalid rows, so ``rows.sum(1) / n_valid``
    is the negative partial log-likelihood averaged over ALL valid rows
    (:func:`panelmlp.survival.cox_partial_likelihood`). The gradient is that of
    this mean: (exp(eta_k) sum_{events i, t_i <= t_k} exp(-S_i) - event_k) / n_valid,
    0 on invalid rows; a model without events has loss 0 and gradient 0.

    Rows are sorted by time once per model and the risk-set sums taken as
    (reverse) cumulative log-sum-exps, indexed at tie-group ends found by
    ``searchsorted``: O(K B log B) time and O(K B) memory. Float64 inside; the
    results have ``out``'s dtype.
    """
    f64 = torch.float64
    v = valid > 0
    eta = torch.where(v, out.squeeze(-1).to(f64), -torch.inf)
    time = torch.where(v, y[..., 0].to(f64), torch.inf)
    event = v & (y[..., 1] > 0.5)
    t_sorted, order = torch.sort(time, dim=1, stable=True)
    eta_s = eta.gather(1, order)
    event_s = event.gather(1, order)
    v_s = v.gather(1, order)
    # log sum_{positions >= p} exp(eta): the risk set of every row at or after position p in time order.
    tail = torch.logcumsumexp(eta_s.flip(1), dim=1).flip(1)
    first = torch.searchsorted(t_sorted, t_sorted, side="left")
    s = tail.gather(1, first)
    rows_s = torch.where(event_s, s - eta_s, 0.0)
    # log sum over events i at positions <= p of exp(-S_i); row k's factor reads it at the end of k's tie group.
    head = torch.logcumsumexp(torch.where(event_s, -s, -torch.inf), dim=1)
    last = torch.searchsorted(t_sorted, t_sorted, side="right") - 1
    grad_s = torch.where(v_s, torch.exp(eta_s + head.gather(1, last)) - event_s.to(f64), 0.0)
    grad_s = grad_s / n_valid.to(f64).clamp(min=1)[:, None]
    rows = torch.empty_like(rows_s).scatter_(1, order, rows_s)
    grad = torch.empty_like(grad_s).scatter_(1, order, grad_s)
    return rows.to(out.dtype), grad.unsqueeze(-1).to(out.dtype)


def harrell_c_batched(
    risk: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, max_pairs: int = 1 << 22
) -> torch.Tensor:
    """Harrell's C of every model on its valid rows, ``[K]`` (NaN without a comparable pair).

    The definition of :func:`panelmlp.survival.harrell_c` (scikit-survival's
    ``concordance_index_censored``): i with an event is compared with every
    valid j with t_j > t_i, or t_j == t_i and j censored; 1 when risk_i > risk_j,
    1/2 within :data:`SURVIVAL_TIED_TOL`.

    Rows are put in time order with events before censorings inside a tie, so
    the rows comparable with event i are the valid ones from a position b_i on
    (just after the last event of i's tie group). The pairs are then compared
    as ``[k, T, T]`` boolean masks in float64 risks, over chunks of models so
    that a chunk holds at most ``max_pairs`` pairs (T = 400: 26 models).
    """
    k, t = risk.shape
    f64 = torch.float64
    v = valid > 0
    time = torch.where(v, y[..., 0].to(f64), torch.inf)
    event = v & (y[..., 1] > 0.5)
    events_first = torch.argsort(event.to(torch.int8), dim=1, descending=True, stable=True)
    by_time = torch.sort(time.gather(1, events_first), dim=1, stable=True).indices
    order = events_first.gather(1, by_time)
    t_s = time.gather(1, order)
    e_s = event.gather(1, order)
    v_s = v.gather(1, order)
    r_s = risk.to(f64).gather(1, order)
    first = torch.searchsorted(t_s, t_s, side="left")
    after = torch.searchsorted(t_s, t_s, side="right")
    events_before = torch.nn.functional.pad(torch.cumsum(e_s.to(torch.int64), dim=1), (1, 0))
    start = first + events_before.gather(1, after) - events_before.gather(1, first)
    position = torch.arange(t, device=risk.device)
    chunk = max(1, max_pairs // max(t * t, 1))
    parts = []
    for a in range(0, k, chunk):
        b = min(a + chunk, k)
        comparable = (position[None, None, :] >= start[a:b, :, None]) & v_s[a:b, None, :] & e_s[a:b, :, None]
        diff = r_s[a:b, None, :] - r_s[a:b, :, None]
        lower = (comparable & (diff < -SURVIVAL_TIED_TOL)).sum((1, 2)).to(f64)
        tied = (comparable & (diff.abs() <= SURVIVAL_TIED_TOL)).sum((1, 2)).to(f64)
        pairs = comparable.sum((1, 2)).to(f64)
        parts.append(torch.where(pairs > 0, (lower + 0.5 * tied) / pairs.clamp(min=1), torch.nan))
    if not parts:
        return torch.empty(0, dtype=risk.dtype, device=risk.device)
    return torch.cat(parts).to(risk.dtype)


def survival_epoch_metrics(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """The per-epoch metric columns of survival models, ``[K, 1]``: Harrell's C of the outputs ``[K, T, 1]``."""
    return harrell_c_batched(out.squeeze(-1), y, valid)[:, None]
