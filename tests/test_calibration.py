"""Calibration and decisions (issue 14, part 4): Brier score, calibration slope and intercept, reliability diagrams,
the stated decision threshold; and correlations of a constant prediction (NaN, not rounding noise)."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from panelmlp import calibration, compare
from panelmlp.epoch_metrics import regression_metrics as torch_regression_metrics
from panelmlp.errors import PanelMlpError
from panelmlp.metrics import (
    METRICS,
    brier_score,
    calibration_fit,
    calibration_metrics,
    classification_metrics,
    logit,
    regression_metrics,
    reliability_bins,
)
from panelmlp.report import build_report
from panelmlp.report.figures import reliability_diagram
from panelmlp.report.inputs import Rows
from panelmlp.report.page import unpack_block
from scipy.optimize import brentq
from scipy.special import expit
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from test_report_data import Spec, make_run

CALIBRATION = ("brier", "calibration_slope", "calibration_intercept")


def _sample(seed: int, n: int, a: float = 0.0, b: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities ``p`` and outcomes drawn with ``P(y = 1) = sigmoid(a + b logit(p))``."""
    rng = np.random.default_rng(seed)
    p = rng.beta(1.5, 1.5, n)
    y = (rng.random(n) < expit(a + b * logit(p))).astype(int)
    return y, p


# ---------------------------------------------------------------- Brier score


@pytest.mark.parametrize("seed", range(5))
def test_brier_matches_scikit_learn_binary(seed):
    y, p = _sample(seed, 30 + 20 * seed)
    got = brier_score(y, np.c_[1 - p, p])
    assert got == pytest.approx(brier_score_loss(y, p), abs=1e-12)
    assert classification_metrics(y, np.c_[1 - p, p])["brier"] == got


@pytest.mark.parametrize("n_classes", [3, 5])
def test_brier_of_more_classes_is_the_class_mean(n_classes):
    rng = np.random.default_rng(n_classes)
    proba = rng.dirichlet(np.ones(n_classes), 80)
    y = rng.integers(0, n_classes, 80)
    # scikit-learn's multi-class Brier is Brier's (1950) sum over classes; ours is that sum over C
    assert brier_score(y, proba) == pytest.approx(brier_score_loss(y, proba) / n_classes, abs=1e-12)
    one_vs_rest = [brier_score_loss(y == c, proba[:, c]) for c in range(n_classes)]
    assert brier_score(y, proba) == pytest.approx(np.mean(one_vs_rest), abs=1e-12)


def test_brier_bounds():
    y = np.array([0, 1, 1, 0])
    assert brier_score(y, np.eye(2)[y]) == 0.0
    assert brier_score(y, np.eye(2)[1 - y]) == 1.0


# ---------------------------------------------------------------- calibration slope and intercept


def _sklearn_slope(y: np.ndarray, p: np.ndarray) -> float:
    """The slope of an unpenalised scikit-learn logistic regression of y on logit(p)."""
    model = LogisticRegression(C=np.inf, solver="newton-cholesky", tol=1e-12, max_iter=1000)
    model.fit(logit(p)[:, None], y)
    return float(model.coef_[0, 0])


def _offset_intercept(y: np.ndarray, p: np.ndarray) -> float:
    """The root of the offset model's score equation, sum(y - sigmoid(a + logit(p))) = 0, by bisection (brentq)."""
    z = logit(p)
    return brentq(lambda a: float(np.sum(y - expit(a + z))), -30, 30, xtol=1e-14, rtol=1e-14)


@pytest.mark.parametrize(("seed", "n", "a", "b"), [(0, 40, 0.0, 1.0), (1, 200, 0.5, 0.6), (2, 120, -0.8, 1.7)])
def test_slope_and_intercept_match_references(seed, n, a, b):
    y, p = _sample(seed, n, a, b)
    slope, intercept = calibration_fit(y, p)
    assert slope == pytest.approx(_sklearn_slope(y, p), abs=1e-6)
    assert intercept == pytest.approx(_offset_intercept(y, p), abs=1e-6)
    got = classification_metrics(y, np.c_[1 - p, p])
    assert (got["calibration_slope"], got["calibration_intercept"]) == (slope, intercept)


