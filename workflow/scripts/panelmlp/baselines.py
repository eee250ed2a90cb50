"""Baselines every model is reported beside, fitted on the same training rows."""

from __future__ import annotations

import numpy as np

BASELINES = ("majority", "logreg")


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


def fit_binary_logreg(
    x: np.ndarray, y: np.ndarray, c: float = 1.0, tol: float = 1e-10, max_iter: int = 100
) -> tuple[np.ndarray, float]:
    """Weights and intercept of L2-penalised logistic regression, solved exactly by Newton's method.

    Minimises ``c * sum(log-loss) + ||w||^2 / 2`` with an unpenalised intercept:
    scikit-learn's ``LogisticRegression(C=c)`` objective (tests check the two
    agree). Newton with step halving converges in a few iterations on panel-sized
    problems and needs no scikit-learn import, which costs 2-3 s per job.
    """
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
        p = 1 / (1 + np.exp(-(np.asarray(x_test, float) @ w + b)))
        return np.c_[1 - p, p]
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x_train, y_train)
    proba = np.zeros((len(x_test), n_classes))
    proba[:, model.classes_] = model.predict_proba(x_test)
    return proba
