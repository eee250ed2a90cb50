"""The fit job's work outside training, made faster without changing a number (issue 16, part 3).

- The calibration fits of many models run together (:func:`panelmlp.metrics.calibration_fits`): each
  row's slope and intercept must be bit for bit the one-model fit, :func:`panelmlp.metrics.calibration_fit`
  (unchanged; tests/test_calibration.py checks it against independent references).
- Baselines blind to the genes (``reads_genes=False``) are scored once per split: their output must
  not depend on the genes.
- Checkpoints hold each tensor alone, not the stack's storage it was cut from.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from panelmlp import fit
from panelmlp.baselines import _newton, _newton_rows, logreg_proba, logreg_proba_many
from panelmlp.checkpoint import compact_tensors, load_checkpoint, save_checkpoint
from panelmlp.evaluate import REGISTRY, Fold, fit_score_all
from panelmlp.metrics import (
    calibration_fit,
    calibration_fits,
    calibration_metrics,
    calibration_metrics_many,
    classification_metrics,
    classification_metrics_many,
)
from panelmlp.model import build_mlp
from panelmlp.targets.classification import final_metrics, final_metrics_many
from sklearn.metrics import confusion_matrix
from test_fit import _collection, _fit, inputs  # noqa: F401 (inputs: the fit tests' cohort fixture)


def _same(a: float, b: float) -> bool:
    """Equal bit for bit, NaN equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