def test_perfectly_calibrated_probabilities_give_slope_one_intercept_zero():
    y, p = _sample(7, 200_000)
    slope, intercept = calibration_fit(y, p)
    assert slope == pytest.approx(1.0, abs=0.02) and intercept == pytest.approx(0.0, abs=0.02)


def test_overconfident_and_shifted_probabilities_are_detected():
    y, p = _sample(8, 200_000)
    too_extreme = expit(2 * logit(p))  # overfitting-like: every logit doubled
    slope, _ = calibration_fit(y, too_extreme)
    assert slope == pytest.approx(0.5, abs=0.02)
    too_low = expit(logit(p) - 1)  # every risk predicted too low
    slope, intercept = calibration_fit(y, too_low)
    assert slope == pytest.approx(1.0, abs=0.02) and intercept == pytest.approx(1.0, abs=0.03)


def test_undefined_calibration_is_nan():
    y = np.array([0, 0, 1, 0, 1, 0])
    # one probability for all (the majority baseline): slope unidentifiable, intercept logit(share) - logit(p)
    slope, intercept = calibration_fit(y, np.full(6, 0.4))
    assert math.isnan(slope)
    assert intercept == pytest.approx(logit(np.array([2 / 6]))[0] - logit(np.array([0.4]))[0], abs=1e-9)
    # the predictions separate the classes completely (ties at the border too): no finite maximum likelihood
    assert math.isnan(calibration_fit(y, np.array([0.1, 0.2, 0.8, 0.3, 0.9, 0.2]))[0])
    assert math.isnan(calibration_fit(y, np.array([0.1, 0.2, 0.5, 0.5, 0.9, 0.2]))[0])
    # one class only: nothing to calibrate against
    assert all(math.isnan(v) for v in calibration_fit(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])))
    # probabilities of exactly 0 and 1 are clipped, not infinite
    slope, intercept = calibration_fit(np.array([0, 1, 0, 1, 1]), np.array([0.0, 1.0, 0.6, 0.3, 0.7]))
    assert math.isfinite(slope) and math.isfinite(intercept)


def test_more_classes_average_the_one_vs_rest_fits():
    rng = np.random.default_rng(3)
    proba = rng.dirichlet(np.ones(3) * 2, 150)
    y = np.array([rng.choice(3, p=row) for row in proba])
    got = calibration_metrics(y, proba)
    fits = np.array([calibration_fit(y == c, proba[:, c]) for c in range(3)])
    assert got["calibration_slope"] == pytest.approx(fits[:, 0].mean(), abs=1e-12)
    assert got["calibration_intercept"] == pytest.approx(fits[:, 1].mean(), abs=1e-12)
    assert set(CALIBRATION) <= set(classification_metrics(y, proba))


def test_metric_columns_are_the_metrics_returned():
    y, p = _sample(4, 50)
    got = classification_metrics(y, np.c_[1 - p, p])
    assert set(METRICS) <= set(got) and set(CALIBRATION) <= set(METRICS)


# ---------------------------------------------------------------- correlations of a constant prediction


def test_constant_prediction_has_no_correlation():
    y = np.array([0.3, 1.2, -0.5, 2.0, 0.7, 0.1, 0.4])
    constant = np.full(7, 0.1)  # its deviations from its computed mean are 1.4e-17, not 0
    got = regression_metrics(y, constant)
    assert math.isnan(got["pearson"]) and math.isnan(got["spearman"])
    assert got["r2"] == pytest.approx(1 - np.sum((y - 0.1) ** 2) / np.sum((y - y.mean()) ** 2))
    assert math.isnan(regression_metrics(np.full(7, 0.1), y)["r2"])
    assert regression_metrics(y, 2 * y + 1)["pearson"] == pytest.approx(1.0)


def test_constant_prediction_has_no_correlation_per_epoch():
    y = torch.tensor([[0.3, 1.2, -0.5, 2.0, 0.7, 0.1, 0.4]] * 2)
    pred = torch.stack([torch.full((7,), 0.1), 2 * y[1] + 1])
    got = torch_regression_metrics(y, pred, torch.ones(2, 7, dtype=torch.bool))
    assert torch.isnan(got[0, 3:]).all() and torch.isfinite(got[0, :3]).all()
    assert got[1, 3:].tolist() == pytest.approx([1.0, 1.0])


