"""The logistic-regression baseline: equal to scikit-learn at any shape, and well behaved at the edges.

The reference is scikit-learn's ``LogisticRegression(C=c, tol=1e-10, max_iter=10000)``
with newton-cg: its default tolerance (and lbfgs even at 1e-10, about 1e-5 off
at C=100) is too loose to judge a 1e-4 agreement in probability.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from panelmlp.baselines import (
    _newton,
    fit_binary_logreg,
    fit_binary_logreg_gram,
    logreg_proba,
)

REPO = Path(__file__).resolve().parents[1]
AGREEMENT = 1e-4  # max |p_ours - p_sklearn| on held-out rows


def cohort(n: int, p: int, kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Standardised-like genes, 0/1 labels and 100 held-out rows.

    ``signal``: labels from 5 planted genes plus noise, half positive;
    ``noise``: labels independent of the genes, half positive;
    ``imbalanced``: planted signal, 12% positive.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + 100, p))
    score = rng.normal(size=n + 100) if kind == "noise" else x[:, :5].sum(axis=1) + 1.5 * rng.normal(size=n + 100)
    positive = 0.12 if kind == "imbalanced" else 0.5
    y = (score > np.quantile(score, 1 - positive)).astype(int)
    return x[:n], y[:n], x[n:]


def reference_proba(x: np.ndarray, y: np.ndarray, x_test: np.ndarray, c: float) -> np.ndarray:
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, tol=1e-10, max_iter=10000, solver="newton-cg").fit(x, y)
    return model.predict_proba(x_test)


def gradient(x: np.ndarray, y: np.ndarray, c: float, w: np.ndarray, b: float) -> np.ndarray:
    """Gradient of ``c * sum(log-loss) + ||w||^2 / 2`` in (w, b)."""
    residual = 1 / (1 + np.exp(-(x @ w + b))) - y
    return np.r_[c * x.T @ residual + w, c * residual.sum()]


@pytest.mark.parametrize("c", [0.01, 1.0, 100.0])
@pytest.mark.parametrize("kind", ["signal", "noise", "imbalanced"])
@pytest.mark.parametrize(
    ("n", "p"),
    [(200, 20), (150, 150), (150, 170), (80, 2000), (300, 5000)],
    ids=["p<n", "p=n", "p~n", "p>n", "p>>n"],
)
def test_probabilities_match_scikit_learn(n, p, kind, c):
    x, y, x_test = cohort(n, p, kind, seed=n + p)
    got = logreg_proba(x, y, x_test, 2, c)
    want = reference_proba(x, y, x_test, c)
    assert np.max(np.abs(got - want)) < AGREEMENT


@pytest.mark.parametrize("c", [1.0, 100.0, 1e4])
def test_row_space_and_primal_newton_agree(c):
    # Same data, both methods: the row-space route (p > n) against Newton on all 400 genes.
    x, y, x_test = cohort(60, 400, "signal", seed=1)
    w, b = fit_binary_logreg(x, y.astype(float), c)
    w_primal, b_primal = _newton(x, y.astype(float), c, 1e-10, 100)
    np.testing.assert_allclose(x_test @ w + b, x_test @ w_primal + b_primal, atol=1e-7)
    np.testing.assert_allclose(w, w_primal, atol=1e-8)


@pytest.mark.parametrize("c", [1.0, 100.0])
def test_duplicate_rows_and_constant_genes(c):
    # Singular Gram matrix: 20 duplicated samples (with their own labels) and 30 genes at their mean.
    rng = np.random.default_rng(2)
    x = rng.normal(size=(60, 500))
    x = np.vstack([x, x[:20]])
    x[:, 100:130] = 0.0
    y = (x[:, 0] + rng.normal(size=80) > 0).astype(int)
    x_test = rng.normal(size=(50, 500))
    w, b = fit_binary_logreg(x, y.astype(float), c)
    assert np.all(np.isfinite(w)) and np.isfinite(b)
    assert np.all(w[100:130] == 0.0)
    got = 1 / (1 + np.exp(-(x_test @ w + b)))
    assert np.max(np.abs(got - reference_proba(x, y, x_test, c)[:, 1])) < AGREEMENT


@pytest.mark.parametrize("c", [0.01, 1.0, 100.0])
def test_rows_standardised_on_themselves(c):
    # Centred genes make the training rows sum to zero, so K = X X^T is singular along the
    # all-ones vector: exactly the intercept's direction, which must stay unpenalised.
    x, y, x_test = cohort(120, 1500, "imbalanced", seed=8)
    mean, std = x.mean(axis=0), x.std(axis=0)
    x, x_test = (x - mean) / std, (x_test - mean) / std
    got = logreg_proba(x, y, x_test, 2, c)
    assert np.max(np.abs(got - reference_proba(x, y, x_test, c))) < AGREEMENT


@pytest.mark.parametrize(("n", "p"), [(100, 20), (60, 2000)])
def test_separable_data_converges_in_few_iterations(n, p):
    # Perfectly separable (by gene 0), weak penalty: the optimum is finite and Newton reaches it well
    # inside 40 iterations; the answer with 40 allowed is the answer with 1000 allowed.
    rng = np.random.default_rng(3)
    x = rng.normal(size=(n, p))
    y = (x[:, 0] > 0).astype(float)
    c = 1e4
    w, b = fit_binary_logreg(x, y, c, max_iter=40)
    w_long, b_long = fit_binary_logreg(x, y, c, max_iter=1000)
    assert np.array_equal(w, w_long) and b == b_long
    grad = gradient(x, y, c, w, b)
    assert np.linalg.norm(grad) < 1e-9 * c * np.sqrt((x * x).sum() + n)
    assert np.all(np.sign(x @ w + b) == 2 * y - 1)


def test_intercept_stays_unpenalised_when_genes_carry_nothing():
    # All genes constant: the fit is the intercept alone, the log-odds of the training prevalence.
    x = np.zeros((40, 300))
    y = np.r_[np.zeros(30), np.ones(10)]
    w, b = fit_binary_logreg(x, y, 0.01)
    assert np.all(w == 0.0)
    assert b == pytest.approx(np.log(10 / 30), abs=1e-9)


@pytest.mark.parametrize(("n", "p"), [(120, 30), (50, 600)])
def test_deterministic_and_float32_input(n, p):
    x, y, x_test = cohort(n, p, "signal", seed=4)
    first = logreg_proba(x, y, x_test, 2, 1.0)
    assert np.array_equal(first, logreg_proba(x, y, x_test, 2, 1.0))
    np.testing.assert_allclose(
        logreg_proba(x.astype(np.float32), y, x_test.astype(np.float32), 2, 1.0), first, atol=1e-5
    )


def test_gram_fit_gives_the_same_weights():
    x, y, _ = cohort(50, 600, "signal", seed=5)
    a, b = fit_binary_logreg_gram(x @ x.T, y, 2.0)
    w, b_direct = fit_binary_logreg(x, y.astype(float), 2.0)
    np.testing.assert_allclose(x.T @ a, w, atol=1e-12)
    assert b == b_direct


def test_one_class_in_training_falls_back_to_majority():
    x = np.random.default_rng(7).normal(size=(10, 50))
    proba = logreg_proba(x, np.ones(10, int), x[:3], 2)
    assert np.all(proba[:, 1] == 1.0)


def test_binary_baseline_does_not_import_scikit_learn():
    code = (
        "import sys, numpy as np\n"
        "from panelmlp.baselines import logreg_proba\n"
        "x = np.random.default_rng(0).normal(size=(30, 80))\n"
        "logreg_proba(x, (x[:, 0] > 0).astype(int), x, 2)\n"
        "assert 'sklearn' not in sys.modules\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={"PYTHONPATH": str(REPO / "workflow" / "scripts")},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
