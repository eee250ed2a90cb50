"""The logistic-regression baseline: equal to scikit-learn at any shape, and well behaved at the edges.

The reference is scikit-learn's ``LogisticRegression(C=c, tol=1e-10, max_iter=10000)``
with newton-cg: its default tolerance (and lbfgs even at 1e-10, about 1e-5 off
at C=100) is too loose to judge a 1e-4 agreement in probability.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from panelmlp.baselines import (
    _newton,
    fit_binary_logreg,
    fit_binary_logreg_gram,
    logreg_proba,
    sklearn_mlp_proba,
    sklearn_weight_decay_alpha,
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


# --- The scikit-learn MLPClassifier baseline ---------------------------------------------------


def planted(n: int, g: int, n_classes: int, seed: int, n_test: int = 60) -> tuple[np.ndarray, ...]:
    """Standardised genes whose class is clearly written in them: class k shifts gene k by +3."""
    rng = np.random.default_rng(seed)
    y = np.arange(n + n_test) % n_classes
    rng.shuffle(y)
    x = rng.normal(size=(n + n_test, g))
    x[np.arange(len(y)), y] += 3.0
    return x[:n], y[:n], x[n:], y[n:]


def direct_mlp(x, y, x_test, hidden, activation, lr, epochs, batch, alpha, seed):
    """MLPClassifier called directly with the settings sklearn_mlp_proba promises."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=hidden,
        activation=activation,
        solver="adam",
        alpha=alpha,
        batch_size=batch,
        learning_rate_init=lr,
        max_iter=epochs,
        shuffle=True,
        random_state=seed,
        tol=0.0,
        n_iter_no_change=epochs + 1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)
    return model, model.predict_proba(x_test)


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sklearn_mlp_shape_order_and_settings(n_classes):
    x, y, x_test, y_test = planted(45, 6, n_classes, seed=10)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ConvergenceWarning, no batch-size clipping warning escapes
        got = sklearn_mlp_proba(
            x, y, x_test, n_classes, hidden=[8, 4], activation="tanh", lr=2e-2, epochs=100, batch_size=64,
            weight_decay=0.01, seed=3,
        )  # fmt: skip
    assert got.shape == (len(x_test), n_classes)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    # Batch 64 clipped to the 45 rows, alpha = 0.01 * 45, all 100 epochs, no early stop.
    model, want = direct_mlp(x, y, x_test, (8, 4), "tanh", 2e-2, 100, 45, 0.01 * 45, 3)
    assert model.n_iter_ == 100
    assert np.array_equal(got, want)
    # Columns in class-code order: each held-out row's largest probability is mostly its own class
    # (a permutation of the columns would score about 1 / n_classes).
    assert np.mean(got.argmax(axis=1) == y_test) > 0.8


@pytest.mark.parametrize(("n_classes", "present"), [(3, [0, 2]), (4, [1, 2, 3]), (3, [1])])
def test_sklearn_mlp_class_absent_from_training(n_classes, present):
    x, y, x_test, y_test = planted(60, 5, n_classes, seed=11)
    keep = np.isin(y, present)
    got = sklearn_mlp_proba(x[keep], y[keep], x_test, n_classes, hidden=[8], epochs=80, lr=1e-2, seed=1)
    assert got.shape == (len(x_test), n_classes)
    absent = [k for k in range(n_classes) if k not in present]
    assert np.all(got[:, absent] == 0.0)
    np.testing.assert_allclose(got.sum(axis=1), 1.0, atol=1e-12)
    if len(present) == 1:
        assert np.all(got[:, present[0]] == 1.0)
    else:
        rows = np.isin(y_test, present)
        assert np.mean(got[rows].argmax(axis=1) == y_test[rows]) > 0.9


def test_sklearn_mlp_is_deterministic():
    x, y, x_test, _ = planted(50, 5, 2, seed=12)
    first = sklearn_mlp_proba(x, y, x_test, 2, hidden=[16], epochs=50, seed=4)
    assert np.array_equal(first, sklearn_mlp_proba(x, y, x_test, 2, hidden=[16], epochs=50, seed=4))
    assert not np.array_equal(first, sklearn_mlp_proba(x, y, x_test, 2, hidden=[16], epochs=50, seed=5))


@pytest.mark.parametrize("n_classes", [2, 3])
def test_sklearn_mlp_separates_planted_classes(n_classes):
    from sklearn.metrics import roc_auc_score

    # The default real-cohort shape: 5 genes, 68 training rows, hidden [64], batch 32 (epochs cut to 300).
    x, y, x_test, y_test = planted(68, 5, n_classes, seed=13, n_test=90)
    proba = sklearn_mlp_proba(x, y, x_test, n_classes, epochs=300)
    auc = roc_auc_score(y_test, proba[:, 1]) if n_classes == 2 else roc_auc_score(y_test, proba, multi_class="ovr")
    assert auc > 0.9


