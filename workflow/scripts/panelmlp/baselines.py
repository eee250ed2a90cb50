"""Baselines every model is reported beside, fitted on the same training rows.

The logistic-regression baseline minimises scikit-learn's ``LogisticRegression(C=c)``
objective, ``c * sum(log-loss) + ||w||^2 / 2`` with an unpenalised intercept, by
exact Newton's method with step halving, without scikit-learn (whose import costs
2-3 s per job). With n training rows and p genes:

- p <= n: Newton on the p weights and the intercept; each iteration forms and
  solves a (p+1) x (p+1) Hessian, O(n p^2 + p^3).
- p > n: the optimal weights lie in the row space of X (representer theorem), at
  most n dimensions. One Gram matrix ``K = X X^T`` (O(n^2 p)) and its
  eigendecomposition (O(n^3)) give the rows' coordinates ``Z`` in an orthonormal
  basis of that space, and the same Newton runs on Z with the same penalty,
  O(n^3) per iteration whatever p. 800 samples x 20,000 genes take about half
  a second instead of hours (bench/logreg.py).

Both solve the same problem to float64 rounding; tests check them against each
other and against scikit-learn.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from .metrics import row_dot
from .survival import survival_arrays

BASELINES = ("majority", "logreg")

_ARMIJO = 1e-4  # share of the predicted decrease a step must achieve to be accepted
_MIN_STEP = 2.0**-40  # smallest step fraction tried; below it float64 sees no decrease left
_INTERCEPT_RIDGE = 1e-12  # added to the intercept's curvature so a saturated fit still has a finite step


def majority_proba(y_train: np.ndarray, n_test: int, n_classes: int) -> np.ndarray:
    """Always the most frequent training class; probabilities are the training class frequencies.

    Its ROC-AUC is 0.5 by construction and its accuracy is the share of the
    majority class among the test rows: the number any model must beat.
    """
    freq = np.bincount(y_train, minlength=n_classes) / len(y_train)
    proba = np.tile(freq, (n_test, 1))
    if n_classes == 2:
        # Predict the majority class at the 0.5 threshold even when the classes tie.
        majority = int(np.argmax(freq))
        proba[:, 1] = np.where(majority == 1, max(freq[1], 0.5), min(freq[1], 0.4999999))
        proba[:, 0] = 1 - proba[:, 1]
    return proba


def _sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, without overflow warnings for margins beyond +-700."""
    return np.exp(-np.logaddexp(0.0, -z))


def _softplus_change(z: np.ndarray, step: np.ndarray) -> np.ndarray:
    """``log(1 + e^(z - step)) - log(1 + e^z)`` per row, accurate to rounding of the change itself.

    Near the optimum Newton steps move the margins by 1e-8 or less while the
    loss terms are of order one; subtracting two softplus values would leave
    only rounding noise and the line search would reject good steps. For small
    steps the change is written as ``log1p(sigmoid(z) * expm1(-step))`` (or its
    mirror image for positive ``z``), which has no cancellation.
    """
    out = np.logaddexp(0.0, z - step) - np.logaddexp(0.0, z)
    small = np.abs(step) <= 1.0
    zs, ss = z[small], step[small]
    negative = zs <= 0
    out[small] = np.where(
        negative,
        np.log1p(_sigmoid(zs) * np.expm1(-ss)),
        -ss + np.log1p(_sigmoid(-zs) * np.expm1(ss)),
    )
    return out


def _step_length(
    z: np.ndarray, dz: np.ndarray, y: np.ndarray, c: float, ws: float, ss: float, decrement: float
) -> float:
    """Largest of 1, 1/2, 1/4, ... giving an Armijo decrease of the objective along the Newton step; 0 if none.

    A step of length t moves the margins ``z`` (log-odds of the training rows)
    to ``z - t * dz`` and the weights ``w`` to ``w - t * s``; ``ws = <w, s>`` and
    ``ss = <s, s>`` give the penalty's change exactly, so each trial costs O(n)
    whatever the coordinates. The objective's change is computed directly
    (:func:`_softplus_change`), not as a difference of two objective values, so
    the test stays decisive down to the last quadratically convergent steps.
    ``decrement`` is ``<g, s>`` (the squared Newton decrement): the decrease
    predicted per unit step.
    """
    t = 1.0
    while t >= _MIN_STEP:
        loss_change = np.sum(_softplus_change(z, t * dz)) + t * np.dot(y, dz)
        change = c * loss_change - t * ws + 0.5 * t * t * ss
        if change <= -_ARMIJO * t * decrement:
            return t
        t *= 0.5
    return 0.0


