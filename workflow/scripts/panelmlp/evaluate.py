"""The baselines beside every MLP, behind one protocol, as a registry (scikit-learn style: fit on train, score test).

Each baseline is fitted on one split's training rows of one panel (genes
standardised with that split's training statistics, uninformative genes 0)
and scores the split's test rows. What it returns depends on the target kind:
class probabilities ``[n, C]``, predicted values ``[n, 1]``, or risks
``[n, 1]`` (a survival baseline also scores its training rows, which the
Breslow baseline hazard and the risk-group cut need). The fit step asks
:func:`baselines_for` and never names a baseline itself.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .baselines import (
    constant_risk,
    cox_ridge,
    logreg_proba,
    logreg_proba_many,
    majority_proba,
    mean_prediction,
    ridge_prediction,
    sklearn_mlp_proba,
)
from .errors import PanelMlpError


@dataclass
class Fold:
    """One panel on one split, as a baseline sees it."""

    z_train: np.ndarray
    """Standardised training rows ``[n_train, genes]``."""
    y_train: np.ndarray
    """Training labels: class codes, values, or ``[n, 2]`` (time, event)."""
    z_test: np.ndarray
    """Standardised test rows ``[n_test, genes]``."""
    n_classes: int = 2
    options: dict = field(default_factory=dict)
    """The evaluate section's settings a baseline reads (``logreg_C``, ``ridge_alpha``) and the model spec (``spec``)."""


@dataclass
class Output:
    """A baseline's scores of the test rows and, where the kind needs them, of the training rows."""

    test: np.ndarray
    train: np.ndarray | None = None

    @property
    def train_median(self) -> float | None:
        """The median score of the training rows (a survival model's risk-group cut), or None without them."""
        return None if self.train is None else float(np.median(self.train[:, 0]))


@dataclass(frozen=True)
class Baseline:
    """A named baseline of one target kind: ``fit_score(fold) -> Output``."""

    name: str
    kind: str
    fit_score: Callable[[Fold], Output]
    describe: str
    available: Callable[[dict], bool] = lambda options: True
    """Whether it can run with these options (scikit-learn's MLP lacks leaky_relu)."""
    fit_score_many: Callable[[Sequence[Fold]], list[Output]] | None = None
    """Where the baseline can fit many folds at once (the same numbers as one at a time, faster): ``folds -> outputs``."""
    reads_genes: bool = True
    """False for a baseline that sees only the training labels and the row counts (the majority class, the
    training mean, the constant risk): its output on a split is the same for every panel, so the fit step
    fits and scores it once per split."""


def _majority(fold: Fold) -> Output:
    return Output(majority_proba(fold.y_train, len(fold.z_test), fold.n_classes))


def _logreg(fold: Fold) -> Output:
    return Output(logreg_proba(fold.z_train, fold.y_train, fold.z_test, fold.n_classes, c=fold.options["logreg_C"]))


def _logreg_many(folds: Sequence[Fold]) -> list[Output]:
    """:func:`_logreg` of every fold; two-class folds of one shape are fitted together (:func:`logreg_proba_many`)."""
    if not folds:
        return []
    probas = logreg_proba_many(
        [f.z_train for f in folds],
        [f.y_train for f in folds],
        [f.z_test for f in folds],
        folds[0].n_classes,
        c=folds[0].options["logreg_C"],
    )
    return [Output(p) for p in probas]


def fit_score_all(baseline: Baseline, folds: Sequence[Fold]) -> list[Output]:
    """``baseline.fit_score`` of every fold (all of one kind's classes and options), at once where it can."""
    if baseline.fit_score_many is not None:
        return baseline.fit_score_many(folds)
    return [baseline.fit_score(fold) for fold in folds]


def _sklearn_mlp(fold: Fold) -> Output:
    spec = fold.options["spec"]
    return Output(
        sklearn_mlp_proba(
            fold.z_train,
            fold.y_train,
            fold.z_test,
            fold.n_classes,
            hidden=spec.hidden,
            activation=spec.activation,
            lr=spec.lr,
            epochs=spec.epochs,
            batch_size=spec.batch_size,
            weight_decay=spec.weight_decay,
            seed=spec.seed,
        )
    )


def _mean(fold: Fold) -> Output:
    return Output(mean_prediction(fold.y_train, len(fold.z_test))[:, None])


def _ridge(fold: Fold) -> Output:
    return Output(ridge_prediction(fold.z_train, fold.y_train, fold.z_test, alpha=fold.options["ridge_alpha"])[:, None])


def _constant_risk(fold: Fold) -> Output:
    return Output(constant_risk(len(fold.z_test))[:, None], constant_risk(len(fold.z_train))[:, None])


def _cox_ridge(fold: Fold) -> Output:
    test, train = cox_ridge(
        fold.z_train, fold.y_train[:, 0], fold.y_train[:, 1].astype(bool), fold.z_test, fold.options["ridge_alpha"]
    )
    return Output(np.asarray(test, dtype=np.float64)[:, None], np.asarray(train, dtype=np.float64)[:, None])


REGISTRY: dict[str, Baseline] = {
    b.name: b
    for b in (
        Baseline(
            "majority",
            "classification",
            _majority,
            "always the most frequent training class",
            reads_genes=False,
        ),
        Baseline(
            "logreg",
            "classification",
            _logreg,
            "L2 logistic regression (scikit-learn's lbfgs, C = logreg_C)",
            fit_score_many=_logreg_many,
        ),
        Baseline(
            "sklearn_mlp",
            "classification",
            _sklearn_mlp,
            "scikit-learn's MLPClassifier with the model's architecture",
            available=lambda options: options["spec"].activation != "leaky_relu",
        ),
        Baseline("mean", "regression", _mean, "the training mean", reads_genes=False),
        Baseline("ridge", "regression", _ridge, "ridge regression (alpha = ridge_alpha)"),
        Baseline("constant", "survival", _constant_risk, "the same risk for everyone (C-index 0.5)", reads_genes=False),
        Baseline(
            "cox_ridge",
            "survival",
            _cox_ridge,
            "Cox proportional hazards with a ridge penalty (scikit-survival, alpha = ridge_alpha)",
        ),
    )
}
"""Every baseline by name."""


def baselines_for(kind: str, always: Sequence[str], requested: Sequence[str], options: dict) -> list[Baseline]:
    """The baselines of a fit: the kind's ``always`` ones, then those of ``requested`` that belong to the kind.

    A requested name of another kind is skipped (the default list names the
    classification baselines; a regression or survival run fits its own); an
    unknown name is an error.
    """
    unknown = [name for name in requested if name not in REGISTRY]
    if unknown:
        raise PanelMlpError(f"config evaluate.baselines: unknown baseline(s) {unknown}; known: {', '.join(REGISTRY)}")
    names = list(dict.fromkeys([*always, *requested]))
    chosen = [REGISTRY[n] for n in names if REGISTRY[n].kind == kind]
    return [b for b in chosen if b.available(options)]
