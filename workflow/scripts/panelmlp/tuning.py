"""Choosing a model without touching test rows: validation parts, inner folds, grid points.

Early stopping (``model.early_stopping``) holds a stratified part of each
split's training rows out as validation rows (:func:`carve_validation`); the
epoch with the lowest validation loss is kept. Nested tuning (``model.grid``)
cuts each split's training rows into stratified inner folds
(:func:`inner_folds`), trains every grid point on every inner fold, and picks
per split the point with the best mean inner validation score
(:func:`select_points`); that point is then retrained on the split's training
rows and scored on its test rows, which no choice ever saw.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence

import numpy as np

from .errors import PanelMlpError
from .seeds import STREAM_VALID, inner_fold_state, stream_rng
from .splits import repeated_kfold, repeated_stratified_kfold

STACK_KEYS = ("hidden", "activation", "batch_size")
"""Grid keys that change a stack's shape or minibatches: points that differ in them train in separate stacks."""

MODEL_KEYS = ("lr", "weight_decay", "dropout")
"""Grid keys that may differ between models of one stack."""

GRID_KEYS = STACK_KEYS + MODEL_KEYS
"""Keys a grid may vary, in the order points are enumerated."""


def grid_points(grid: Mapping[str, Sequence] | None) -> list[dict]:
    """Every combination of the grid's values, in a fixed order (keys as :data:`GRID_KEYS`, values as given).

    An empty or missing grid gives one point, ``{}``: the model section as it is.
    """
    if not grid:
        return [{}]
    unknown = sorted(set(grid) - set(GRID_KEYS))
    if unknown:
        raise PanelMlpError(f"config model.grid: {unknown} cannot be tuned; use any of {list(GRID_KEYS)}")
    keys = [k for k in GRID_KEYS if k in grid]
    for key in keys:
        if not isinstance(grid[key], list | tuple) or not grid[key]:
            raise PanelMlpError(f"config model.grid.{key}: give a non-empty list of values")
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]


def point_label(point: Mapping) -> str:
    """A grid point as text: ``hidden=[16] lr=0.001`` (``default`` for the untuned model)."""
    if not point:
        return "default"
    return " ".join(f"{k}={list(v) if isinstance(v, tuple) else v}" for k, v in point.items())


def _rng(seed: int, split_id: str) -> np.random.Generator:
    return stream_rng(seed, split_id, 0, STREAM_VALID)


def carve_validation(
    train: np.ndarray, y: np.ndarray, fraction: float, seed: int, split_ids: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, valid)`` masks ``[S, N]``: per split, a stratified ``fraction`` of its training rows held out.

    Each class gives ``round(fraction * n_class)`` rows (at least one when it has
    two or more), drawn from the split's own seed, so a split's validation rows
    do not depend on the other splits. A numeric (float) target is not
    stratified: ``round(fraction * n)`` of the rows at random.
    """
    out_train = train.copy()
    valid = np.zeros_like(train)
    regression = np.asarray(y).dtype.kind == "f"
    for s, split_id in enumerate(split_ids):
        rng = _rng(seed, split_id)
        rows = np.flatnonzero(train[s])
        if regression:  # a numeric target has no classes to stratify by: a plain random share
            take = min(max(round(fraction * len(rows)), 1), len(rows) - 1) if len(rows) >= 2 else 0
            chosen = rng.permutation(rows)[:take]
            valid[s, chosen] = True
            out_train[s, chosen] = False
        for c in [] if regression else np.unique(y[rows]):
            members = rows[y[rows] == c]
            take = round(fraction * len(members))
            take = min(max(take, 1), len(members) - 1) if len(members) >= 2 else 0
            chosen = rng.permutation(members)[:take]
            valid[s, chosen] = True
            out_train[s, chosen] = False
        if not valid[s].any():
            raise PanelMlpError(
                f"config model.early_stopping.validation_fraction={fraction}: split {split_id} has too few training "
                "rows to hold any out; raise the fraction or turn early stopping off"
            )
    return out_train, valid


def inner_folds(
    train: np.ndarray, y: np.ndarray, k: int, seed: int, split_id: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``k`` stratified folds of one split's training rows: ``(inner train, inner validation)`` masks ``[N]``.

    A numeric (float) target gets plain k-fold, as its outer splits do.
    """
    rows = np.flatnonzero(train)
    labels = y[rows]
    state = inner_fold_state(seed, split_id)
    if np.asarray(y).dtype.kind == "f":  # a numeric target: plain (unstratified) k-fold
        if len(rows) < k:
            raise PanelMlpError(
                f"config model.inner_folds={k}: split {split_id} has only {len(rows)} training rows; lower model.inner_folds"
            )
        return [_masks(train, rows, a, b) for a, b in repeated_kfold(len(rows), k, 1, state)]
    counts = np.bincount(labels)
    smallest = int(counts[counts > 0].min()) if len(labels) else 0
    if smallest < k:
        raise PanelMlpError(
            f"config model.inner_folds={k}: the smallest class among the training rows of split {split_id} has only "
            f"{smallest} samples; lower model.inner_folds to at most that"
        )
    return [_masks(train, rows, a, b) for a, b in repeated_stratified_kfold(labels, k, 1, state)]


def _masks(
    train: np.ndarray, rows: np.ndarray, inner_train: np.ndarray, inner_valid: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Positions into ``rows`` as ``[N]`` masks shaped like ``train``."""
    a = np.zeros_like(train)
    b = np.zeros_like(train)
    a[rows[inner_train]] = True
    b[rows[inner_valid]] = True
    return a, b


def select_points(scores: np.ndarray, higher_is_better: bool = True) -> np.ndarray:
    """Per outer model, the grid point with the best mean inner score; ``scores`` is ``[models, points, folds]``.

    Folds whose score is undefined (NaN) are left out of the mean; a point with
    no defined score is never chosen unless no point has one. Ties go to the
    earlier point.
    """
    finite = np.isfinite(scores)
    counts = finite.sum(axis=2)
    mean = np.where(counts > 0, np.where(finite, scores, 0.0).sum(axis=2) / np.maximum(counts, 1), np.nan)
    worst = -np.inf if higher_is_better else np.inf
    mean = np.where(np.isnan(mean), worst, mean)
    return np.argmax(mean, axis=1) if higher_is_better else np.argmin(mean, axis=1)