# ---------------------------------------------------------------- summary.tsv


def _metric_rows(values: dict[str, list[float]]) -> pd.DataFrame:
    """metrics.tsv rows of one MLP over CV splits, ``values`` per metric (others 0.5)."""
    n = len(next(iter(values.values())))
    return pd.DataFrame(
        [
            {
                "panel": "p",
                "model": "mlp",
                "split_id": f"cv_r1_f{i + 1}",
                "kind": "cv",
                "n_train": 80,
                "n_test": 20,
                **dict.fromkeys(METRICS, 0.5),
                **{m: v[i] for m, v in values.items()},
            }
            for i in range(n)
        ]
    )


def test_summary_has_calibration_with_unclipped_intervals():
    slopes = [0.4, 2.5, np.nan, 1.9, 0.2]
    intercepts = [-1.5, 0.3, -0.2, 1.6, -0.9]
    out = compare.summarise(_metric_rows({"calibration_slope": slopes, "calibration_intercept": intercepts}))
    out = out.set_index("metric")
    assert set(CALIBRATION) <= set(out.index)
    slope = out.loc["calibration_slope"]
    assert slope["n_splits"] == 4 and slope["cv_mean"] == pytest.approx(np.nanmean(slopes))
    assert slope["ci_low"] < 0 and slope["ci_high"] > 1  # a slope is not a share: no [0, 1] clipping
    assert out.loc["calibration_intercept", "ci_low"] < -0.5
    assert math.isnan(slope["t_p"]) and math.isnan(slope["chance"])


def test_old_metrics_table_without_calibration_is_one_clear_error(tmp_path: Path):
    inputs = make_run(tmp_path / "results", [Spec("p", 4, 1.0)])
    path = Path(inputs["metrics"][0])
    table = pd.read_csv(path, sep="\t").drop(columns=["brier"])
    table.to_csv(path, sep="\t", index=False)
    panels = [str(Path(m).with_name("panels.tsv")) for m in inputs["metrics"]]
    with pytest.raises(PanelMlpError, match=r"metrics\.tsv: no column 'brier'.*--forcerun"):
        compare.compare_step(
            panels, inputs["metrics"], inputs["nulls"], str(tmp_path / "s.tsv"), str(tmp_path / "p.tsv")
        )


# ---------------------------------------------------------------- reliability diagram


def test_reliability_bins_are_tenths_with_counts():
    p = np.array([0.0, 0.05, 0.12, 0.18, 0.5, 0.95, 1.0])
    y = np.array([0, 0, 1, 0, 1, 1, 1])
    b = reliability_bins(y, p)
    assert b["low"].tolist() == pytest.approx([0.0, 0.1, 0.5, 0.9])
    assert b["count"].tolist() == [2, 2, 1, 2]  # 1.0 falls in the last bin
    assert b["predicted"].tolist() == pytest.approx([0.025, 0.15, 0.5, 0.975])
    assert b["observed"].tolist() == pytest.approx([0.0, 0.5, 1.0, 1.0])