def _cases(n: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``count`` outcome and probability rows of ``n`` samples, with the hard cases among them: one class,
    separated classes, constant predictions, probabilities of exactly 0 and 1, slopes far from 1."""
    rng = np.random.default_rng(seed)
    y = (rng.random((count, n)) < rng.uniform(0.1, 0.9, (count, 1))).astype(float)
    p = 1 / (1 + np.exp(-rng.normal(0, rng.uniform(0.1, 8), (count, 1)) * rng.normal(size=(count, n))))
    p = np.where(y == 1, p ** rng.uniform(0.3, 1.0, (count, 1)), p)  # some signal
    y[0] = 1.0  # one class only
    y[1], p[1] = np.arange(n) % 2, np.where(np.arange(n) % 2, 0.9, 0.1)  # separated
    y[2], p[2] = np.arange(n) % 2, 0.3  # constant prediction
    p[3, : n // 2] = 0.0  # clipped to eps
    p[4, n // 2 :] = 1.0
    return y, p


@pytest.mark.parametrize(("n", "seed"), [(3, 0), (8, 1), (17, 2), (18, 3), (40, 4), (133, 5)])
def test_batched_calibration_fits_are_each_fit_alone_bit_for_bit(n, seed):
    y, p = _cases(n, 60, seed)
    slopes, intercepts = calibration_fits(y, p)
    for m in range(len(y)):
        want = calibration_fit(y[m], p[m])
        assert _same(slopes[m], want[0]) and _same(intercepts[m], want[1]), (m, slopes[m], intercepts[m], want)
    assert np.isfinite(slopes).sum() > (30 if n >= 17 else 5)  # many rows have a slope: the batch fitted
    assert math.isnan(slopes[0]) and math.isnan(intercepts[0])  # one class: nothing to fit
    assert math.isnan(slopes[1]) and math.isfinite(intercepts[1])  # separated: no slope, an intercept
    assert math.isnan(slopes[2]) and math.isfinite(intercepts[2])  # constant: no slope


def test_metrics_of_many_models_are_each_model_alone():
    """Models of mixed test sizes and class counts, scored together and one at a time: the same rows."""
    rng = np.random.default_rng(7)
    ys, probas = [], []
    for _ in range(40):
        n, c = int(rng.choice([9, 17, 17, 30])), int(rng.choice([2, 2, 3]))
        y = rng.integers(0, c, n)
        y[:c] = np.arange(c)  # every class present
        logits = rng.normal(size=(n, c)) + 1.5 * (np.arange(c) == y[:, None]) * rng.uniform(0, 2)
        proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        ys.append(y)
        probas.append(proba)
    many = classification_metrics_many(ys, probas)
    for y, proba, row in zip(ys, probas, many, strict=True):
        alone = classification_metrics(y, proba)
        assert list(row) == list(alone)
        assert all(_same(float(row[k]), float(alone[k])) for k in row)
        rows = [(y == 1, proba[:, 1])] if proba.shape[1] == 2 else [(y == c, proba[:, c]) for c in range(3)]
        want = np.array([calibration_fit(yy, pp) for yy, pp in rows]).mean(axis=0)
        assert _same(row["calibration_slope"], float(want[0])) and _same(row["calibration_intercept"], float(want[1]))
        one, of_many = calibration_metrics(y, proba), calibration_metrics_many([y], [proba])[0]
        assert all(_same(one[k], of_many[k]) for k in one)
        if proba.shape[1] == 2:  # the confusion counts, by scikit-learn
            tn, fp, fn, tp = confusion_matrix(y, (proba[:, 1] >= 0.5).astype(int), labels=[0, 1]).ravel()
            assert (row["tn"], row["fp"], row["fn"], row["tp"]) == (tn, fp, fn, tp)
    items = [(y, proba, None) for y, proba in zip(ys, probas, strict=True)]
    for got, want in zip(final_metrics_many(items), (final_metrics(*item) for item in items), strict=True):
        assert all(_same(float(got[k]), float(want[k])) for k in want)


@pytest.mark.parametrize("name", [n for n, b in REGISTRY.items() if not b.reads_genes])
def test_a_baseline_blind_to_the_genes_gives_every_panel_of_a_split_the_same_output(name):
    """The fit step scores such a baseline once per split and hands its rows to every panel."""
    rng = np.random.default_rng(3)
    kind = REGISTRY[name].kind
    y_train = {
        "classification": rng.integers(0, 2, 30),
        "regression": rng.normal(size=30),
        "survival": np.c_[rng.uniform(1, 100, 30), rng.integers(0, 2, 30)],
    }[kind]
    outputs = [
        REGISTRY[name].fit_score(Fold(rng.normal(size=(30, g)), y_train, rng.normal(size=(9, g)), 2, {}))
        for g in (3, 10)
    ]
    np.testing.assert_array_equal(outputs[0].test, outputs[1].test)
    if outputs[0].train is not None:
        np.testing.assert_array_equal(outputs[0].train, outputs[1].train)


def test_a_baseline_that_reads_the_genes_is_marked_so():
    assert REGISTRY["logreg"].reads_genes and REGISTRY["ridge"].reads_genes and REGISTRY["cox_ridge"].reads_genes
    assert not REGISTRY["majority"].reads_genes


def test_checkpoint_of_a_model_cut_from_a_stack_holds_only_its_own_tensors(tmp_path):
    """A bias that is a row of a 550-model stack is written as its 64 values, and loads as the same tensor."""
    net = build_mlp(3, [64], 2, "relu", 0.0)
    stack_bias = torch.randn(550, 64)
    state = dict(net.state_dict())
    state["0.bias"] = stack_bias[17]  # a view: its storage holds all 550 biases
    own = state["0.weight"]
    compact = compact_tensors(state)
    assert compact["0.weight"] is own  # a tensor with a storage of its own is kept as it is
    assert compact["0.bias"].untyped_storage().nbytes() == 64 * 4
    path = tmp_path / "model.pt"
    save_checkpoint(path, state, ["A", "B", "C"], [0.0] * 3, [1.0] * 3, ["x", "y"], "y", {}, "holdout", "cpu")
    assert path.stat().st_size < 20_000  # the stack's biases alone would be 140 KB
    loaded = load_checkpoint(path)["state_dict"]
    for key, tensor in state.items():
        assert torch.equal(loaded[key], tensor) and loaded[key].shape == tensor.shape
    assert torch.load(path, weights_only=True)["state_dict"].keys() == state.keys()


def _logreg_folds(seed: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Training rows, labels and test rows of folds of several shapes, among them one training class, more
    genes than rows, separable classes, a constant gene and a strong signal."""
    rng = np.random.default_rng(seed)
    folds = []
    for n, d in [(68, 10)] * 12 + [(68, 7)] * 5 + [(30, 10)] * 3 + [(12, 25), (40, 1)]:
        x = rng.normal(size=(n, d))
        y = (x[:, 0] * rng.uniform(0, 4) + rng.normal(size=n) > 0).astype(int)
        y[:2] = [0, 1]
        folds.append((x, y, rng.normal(size=(17, d))))
    folds[1] = (folds[1][0], np.zeros(68, dtype=int), folds[1][2])  # one training class: the majority
    x, _, t = folds[2]
    folds[2] = (x, (x[:, 0] > 0).astype(int), t)  # separable
    folds[3][0][:, 4] = 0.0  # a constant (uninformative) gene
    return folds


@pytest.mark.parametrize("seed", [0, 1])
def test_logistic_regressions_fitted_together_are_each_fit_alone_bit_for_bit(seed):
    folds = _logreg_folds(seed)
    many = logreg_proba_many([f[0] for f in folds], [f[1] for f in folds], [f[2] for f in folds], 2, c=0.7)
    for (x, y, t), got in zip(folds, many, strict=True):
        np.testing.assert_array_equal(got, logreg_proba(x, y, t, 2, c=0.7))
    outputs = fit_score_all(REGISTRY["logreg"], [Fold(x, y, t, 2, {"logreg_C": 0.7}) for x, y, t in folds])
    for got, want in zip(outputs, many, strict=True):
        np.testing.assert_array_equal(got.test, want)
    x = np.stack([f[0] for f in folds[4:12]])
    y = np.stack([f[1] for f in folds[4:12]]).astype(float)
    w, b = _newton_rows(x, y, 0.7, 1e-10, 100)
    for m in range(len(x)):
        w1, b1 = _newton(x[m], y[m], 0.7, 1e-10, 100)
        np.testing.assert_array_equal(w[m], w1)
        assert b[m] == b1
    assert np.abs(w).max() > 0.1  # the fits found a signal


def test_a_fit_job_scores_the_same_in_one_chunk_as_model_by_model(inputs, tmp_path, monkeypatch):  # noqa: F811
    """All models' baselines fitted together (one chunk) or each model alone: the same files, number for number."""
    unit = _collection(inputs, ["PLANTED", "NOISE_A", "NOISE_B"])
    _fit(inputs, unit, tmp_path / "together")
    monkeypatch.setattr(fit, "SCORE_CHUNK_BYTES", 1)
    _fit(inputs, unit, tmp_path / "alone")
    for name in ("metrics.tsv", "predictions.parquet", "history.parquet", "panels.tsv"):
        assert (tmp_path / "together" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes(), name
    metrics = pd.read_csv(tmp_path / "together" / "metrics.tsv", sep="\t")
    assert set(metrics["model"]) == {"mlp", "majority", "logreg"}
    majority = metrics[metrics["model"] == "majority"].drop(columns=["panel", "n_uninformative"])
    assert majority.groupby("split_id").nunique(dropna=False).max().max() == 1  # one row per split, every panel
    for path in (tmp_path / "together" / "checkpoints").rglob("*.pt"):
        other = load_checkpoint(tmp_path / "alone" / path.relative_to(tmp_path / "together"))
        mine = load_checkpoint(path)
        assert path.stat().st_size < 20_000  # its own tensors only
        for key, tensor in mine["state_dict"].items():
            assert torch.equal(tensor, other["state_dict"][key])