def _converged(grad: np.ndarray, size: np.ndarray, grad_b: float, size_b: float, tol: float) -> bool:
    """Whether every gradient component is below ``tol`` times the summed magnitudes of the terms it adds up.

    A component is ``c * sum_i x_ij (p_i - y_i) + w_j``: at the optimum its terms
    cancel, and rounding leaves about 1e-16 of ``c * sum_i |x_ij (p_i - y_i)| + |w_j|``
    (``size``). Measuring against that scale means the same for any penalty,
    gene scale or sample count, and is always reachable in float64, unlike an
    absolute bound; the weights are then accurate to about ``tol`` relative to
    the terms that make them up.
    """
    return bool(np.all(np.abs(grad) <= tol * size) and abs(grad_b) <= tol * size_b)


def _newton(x: np.ndarray, y: np.ndarray, c: float, tol: float, max_iter: int) -> tuple[np.ndarray, float]:
    """Weights and intercept minimising ``c * sum(log-loss(x w + b, y)) + ||w||^2 / 2`` by damped Newton.

    ``x`` is either the genes (p <= n) or the row-space coordinates Z (p > n),
    d columns. Each iteration costs O(n d^2 + d^3): the Hessian
    ``[X 1]^T D [X 1] + diag(1, ..., 1, 0)`` with ``D = c p (1 - p)`` is formed
    by one symmetric product and solved by LU. The penalty keeps it positive
    definite in w; ``_INTERCEPT_RIDGE`` keeps the intercept's pivot nonzero when
    every training row is saturated. Step halving with an Armijo test makes
    each iteration decrease the objective, so it converges from zero also on
    separable data, where the first steps overshoot.
    """
    n, d = x.shape
    abs_x = np.abs(x)
    w, b = np.zeros(d), 0.0
    z = np.zeros(n)
    hessian = np.empty((d + 1, d + 1))
    for _ in range(max_iter):
        p = _sigmoid(z)
        residual = p - y
        grad = np.empty(d + 1)  # [c X^T r + w, c sum(r)], filled in place (np.r_ costs more than the rest)
        grad[:d] = c * (x.T @ residual) + w
        grad[d] = c * residual.sum()
        abs_residual = np.abs(residual)
        if _converged(grad[:d], c * (abs_x.T @ abs_residual) + np.abs(w), grad[d], c * abs_residual.sum(), tol):
            break
        curvature = c * p * (1 - p)
        weighted = x * np.sqrt(curvature)[:, None]
        hessian[:d, :d] = weighted.T @ weighted
        hessian[np.arange(d), np.arange(d)] += 1.0
        hessian[:d, d] = hessian[d, :d] = x.T @ curvature
        hessian[d, d] = curvature.sum() + _INTERCEPT_RIDGE
        step = np.linalg.solve(hessian, grad)
        step_w, step_b = step[:d], float(step[d])
        dz = x @ step_w + step_b
        t = _step_length(z, dz, y, c, float(w @ step_w), float(step_w @ step_w), float(grad @ step))
        if t == 0.0:  # no representable decrease left: converged to rounding
            break
        w -= t * step_w
        b -= t * step_b
        z = x @ w + b
    return w, b