def _predictions(n: int, seed: int = 0) -> Rows:
    """Binary predictions of the MLP, logistic regression and majority baseline on CV and holdout rows."""
    rng = np.random.default_rng(seed)
    parts = []
    for model in ("mlp", "logreg", "majority"):
        for kind, rows in (("cv", n), ("holdout", n // 4)):
            p = rng.random(rows) if model != "majority" else np.full(rows, 0.4)
            truth = np.where(rng.random(rows) < p, "case", "ctrl")
            parts.append(pd.DataFrame({"model": model, "kind": kind, "true_label": truth, "probability": p}))
    return Rows({c: v.to_numpy() for c, v in pd.concat(parts).items()})


def test_reliability_diagram_pools_the_cv_splits():
    predictions = _predictions(300)
    fig = reliability_diagram(predictions, ["ctrl", "case"], "case")
    assert fig is not None
    lines = [t for t in fig["data"] if t["type"] == "scatter"]
    bars = [t for t in fig["data"] if t["type"] == "bar"]
    assert [t["legendgroup"] for t in lines] == ["mlp", "logreg"]  # the majority baseline left out
    assert all(sum(t["y"]) == 300 for t in bars)  # every CV row counted once, the holdout rows left out
    cv = predictions.where(kind="cv", model="mlp")
    b = reliability_bins(cv["true_label"] == "case", cv["probability"])
    assert lines[0]["y"] == pytest.approx(b["observed"], abs=1e-3)
    assert reliability_diagram(predictions.where(kind="holdout"), ["ctrl", "case"], "case") is None


def test_reliability_diagram_of_more_classes_draws_each_class():
    rng = np.random.default_rng(1)
    proba = rng.dirichlet(np.ones(3), 90)
    classes = ["a", "b", "c"]
    frame = pd.DataFrame(
        {"model": "mlp", "kind": "cv", "true_label": np.array(classes)[rng.integers(0, 3, 90)], "probability": 0.0}
    )
    for c, name in enumerate(classes):
        frame[f"prob_{name}"] = proba[:, c]
    fig = reliability_diagram(Rows({c: v.to_numpy() for c, v in frame.items()}), classes, "c")
    assert [t["name"] for t in fig["data"] if t["type"] == "scatter"] == [
        "MLP, class a",
        "MLP, class b",
        "MLP, class c",
    ]


def test_report_shows_reliability_and_decision_threshold(tmp_path: Path):
    inputs = make_run(tmp_path / "results", [Spec("strong", 3, 1.5), Spec("flat", 5, 0.0)])
    out = tmp_path / "report.html"
    build_report(inputs, {"evaluate": {"permutations": 0, "random_panels": 0}}, str(out))
    text = out.read_text(encoding="utf-8")
    assert "<b>Decision threshold.</b>" in text and "at least 0.5" in text and "argmax" in text
    assert "Calibration: reliability diagram" in text
    summary = compare.read_table(inputs["summary"])
    brier = summary[(summary["panel"] == "strong") & (summary["model"] == "mlp") & (summary["metric"] == "brier")]
    assert f"Brier score {brier['cv_mean'].iloc[0]:.3f}" in text
    block = re.search(r'<script type="application/json" id="[^"]*strong[^"]*-figures">(.*?)</script>', text, re.S)
    assert block, "no figures for panel strong"
    figs = unpack_block(block.group(1))
    lines = [t for t in figs["calibration"]["data"] if t["type"] == "scatter"]
    assert lines and all(0 <= v <= 1 for t in lines for v in t["y"])


# ---------------------------------------------------------------- pooled out-of-fold calibration (summary.tsv)


def _cv_predictions(
    rng: np.random.Generator, n: int, folds: int, repeats: int, spread: float = 3.0, panel: str = "p"
) -> tuple[pd.DataFrame, list[float]]:
    """predictions.parquet rows of perfectly calibrated MLP probabilities (logit ~ N(0, spread)) over repeated
    k-fold CV, and the per-split calibration slopes."""
    z = rng.normal(0, spread, n)
    p = expit(z)
    y = rng.random(n) < p
    parts, slopes = [], []
    for r in range(repeats):
        fold = rng.permutation(np.arange(n) % folds)
        for f in range(folds):
            rows = fold == f
            slopes.append(calibration_fit(y[rows], p[rows])[0])
            parts.append(
                pd.DataFrame(
                    {
                        "collection": "",
                        "panel": panel,
                        "model": "mlp",
                        "split_id": f"cv_r{r + 1}_f{f + 1}",
                        "kind": "cv",
                        "sample_id": [f"s{i}" for i in np.flatnonzero(rows)],
                        "true_label": np.where(y[rows], "case", "ctrl"),
                        "predicted_label": np.where(p[rows] >= 0.5, "case", "ctrl"),
                        "probability": p[rows],
                    }
                )
            )
    return pd.concat(parts, ignore_index=True), slopes


def test_pooled_slope_is_near_one_where_the_fold_mean_is_biased():
    """Calibrated predictions, test folds of 30: the per-split mean overshoots 1, each repeat's pooled fit does not."""
    rng = np.random.default_rng(7)
    fold_means, pooled, covered = [], [], []
    for _ in range(20):  # 20 cohorts of 300 samples, 10-fold CV repeated twice
        predictions, slopes = _cv_predictions(rng, 300, 10, 2)
        fold_means.append(np.nanmean(slopes))
        got = calibration.summarise_pooled(calibration.pooled_calibration(predictions)).set_index("metric")
        slope = got.loc["calibration_slope"]
        pooled.append(slope["cv_mean"])
        covered.append(slope["ci_low"] <= 1 <= slope["ci_high"])
        assert slope["n_splits"] == 2  # n_splits counts the repeats
    assert np.mean(fold_means) > 1.25  # measured 1.38
    assert abs(np.mean(pooled) - 1) < 0.1  # measured 1.07 (the fit's own small-sample bias; its se is 0.13)
    assert np.mean(covered) >= 0.8  # measured 0.95
    one, _ = _cv_predictions(np.random.default_rng(3), 1000, 10, 1)
    got = calibration.summarise_pooled(calibration.pooled_calibration(one)).set_index("metric")
    slope = got.loc["calibration_slope"]
    # measured 0.90 [0.79, 1.01]
    assert slope["ci_low"] < 1 < slope["ci_high"] and slope["ci_high"] - slope["ci_low"] < 0.35
    assert abs(got.loc["calibration_intercept", "cv_mean"]) < 0.3
    assert math.isnan(got.loc["calibration_slope", "cv_sd"])  # one repeat: no spread across repeats


def test_pooled_fit_matches_calibration_fit_and_its_wald_errors():
    rng = np.random.default_rng(2)
    predictions, _ = _cv_predictions(rng, 200, 5, 2, spread=1.5)
    pooled = calibration.pooled_calibration(predictions)
    assert pooled["repeat"].tolist() == [1, 2] and (pooled["n_samples"] == 200).all()
    rows = predictions[predictions["split_id"].str.startswith("cv_r2_")]
    y, p = (rows["true_label"] == "case").to_numpy(), rows["probability"].to_numpy()
    slope, intercept = calibration_fit(y, p)
    assert pooled.loc[1, "calibration_slope"] == pytest.approx(slope, abs=1e-12)
    assert pooled.loc[1, "calibration_intercept"] == pytest.approx(intercept, abs=1e-12)
    # Wald errors: inverse of the numerical Hessian of the log-likelihood at the maximum
    z = logit(p)
    joint = LogisticRegression(C=1e12, tol=1e-12, max_iter=10000).fit(z[:, None], y)
    a, b = float(joint.intercept_[0]), float(joint.coef_[0, 0])
    w = expit(a + b * z) * (1 - expit(a + b * z))
    info = np.array([[w.sum(), w @ z], [w @ z, w @ (z * z)]])
    assert pooled.loc[1, "slope_se"] == pytest.approx(math.sqrt(np.linalg.inv(info)[1, 1]), rel=1e-5)
    w0 = expit(intercept + z) * (1 - expit(intercept + z))
    assert pooled.loc[1, "intercept_se"] == pytest.approx(1 / math.sqrt(w0.sum()), rel=1e-9)
    summary = calibration.summarise_pooled(pooled).set_index("metric")
    mean = pooled["calibration_slope"].mean()
    se = math.sqrt((pooled["slope_se"] ** 2).mean())
    assert summary.loc["calibration_slope", "cv_mean"] == pytest.approx(mean)
    assert summary.loc["calibration_slope", "cv_sd"] == pytest.approx(pooled["calibration_slope"].std(ddof=1))
    assert summary.loc["calibration_slope", "ci_high"] == pytest.approx(mean + 1.959964 * se, rel=1e-6)


def test_pooled_calibration_of_baselines_more_classes_and_bad_tables():
    rng = np.random.default_rng(4)
    predictions, _ = _cv_predictions(rng, 120, 4, 1)
    majority = predictions.assign(model="majority")
    majority["probability"] = majority.groupby("split_id")["probability"].transform(lambda v: np.full(len(v), v.mean()))
    pooled = calibration.pooled_calibration(pd.concat([predictions, majority])).set_index("model")
    assert math.isnan(pooled.loc["majority", "calibration_slope"])  # constant within each split: no slope
    assert math.isfinite(pooled.loc["majority", "calibration_intercept"])
    # more classes: the mean of the one-vs-rest fits
    proba = rng.dirichlet(np.ones(3) * 2, 150)
    truth = np.array([rng.choice(3, p=row) for row in proba])
    names = np.array(["a", "b", "c"])
    multi = pd.DataFrame(
        {
            "panel": "m",
            "model": "mlp",
            "split_id": [f"cv_r1_f{i % 3 + 1}" for i in range(150)],
            "kind": "cv",
            "sample_id": [f"s{i}" for i in range(150)],
            "true_label": names[truth],
            "predicted_label": names[proba.argmax(axis=1)],
            "probability": proba.max(axis=1),
        }
        | {f"prob_{c}": proba[:, i] for i, c in enumerate(names)}
    )
    got = calibration.pooled_calibration(multi).iloc[0]
    fits = np.array([calibration_fit(truth == i, proba[:, i]) for i in range(3)])
    assert got["collection"] == "" and got["calibration_slope"] == pytest.approx(fits[:, 0].mean(), abs=1e-12)
    assert got["calibration_intercept"] == pytest.approx(fits[:, 1].mean(), abs=1e-12)
    # holdout rows are left out; a regression target has none; a sample twice in one repeat is refused
    assert len(calibration.pooled_calibration(predictions.assign(kind="holdout"))) == 0
    assert len(calibration.pooled_calibration(pd.DataFrame({"kind": ["cv"], "true_value": [1.0]}))) == 0
    with pytest.raises(PanelMlpError, match="predicted twice in one repeat"):
        calibration.pooled_calibration(pd.concat([predictions, predictions.iloc[:1]]))


def test_summary_and_report_use_the_pooled_calibration(tmp_path: Path):
    inputs = make_run(tmp_path / "results", [Spec("mid", 3, 0.6), Spec("strong", 3, 1.5)], n_samples=120)
    summary = compare.read_table(inputs["summary"])
    pooled = calibration.summarise_pooled(
        pd.concat([calibration.pooled_calibration(pd.read_parquet(p)) for p in inputs["predictions"]])
    )
    metrics = pd.concat([pd.read_csv(p, sep="\t") for p in inputs["metrics"]])
    for metric in ("calibration_slope", "calibration_intercept"):
        row = summary[(summary["panel"] == "mid") & (summary["model"] == "mlp") & (summary["metric"] == metric)]
        want = pooled[(pooled["panel"] == "mid") & (pooled["model"] == "mlp") & (pooled["metric"] == metric)]
        assert row["cv_mean"].iloc[0] == pytest.approx(want["cv_mean"].iloc[0], rel=1e-5)
        assert row["ci_low"].iloc[0] == pytest.approx(want["ci_low"].iloc[0], rel=1e-5, abs=1e-6)
        assert row["n_splits"].iloc[0] == 1  # one CV repeat
        per_split = metrics[(metrics["panel"] == "mid") & (metrics["model"] == "mlp") & (metrics["kind"] == "cv")]
        assert row["cv_mean"].iloc[0] != pytest.approx(per_split[metric].mean(), rel=1e-3)  # not the fold mean
    majority = summary[(summary["model"] == "majority") & (summary["metric"] == "calibration_slope")]
    assert majority["cv_mean"].isna().all() and (majority["n_splits"] == 0).all()
    out = tmp_path / "report.html"
    build_report(inputs, {"evaluate": {"permutations": 0, "random_panels": 0}}, str(out))
    text = out.read_text(encoding="utf-8")
    slope = summary[(summary["panel"] == "mid") & (summary["model"] == "mlp")].set_index("metric")
    assert f"calibration slope {slope.loc['calibration_slope', 'cv_mean']:.3f}" in text
    assert "pooled out-of-fold predictions" in text and "biased upward" in text
    assert "The slope is undefined: every prediction equal, or the pooled predictions separate" in text  # strong


def test_compare_needs_the_predictions_beside_the_metrics(tmp_path: Path):
    inputs = make_run(tmp_path / "results", [Spec("p", 4, 1.0)])
    Path(inputs["predictions"][0]).unlink()
    panels = [str(Path(m).with_name("panels.tsv")) for m in inputs["metrics"]]
    with pytest.raises(PanelMlpError, match=r"predictions\.parquet: missing.*--forcerun"):
        compare.compare_step(
            panels, inputs["metrics"], inputs["nulls"], str(tmp_path / "s.tsv"), str(tmp_path / "p.tsv")
        )