def test_sklearn_mlp_leaky_relu_is_a_clear_error():
    x, y, x_test, _ = planted(20, 3, 2, seed=14)
    with pytest.raises(ValueError, match=r"'leaky_relu' has no scikit-learn MLPClassifier counterpart.*skip"):
        sklearn_mlp_proba(x, y, x_test, 2, activation="leaky_relu")
    with pytest.raises(ValueError, match="class codes"):
        sklearn_mlp_proba(x, y + 1, x_test, 2)


ADAM_EPS = 1e-15
"""Adam's epsilon in the step comparison. scikit-learn adds it to ``sqrt(v)``, torch to the bias-corrected
``sqrt(v) / sqrt(1 - beta2^t)``; at the default 1e-8 that alone moves the weights by ~1e-6 here."""


def sklearn_steps(x, y, init, alpha, batch, epochs, lr):
    """MLPClassifier's weights after ``epochs`` unshuffled epochs of Adam from the weights ``init``."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    model = MLPClassifier(
        hidden_layer_sizes=(init[0][0].shape[1],), activation="tanh", solver="adam", alpha=alpha,
        batch_size=batch, learning_rate_init=lr, max_iter=1, shuffle=False, warm_start=True, tol=0.0,
        n_iter_no_change=1000, random_state=0, epsilon=ADAM_EPS,
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x, y)  # sets the model up; then restart from ``init`` with a fresh Adam
        model.coefs_ = [w.copy() for w, _ in init]
        model.intercepts_ = [b.copy() for _, b in init]
        model.set_params(max_iter=epochs)
        model.fit(x, y)
    return model.coefs_


def torch_steps(x, y, init, weight_decay, batch, epochs, lr, n_classes):
    """The same steps with torch's Adam ``weight_decay`` (coupled L2, as the workflow's optimiser) on the weights."""
    import torch

    weights = [torch.tensor(w, requires_grad=True) for w, _ in init]
    biases = [torch.tensor(b, requires_grad=True) for _, b in init]
    optimiser = torch.optim.Adam(
        [{"params": weights, "weight_decay": weight_decay}, {"params": biases, "weight_decay": 0.0}],
        lr=lr,
        eps=ADAM_EPS,
    )
    xt, yt = torch.tensor(x), torch.tensor(y)
    for _ in range(epochs):
        for start in range(0, len(x), batch):
            logits = torch.tanh(xt[start : start + batch] @ weights[0] + biases[0]) @ weights[1] + biases[1]
            target = yt[start : start + batch]
            if n_classes == 2:
                loss = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target.double())
            else:
                loss = torch.nn.functional.cross_entropy(logits, target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return [w.detach().numpy() for w in weights]


@pytest.mark.parametrize("n_classes", [2, 3])
def test_weight_decay_maps_to_alpha_times_batch_rows(n_classes):
    # torch Adam steps on g + wd * W; scikit-learn on g + (alpha / b) * W with b the batch's rows
    # (_compute_loss_grad: (X^T delta + alpha W) / b). Same gradients, same Adam steps, iff alpha = wd * b.
    # 24 rows in 3 unshuffled full batches of 8, 5 epochs: 15 Adam steps from the same start;
    # the intercepts are not decayed on either side (scikit-learn never decays them).
    rng = np.random.default_rng(15)
    x = rng.normal(size=(24, 4))
    y = rng.integers(0, n_classes, size=24)
    outputs = 1 if n_classes == 2 else n_classes
    init = [(rng.uniform(-0.5, 0.5, (4, 6)), rng.uniform(-0.5, 0.5, 6))]
    init.append((rng.uniform(-0.5, 0.5, (6, outputs)), rng.uniform(-0.5, 0.5, outputs)))
    wd, batch, epochs, lr = 0.3, 8, 5, 0.02
    want = torch_steps(x, y, init, wd, batch, epochs, lr, n_classes)
    alpha = sklearn_weight_decay_alpha(wd, batch, len(x))
    assert alpha == wd * batch
    for got, ref in zip(sklearn_steps(x, y, init, alpha, batch, epochs, lr), want, strict=True):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)
    # The mapping matters: alpha = wd * n_train (3x too strong here) or no decay ends elsewhere.
    for wrong in (wd * len(x), 0.0):
        off = sklearn_steps(x, y, init, wrong, batch, epochs, lr)
        assert max(np.max(np.abs(a - b)) for a, b in zip(off, want, strict=True)) > 1e-4
    # Batch size clipped to the training rows, as scikit-learn clips it.
    assert sklearn_weight_decay_alpha(0.01, 32, 20) == pytest.approx(0.2)