def _newton_rows(x: np.ndarray, y: np.ndarray, c: float, tol: float, max_iter: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`_newton` of many problems of one shape at once: ``x`` ``[M, n, d]``, ``y`` ``[M, n]`` -> ``(w [M, d], b [M])``.

    Each problem takes the steps it would take alone, with the same floating-
    point operations in the same order: stacked matrix products and solves
    call the same BLAS and LAPACK routines per problem as one problem does,
    row sums of C-ordered arrays round as 1-D sums, and the step halving runs
    per problem. So each result is bit for bit :func:`_newton`'s; only the
    numpy calls are shared, which is what a fit of 10 genes on 68 rows costs.
    Problems drop out as they converge.
    """
    m, n, d = x.shape
    abs_x = np.abs(x)
    w, b = np.zeros((m, d)), np.zeros(m)
    z = np.zeros((m, n))
    live = np.arange(m)
    for _ in range(max_iter):
        if not len(live):
            break
        xl, yl, wl, zl = x[live], y[live], w[live], z[live]
        xt = xl.transpose(0, 2, 1)
        p = _sigmoid(zl)
        residual = p - yl
        grad = np.empty((len(live), d + 1))
        grad[:, :d] = c * np.matmul(xt, residual[:, :, None])[:, :, 0] + wl
        grad[:, d] = c * residual.sum(axis=1)
        abs_residual = np.abs(residual)
        size = c * np.matmul(abs_x[live].transpose(0, 2, 1), abs_residual[:, :, None])[:, :, 0] + np.abs(wl)
        size_b = c * abs_residual.sum(axis=1)
        converged = np.all(np.abs(grad[:, :d]) <= tol * size, axis=1) & (np.abs(grad[:, d]) <= tol * size_b)
        going = ~converged
        live, xl, xt, yl, wl, zl, p, grad = (a[going] for a in (live, xl, xt, yl, wl, zl, p, grad))
        if not len(live):
            break
        curvature = c * p * (1 - p)
        weighted = xl * np.sqrt(curvature)[:, :, None]
        hessian = np.empty((len(live), d + 1, d + 1))
        hessian[:, :d, :d] = np.matmul(weighted.transpose(0, 2, 1), weighted)
        hessian[:, np.arange(d), np.arange(d)] += 1.0
        hessian[:, :d, d] = hessian[:, d, :d] = np.matmul(xt, curvature[:, :, None])[:, :, 0]
        hessian[:, d, d] = curvature.sum(axis=1) + _INTERCEPT_RIDGE
        step = np.linalg.solve(hessian, grad[:, :, None])[:, :, 0]
        step_w, step_b = np.ascontiguousarray(step[:, :d]), step[:, d]
        dz = np.matmul(xl, step_w[:, :, None])[:, :, 0] + step_b[:, None]
        t = _step_lengths(
            zl, dz, yl, c, row_dot(wl, step_w), row_dot(step_w, step_w), row_dot(grad, np.ascontiguousarray(step))
        )
        moving = t != 0.0  # no representable decrease left: converged to rounding
        live, xl, wl, t, step_w, step_b = (a[moving] for a in (live, xl, wl, t, step_w, step_b))
        wl -= t[:, None] * step_w
        w[live] = wl
        b[live] -= t * step_b
        z[live] = np.matmul(xl, wl[:, :, None])[:, :, 0] + b[live][:, None]
    return w, b


def _step_lengths(
    z: np.ndarray, dz: np.ndarray, y: np.ndarray, c: float, ws: np.ndarray, ss: np.ndarray, decrement: np.ndarray
) -> np.ndarray:
    """:func:`_step_length` of each row of ``z``, ``dz``, ``y`` ``[M, n]`` (and ``ws``, ``ss``, ``decrement`` ``[M]``)."""
    t = np.ones(len(z))
    found = np.zeros(len(z))
    trying = np.arange(len(z))
    y_dz = row_dot(y, dz)
    while len(trying):
        tt = t[trying]
        loss_change = np.sum(_softplus_change(z[trying], tt[:, None] * dz[trying]), axis=1) + tt * y_dz[trying]
        change = c * loss_change - tt * ws[trying] + 0.5 * tt * tt * ss[trying]
        accepted = change <= -_ARMIJO * tt * decrement[trying]
        found[trying[accepted]] = tt[accepted]
        trying = trying[~accepted]
        t[trying] *= 0.5
        trying = trying[t[trying] >= _MIN_STEP]
    return found


class _RowSpace:
    """An orthonormal basis of the training rows' span, from the Gram matrix ``K = X X^T`` (n x n).

    ``K = U Lambda U^T``; ``U_r, Lambda_r`` keep the eigenvalues above
    ``8 n eps`` times the largest: the numerical rank r <= n. Rows centred per
    gene (standardised on these rows: they sum to zero), duplicate rows and
    p < n give r < n; below the cut an eigenvalue is rounding noise of forming
    K, and keeping it would blow rounding up by ``Lambda^(-1/2)``. ``V = X^T U_r Lambda_r^(-1/2)``
    (p x r, never formed) has orthonormal columns spanning X's row space, and
    ``Z = X V = U_r Lambda_r^(1/2)`` (n x r) are the training rows' coordinates
    in it. The optimal weights lie in that span (representer theorem: the
    penalty only grows off it), so with ``w = V beta``, ``X w = Z beta`` and
    ``||w|| = ||beta||`` the gene-space problem is logistic regression with the
    same penalty on the r features Z: Newton then costs O(n r^2 + r^3) per
    iteration however many genes there are.
    """

    def __init__(self, gram: np.ndarray) -> None:
        gram = np.asarray(gram, dtype=np.float64)
        n = len(gram)
        values, vectors = np.linalg.eigh(gram)
        cut = max(float(values[-1]), 0.0) * n * np.finfo(np.float64).eps * 8 if n else 0.0
        keep = values > cut
        self.values = values[keep]
        self.vectors = vectors[:, keep]
        self.coordinates = self.vectors * np.sqrt(self.values)  # Z

    def dual(self, beta: np.ndarray) -> np.ndarray:
        """``a = U_r Lambda_r^(-1/2) beta``, so that ``w = V beta = X^T a`` and a row x scores ``(x X^T) a``."""
        return self.vectors @ (beta / np.sqrt(self.values))


def fit_binary_logreg_gram(
    gram: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-10, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """Dual coefficients ``a`` and intercept ``b`` of L2 logistic regression from the Gram matrix ``K = X X^T``.

    The weights are ``w = X^T a`` and a row ``x`` scores ``x . w + b = (x X^T) a + b``,
    so the fit never touches the genes: O(n^3) whatever p, once K is formed.
    This is what :func:`fit_binary_logreg` does when genes outnumber samples
    (see :class:`_RowSpace`). ``y`` holds 0/1; ``tol`` as in
    :func:`fit_binary_logreg`.
    """
    space = _RowSpace(gram)
    beta, b = _newton(space.coordinates, np.asarray(y, dtype=np.float64), c, tol, max_iter)
    return space.dual(beta), b


def fit_binary_logreg(
    x: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-10, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """Weights (one per gene) and intercept of L2-penalised logistic regression, solved exactly by Newton's method.

    Minimises ``c * sum(log-loss) + ||w||^2 / 2`` with an unpenalised intercept:
    scikit-learn's ``LogisticRegression(C=c)`` objective (tests check the two
    agree). Newton with step halving converges in a few to a few tens of
    iterations, also on separable data, where the penalty keeps the optimum
    finite. With many genes the work is done in the row space of ``x`` (see
    :func:`fit_binary_logreg_gram`) and the weights recovered as ``X^T a``.
    ``y`` holds 0/1. ``tol``: every gradient component at most this share of
    the summed magnitudes of its terms (see :func:`_converged`).
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, d = x.shape
    if d <= n:
        return _newton(x, y, c, tol, max_iter)
    a, b = fit_binary_logreg_gram(x @ x.T, y, c, tol, max_iter)
    return x.T @ a, b


