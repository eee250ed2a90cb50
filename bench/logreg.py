"""Seconds per binary logistic-regression baseline fit: exact primal Newton (before) vs row-space Newton (now).

Both minimise scikit-learn's ``LogisticRegression(C)`` objective to float64
rounding. The old solver (copied here, code unchanged) runs Newton on all p + 1 weights,
O(p^3) per iteration; the new one (``panelmlp.baselines.fit_binary_logreg``)
switches to the n-dimensional row space when genes outnumber samples. Data:
n = 800 standardised Gaussian samples (plus 200 test rows), signal planted in
5 genes, about 30% positives. The old solver is skipped where its time,
predicted as p^3 from the last size it ran at (or from a 1,000-gene fit),
would exceed ``--old-limit`` seconds.

    python bench/logreg.py                 # p = 1,000 2,500 5,000 20,000
    python bench/logreg.py --n 2000 --p 20000 --c 100  # other shapes and penalties
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine
from panelmlp.baselines import fit_binary_logreg


def old_fit_binary_logreg(
    x: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-10, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """The solver before the row-space method (commit c620804), unchanged."""
    n, d = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    theta = np.zeros(d + 1)
    penalty = np.r_[np.ones(d), 0.0]

    def objective(t: np.ndarray) -> float:
        z = design @ t
        return float(c * np.sum(np.logaddexp(0, z) - y * z) + 0.5 * np.sum(penalty * t * t))

    value = objective(theta)
    for _ in range(max_iter):
        p = 1 / (1 + np.exp(-(design @ theta)))
        grad = c * design.T @ (p - y) + penalty * theta
        if np.max(np.abs(grad)) < tol:
            break
        hessian = c * (design.T * (p * (1 - p))) @ design + np.diag(penalty) + 1e-12 * np.eye(d + 1)
        step = np.linalg.solve(hessian, grad)
        scale = 1.0
        while scale > 1e-8:
            candidate = theta - scale * step
            new = objective(candidate)
            if new <= value:
                break
            scale /= 2
        theta, value = candidate, new
    return theta[:d], float(theta[d])


def data(n: int, p: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training genes, 0/1 labels and 200 test rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 200, p))
    score = x[:, :5].sum(axis=1) + 2 * rng.normal(size=n + 200)
    y = (score > np.quantile(score, 0.7)).astype(float)
    return x[:n], y[:n], x[n:]


def seconds(fit, x: np.ndarray, y: np.ndarray, c: float, repeats: int) -> tuple[float, tuple[np.ndarray, float]]:
    """Fastest of ``repeats`` wall-clock fits (s), and the last fit's weights and intercept."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = fit(x, y, c)
        best = min(best, time.perf_counter() - start)
    return best, result


def old_seconds_estimate(n: int, p: int, measured: tuple[int, float] | None, c: float) -> float:
    """Predicted seconds of one old fit at p genes: p^3 from the last measured size.

    Without a measurement yet, the old solver is first timed at ``min(p, 1000)``
    genes (about a second) to have one.
    """
    if measured is None:
        small = min(p, 1000)
        x, y, _ = data(n, small)
        measured = (small, seconds(old_fit_binary_logreg, x, y, c, 1)[0])
    return measured[1] * (p / measured[0]) ** 3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=800, help="training samples")
    parser.add_argument("--p", type=int, nargs="+", default=[1000, 2500, 5000, 20000], help="gene counts")
    parser.add_argument("--c", type=float, default=1.0, help="inverse penalty, as scikit-learn's C")
    parser.add_argument("--repeats", type=int, default=3, help="fits per contender and size; the fastest counts")
    parser.add_argument("--old-limit", type=float, default=30.0, help="skip the old solver beyond this many s")
    args = parser.parse_args()

    print(machine())
    print(f"n = {args.n} training samples, C = {args.c:g}, fastest of {args.repeats} fits (old: 1)\n")
    print("| genes | old s / fit | new s / fit | old / new | max abs(p_old - p_new) |")
    print("|---:|---:|---:|---:|---:|")
    old_at: tuple[int, float] | None = None
    for p in sorted(args.p):
        x, y, x_test = data(args.n, p)
        new_s, (w, b) = seconds(fit_binary_logreg, x, y, args.c, args.repeats)
        predicted = old_seconds_estimate(args.n, p, old_at, args.c)
        if predicted > args.old_limit:
            print(f"| {p:,} | skipped (~{predicted:,.0f} s predicted) | {new_s:.3f} | ~{predicted / new_s:,.0f}x | |")
            continue
        old_s, (w_old, b_old) = seconds(old_fit_binary_logreg, x, y, args.c, 1)
        old_at = (p, old_s)
        gap = np.max(np.abs(1 / (1 + np.exp(-(x_test @ w + b))) - 1 / (1 + np.exp(-(x_test @ w_old + b_old)))))
        print(f"| {p:,} | {old_s:.3f} | {new_s:.3f} | {old_s / new_s:,.1f}x | {gap:.1e} |")


if __name__ == "__main__":
    main()
