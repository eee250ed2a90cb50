"""Torch-side metrics and losses of stacked models: every model's numbers for one epoch at once.

Each function takes ``[K, T]`` (or ``[K, T, out]``) tensors of K models on
their padded test (or minibatch) rows, with ``valid`` marking the real rows,
and returns one row per model. The numpy metrics of the final models live in
:mod:`panelmlp.metrics`; these are checked against them in the tests.
"""

from __future__ import annotations

import torch

HISTORY_METRICS = ("train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc")
"""Per-epoch quantities of a classification model, in the order of the trainer's history axis."""

REGRESSION_HISTORY = ("train_loss", "test_loss", "r2", "rmse", "mae", "pearson", "spearman")
"""Per-epoch quantities of a regression model."""


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


def regression_metrics(pred: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """R^2, RMSE, MAE, Pearson's and Spearman's correlation of every model on its valid rows, ``[K, 5]`` (float64 inside).

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