def logreg_proba(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, c: float = 1.0
) -> np.ndarray:
    """L2-penalised logistic regression (``C=c``) on the standardised panel genes.

    Two classes: :func:`fit_binary_logreg`. More classes: scikit-learn's
    multinomial ``LogisticRegression`` (lbfgs).
    """
    if n_classes == 2:
        if len(np.unique(y_train)) < 2:
            return majority_proba(y_train, len(x_test), 2)
        w, b = fit_binary_logreg(np.asarray(x_train, float), np.asarray(y_train, float), c)
        p = _sigmoid(np.asarray(x_test, float) @ w + b)
        return np.stack([1 - p, p], axis=1)
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x_train, y_train)
    proba = np.zeros((len(x_test), n_classes))
    proba[:, model.classes_] = model.predict_proba(x_test)
    return proba


def logreg_proba_many(
    x_trains: Sequence[np.ndarray],
    y_trains: Sequence[np.ndarray],
    x_tests: Sequence[np.ndarray],
    n_classes: int,
    c: float = 1.0,
) -> list[np.ndarray]:
    """:func:`logreg_proba` of many folds, each the same numbers as alone.

    Two-class fits with no more genes than training rows run together per
    shape (:func:`_newton_rows`); every other fold is fitted alone.
    """
    out: list[np.ndarray | None] = [None] * len(x_trains)
    together: dict[tuple[int, int], list[int]] = {}
    for i, (x, y) in enumerate(zip(x_trains, y_trains, strict=True)):
        n, d = np.shape(x)
        if n_classes == 2 and d <= n and len(np.unique(y)) == 2:
            together.setdefault((n, d), []).append(i)
        else:
            out[i] = logreg_proba(x, y, x_tests[i], n_classes, c)
    for members in together.values():
        if len(members) == 1:
            out[members[0]] = logreg_proba(x_trains[members[0]], y_trains[members[0]], x_tests[members[0]], 2, c)
            continue
        x = np.stack([np.asarray(x_trains[i], dtype=np.float64) for i in members])
        y = np.stack([np.asarray(y_trains[i], dtype=np.float64) for i in members])
        w, b = _newton_rows(x, y, c, tol=1e-10, max_iter=100)
        for j, i in enumerate(members):
            p = _sigmoid(np.asarray(x_tests[i], float) @ w[j] + b[j])
            out[i] = np.stack([1 - p, p], axis=1)
    return out


SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}
"""Our activations and scikit-learn's names for them; ``leaky_relu`` has no counterpart there."""


def sklearn_weight_decay_alpha(weight_decay: float, batch_size: int, n_train: int) -> float:
    """scikit-learn's ``alpha`` giving the weight gradient that torch's Adam ``weight_decay`` gives.

    Our optimiser (torch Adam, coupled L2) steps on ``g + wd * W`` for every
    parameter, ``g`` the gradient of the batch's mean loss. scikit-learn's
    ``_backprop`` adds ``0.5 * alpha * ||W||^2 / b`` to the batch's mean loss and
    in ``_compute_loss_grad`` forms ``(X^T delta + alpha * W) / b``, ``b`` the rows
    of that batch: ``g + (alpha / b) * W``. Equal gradients, hence identical Adam
    steps, need ``alpha = wd * b``, with ``b = min(batch_size, n_train)`` as
    scikit-learn clips it (not ``wd * n_train``: the division is by the batch's
    rows, not the training set's). Exact for every full batch; a last, partial
    batch of ``r < b`` rows (68 rows in batches of 32: 32, 32, 4) gets
    ``wd * b / r`` instead of ``wd``. scikit-learn never decays the intercepts,
    torch's ``weight_decay`` does; no ``alpha`` can change that.
    """
    return float(weight_decay) * min(int(batch_size), int(n_train))


