"""Baselines every model is reported beside, fitted on the same training rows."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

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


def logreg_proba(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, n_classes: int, c: float = 1.0
) -> np.ndarray:
    """L2-penalised logistic regression (lbfgs, C=``c``) on the standardised panel genes."""
    model = LogisticRegression(C=c, max_iter=5000)
    model.fit(x_train, y_train)
    proba = np.zeros((len(x_test), n_classes))
    proba[:, model.classes_] = model.predict_proba(x_test)
    return proba
