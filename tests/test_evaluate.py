"""Metrics, baselines, checkpoints and the summary across splits."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from panelmlp.baselines import fit_binary_logreg, logreg_proba, majority_proba
from panelmlp.checkpoint import load_checkpoint, model_from_checkpoint, predict_raw, predict_scaled, save_checkpoint
from panelmlp.compare import corrected_ci, permutation_p_value, summarise
from panelmlp.metrics import METRICS, classification_metrics, pr_points, roc_points
from panelmlp.model import build_mlp
from sklearn import metrics as skm


def test_binary_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    p = np.clip(y * 0.3 + rng.random(40) * 0.7, 0, 1)
    got = classification_metrics(y, np.c_[1 - p, p])
    pred = (p >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    tn, fp, fn, tp = skm.confusion_matrix(y, pred).ravel()
    assert (got["tp"], got["fp"], got["tn"], got["fn"]) == (tp, fp, tn, fn)


@pytest.mark.parametrize("seed", range(12))
def test_metrics_match_scikit_learn_with_ties_and_edge_cases(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 40))
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    p = np.round(rng.random(n), 1)  # many ties
    if seed % 4 == 0:
        p = np.full(n, 0.3)  # nothing predicted positive: zero_division
    got = classification_metrics(y, np.c_[1 - p, p])
    pred = (p >= 0.5).astype(int)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(y, p))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))


@pytest.mark.parametrize("seed", range(6))
def test_curves_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, rng.integers(0, 2, 30)]
    p = np.round(rng.random(32), 1 + seed % 2)
    precision, recall = pr_points(y, p)
    ref_p, ref_r, _ = skm.precision_recall_curve(y, p)
    np.testing.assert_allclose(precision, ref_p)
    np.testing.assert_allclose(recall, ref_r)
    fpr, tpr = roc_points(y, p)
    ref_fpr, ref_tpr, _ = skm.roc_curve(y, p, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr)
    np.testing.assert_allclose(tpr, ref_tpr)


@pytest.mark.parametrize("seed", range(5))
def test_multiclass_metrics_are_macro(seed):
    rng = np.random.default_rng(seed)
    y = np.r_[0, 1, 2, rng.integers(0, 3, 27)]
    p = rng.dirichlet(np.ones(3), 30)
    got = classification_metrics(y, p)
    pred = p.argmax(1)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert got["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert got["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert got["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    assert got["pr_auc"] == pytest.approx(skm.average_precision_score(np.eye(3)[y], p, average="macro"))
    assert got["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred))
    assert "tp" not in got


def test_ranking_metrics_are_nan_without_both_classes():
    got = classification_metrics(np.array([0, 0, 0]), np.array([[0.6, 0.4], [0.7, 0.3], [0.2, 0.8]]))
    assert math.isnan(got["roc_auc"]) and math.isnan(got["pr_auc"])
    assert got["accuracy"] == pytest.approx(2 / 3)


def test_majority_baseline_is_the_bar_to_beat():
    y_train = np.array([0] * 7 + [1] * 3)
    proba = majority_proba(y_train, 5, 2)
    got = classification_metrics(np.array([0, 0, 0, 1, 1]), proba)
    assert got["accuracy"] == pytest.approx(0.6)
    assert got["roc_auc"] == pytest.approx(0.5)
    assert got["balanced_accuracy"] == pytest.approx(0.5)
    assert got["recall"] == 0.0


def test_logreg_baseline_finds_a_linear_signal():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    y = (x[:, 0] > 0).astype(int)
    proba = logreg_proba(x[:150], y[:150], x[150:], 2)
    assert classification_metrics(y[150:], proba)["roc_auc"] > 0.95


@pytest.mark.parametrize(("n", "d", "c"), [(70, 5, 1.0), (68, 100, 1.0), (40, 3, 0.1), (60, 6, 10.0)])
def test_newton_logreg_matches_scikit_learn(n, d, c):
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(n + d)
    x = rng.normal(size=(n, d))
    y = (x[:, 0] + rng.normal(size=n) > 0.3).astype(int)
    reference = LogisticRegression(C=c, tol=1e-10, max_iter=10000).fit(x, y)
    w, b = fit_binary_logreg(x, y.astype(float), c)
    np.testing.assert_allclose(w, reference.coef_[0], atol=1e-5)
    assert b == pytest.approx(reference.intercept_[0], abs=1e-5)
    x_test = rng.normal(size=(20, d))
    np.testing.assert_allclose(logreg_proba(x, y, x_test, 2, c), reference.predict_proba(x_test), atol=1e-6)


def test_checkpoint_round_trip_is_self_contained(tmp_path):
    torch.manual_seed(0)
    model = build_mlp(3, [4], 2)
    path = tmp_path / "m.pt"
    mean, scale = [1.0, 2.0, 3.0], [2.0, 1.0, 0.5]
    hyper = {"hidden": [4], "activation": "relu", "dropout": 0.0, "lr": 0.001}
    save_checkpoint(
        path, model.state_dict(), ["A", "B", "C"], mean, scale, ["neg", "pos"], "pos", hyper, "holdout", "cpu"
    )
    loaded = load_checkpoint(path)
    assert loaded["genes"] == ["A", "B", "C"] and loaded["classes"] == ["neg", "pos"] and loaded["device"] == "cpu"
    assert loaded["versions"]["torch"] == torch.__version__
    # Loads with weights_only=True, i.e. no pickled code.
    torch.load(path, weights_only=True)
    restored = model_from_checkpoint(loaded)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[key], value)
    raw = np.array([[1.0, 2.0, 3.0], [3.0, 1.0, 4.0]])
    scaled = (raw - np.array(mean)) / np.array(scale)
    np.testing.assert_allclose(predict_raw(loaded, raw), predict_scaled(loaded, scaled), atol=1e-6)
    with torch.inference_mode():
        expected = torch.sigmoid(model(torch.tensor(scaled, dtype=torch.float32)))[:, 0].numpy()
    np.testing.assert_allclose(predict_scaled(loaded, scaled)[:, 1], expected, atol=1e-6)


def test_corrected_interval_is_wider_than_naive():
    values = np.array([0.6, 0.7, 0.65, 0.55, 0.72, 0.68, 0.61, 0.66, 0.7, 0.59])
    mean, sd, low, high = corrected_ci(values, 0.25)
    assert mean == pytest.approx(values.mean()) and sd == pytest.approx(values.std(ddof=1))
    naive = 2.262 * sd / math.sqrt(10)
    assert (high - low) / 2 > naive
    assert (high - low) / 2 == pytest.approx(2.2622 * math.sqrt(0.1 + 0.25) * sd, rel=1e-3)


def test_permutation_p_value_add_one():
    assert permutation_p_value(0.9, np.array([0.5] * 19)) == pytest.approx(1 / 20)
    assert permutation_p_value(0.5, np.array([0.5, 0.6, 0.4, 0.3])) == pytest.approx(3 / 5)


def test_summary_has_every_metric_with_holdout():
    import pandas as pd

    rows = []
    for model in ("mlp", "majority"):
        for i, split in enumerate(["holdout", "cv_r1_f1", "cv_r1_f2", "cv_r1_f3"]):
            rows.append(
                {
                    "panel": "p",
                    "model": model,
                    "split_id": split,
                    "kind": "holdout" if i == 0 else "cv",
                    "n_train": 80,
                    "n_test": 20,
                    **{m: 0.5 + 0.01 * i for m in METRICS},
                }
            )
    nulls = pd.DataFrame(
        {
            "kind": "permutation",
            "collection": "",
            "panel": "p",
            "size": 5,
            "replicate": [1, 2, 3],
            "split_id": ["cv_r1_f1"] * 3,
            "roc_auc": [0.4, 0.6, 0.5],
        }
    )
    out = summarise(pd.DataFrame(rows), nulls, {("", "p"): 5})
    assert len(out) == 2 * len(METRICS)
    auc = out[(out.model == "mlp") & (out.metric == "roc_auc")].iloc[0]
    assert auc["holdout"] == 0.5 and auc["n_splits"] == 3 and auc["cv_mean"] == pytest.approx(0.52)
    assert auc["n_permutations"] == 3 and auc["perm_p"] == pytest.approx(2 / 4)


def test_summary_interval_stays_inside_the_metric_range():
    import pandas as pd

    rows = [
        {
            "panel": "p",
            "model": "mlp",
            "split_id": f"cv_r1_f{i}",
            "kind": "cv",
            "n_train": 80,
            "n_test": 20,
            **{m: v for m in METRICS},
        }
        for i, v in enumerate([1.0, 0.9, 1.0, 0.95, 1.0])
    ]
    out = summarise(pd.DataFrame(rows)).set_index("metric")
    assert out.loc["roc_auc", "ci_high"] == 1.0 and out.loc["roc_auc", "ci_low"] < 0.97