def sklearn_mlp_proba(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    n_classes: int,
    hidden: tuple[int, ...] | list[int] = (64,),
    activation: str = "relu",
    lr: float = 1e-3,
    epochs: int = 1000,
    batch_size: int = 32,
    weight_decay: float = 0.0,
    seed: int = 0,
) -> np.ndarray:
    """Class probabilities ``[n_test, n_classes]`` of scikit-learn's ``MLPClassifier`` with our network's set-up.

    The reviewer's baseline: the standard implementation of the same network,
    to show the workflow's is at least as good. Same hidden layers and
    activation, one logistic output for two classes and a softmax for more (as
    ours), cross-entropy averaged over each minibatch, Adam (beta 0.9 / 0.999,
    eps 1e-8) at ``lr``, reshuffled minibatches of ``batch_size`` rows (at most
    ``n_train``; the last batch of an epoch may be smaller, as ours), exactly
    ``epochs`` epochs: ``tol=0`` and ``n_iter_no_change=epochs + 1`` switch the
    stopping rule off and ``early_stopping`` stays off, so it trains on all
    training rows for all epochs, and the ConvergenceWarning that running out
    of epochs raises is silenced here. ``weight_decay`` maps to ``alpha`` by
    :func:`sklearn_weight_decay_alpha`. What stays different: the initial
    weights (Glorot uniform, ours torch's ``U(+-1/sqrt(fan_in))``), the
    random streams, float64 (ours float32), no dropout, undecayed
    intercepts, and Adam's epsilon added to ``sqrt(v)`` before the bias
    correction instead of after (negligible unless gradients are ~1e-6).

    ``z_train`` and ``z_test`` are standardised genes, ``y_train`` class codes
    ``0 .. n_classes - 1``. Columns are in class-code order; a class absent
    from ``y_train`` gets probability 0, and a single training class gets
    probability 1 without fitting. Deterministic: the same inputs and ``seed``
    give the same output.

    Raises ValueError for ``leaky_relu`` (scikit-learn has no counterpart):
    the caller should skip this baseline for such a model, or fall back to
    another, and say so, rather than substitute a different network.
    scikit-learn is imported here, not with this module, so that jobs not
    using this baseline do not pay its import time.
    """
    if activation not in SKLEARN_ACTIVATIONS:
        raise ValueError(
            f"activation {activation!r} has no scikit-learn MLPClassifier counterpart "
            f"(it has {', '.join(SKLEARN_ACTIVATIONS)}); skip the scikit-learn MLP baseline for this model"
        )
    z_train = np.asarray(z_train, dtype=np.float64)
    z_test = np.asarray(z_test, dtype=np.float64)
    y_train = np.asarray(y_train).astype(np.int64, copy=False)
    if len(y_train) == 0:
        raise ValueError("the scikit-learn MLP baseline needs at least one training row")
    if y_train.min() < 0 or y_train.max() >= n_classes:
        raise ValueError(f"class codes must lie in 0 .. {n_classes - 1}, got {y_train.min()} .. {y_train.max()}")
    present = np.unique(y_train)
    proba = np.zeros((len(z_test), n_classes))
    if len(present) == 1:
        proba[:, present[0]] = 1.0
        return proba

    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    n_train = len(y_train)
    batch = min(int(batch_size), n_train)
    model = MLPClassifier(
        hidden_layer_sizes=tuple(int(h) for h in hidden),
        activation=SKLEARN_ACTIVATIONS[activation],
        solver="adam",
        alpha=sklearn_weight_decay_alpha(weight_decay, batch, n_train),
        batch_size=batch,
        learning_rate_init=lr,
        max_iter=int(epochs),
        shuffle=True,
        random_state=seed,
        tol=0.0,
        n_iter_no_change=int(epochs) + 1,
        early_stopping=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(z_train, y_train)
    proba[:, model.classes_] = model.predict_proba(z_test)
    return proba


def mean_prediction(y_train: np.ndarray, n_test: int) -> np.ndarray:
    """The regression baseline that knows nothing: every test sample gets the training mean."""
    return np.full(n_test, float(np.mean(y_train)))


def ridge_prediction(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Ridge regression (scikit-learn's ``Ridge(alpha)``: intercept not penalised) on the standardised genes.

    Solved in the smaller of the two spaces: the ``genes x genes`` normal
    equations when genes are fewer than samples, else the ``samples x samples``
    kernel form ``w = X^T (X X^T + alpha I)^-1 y`` on centred data, which gives
    the same solution for p >> n in milliseconds.
    """
    x = np.asarray(x_train, dtype=np.float64)
    y = np.asarray(y_train, dtype=np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean()
    xc, yc = x - x_mean, y - y_mean
    n, p = xc.shape
    if p <= n:
        w = np.linalg.solve(xc.T @ xc + alpha * np.eye(p), xc.T @ yc)
    else:
        w = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(n), yc)
    return (np.asarray(x_test, dtype=np.float64) - x_mean) @ w + y_mean


def cox_ridge(
    z_train: np.ndarray, time: np.ndarray, event: np.ndarray, z_test: np.ndarray, alpha: float
) -> tuple[np.ndarray, np.ndarray]:
    """Ridge Cox PH baseline: ``(test_risk, train_risk)`` linear predictors of a fit on the training rows.

    ``sksurv.linear_model.CoxPHSurvivalAnalysis(alpha=alpha, ties="breslow")``
    (penalty alpha/2 ||w||^2 on the features as given). Fallback, so that one
    hard split cannot stop a run: when the fit raises (NaN steps), warns that
    it did not converge or that a Newton system was ill-conditioned (a singular
    Hessian, e.g. duplicated genes without a penalty, where scikit-survival
    returns coefficients of 1e15 that cancel), or gives non-finite
    coefficients, it is refitted with alpha 10 x max(alpha, 1e-3), then x100,
    x1000, x10000; when every try fails, or the training rows hold no event,
    both risks are zeros (the constant-risk model).
    """
    from scipy.linalg import LinAlgWarning
    from sklearn.exceptions import ConvergenceWarning
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    x_train = np.asarray(z_train, dtype=np.float64)
    x_test = np.asarray(z_test, dtype=np.float64)
    t, e = survival_arrays(time, event)
    zeros = (np.zeros(x_test.shape[0]), np.zeros(x_train.shape[0]))
    if not e.any() or x_train.shape[0] < 2:
        return zeros
    y = Surv.from_arrays(event=e, time=t)
    tries = [float(alpha)] + [max(float(alpha), 1e-3) * 10.0**p for p in range(1, 5)]
    for a in tries:
        model = CoxPHSurvivalAnalysis(alpha=a, ties="breslow")
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                model.fit(x_train, y)
            except (ValueError, np.linalg.LinAlgError, FloatingPointError):
                continue
        troubled = any(issubclass(w.category, (ConvergenceWarning, LinAlgWarning)) for w in caught)
        if troubled or not np.isfinite(model.coef_).all():
            continue
        return x_test @ model.coef_, x_train @ model.coef_
    return zeros


def constant_risk(n: int) -> np.ndarray:
    """The constant-risk baseline: ``n`` zeros (C-index 0.5 by the tie rule)."""
    return np.zeros(int(n))
