"""External validation: `snakemake predict` on new samples that carry the target scores the predictions."""

from __future__ import annotations

import json
import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from panelmlp.report.external import cv_estimates, external_section
from panelmlp.synthetic import write_cohort
from panelmlp.validation import (
    BOOTSTRAP_RESAMPLES,
    METRIC_COLUMNS,
    bootstrap,
    class_codes,
    classification_external,
    external_metrics,
    regression_external,
    target_numbers,
)
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    mean_absolute_error,
    mean_squared_error,
    r2_score,
    roc_auc_score,
)
from sklearn.preprocessing import label_binarize
from test_workflow import snakemake

N_NEW = 40
N_SEEN = 5
"""New samples: 40 held out of training, 5 that the models were trained on."""


def _probabilities(rng: np.random.Generator, y: np.ndarray, n_classes: int) -> np.ndarray:
    logits = rng.normal(size=(len(y), n_classes))
    logits[np.arange(len(y)), y] += 1.0
    proba = np.exp(logits)
    return proba / proba.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, 60)
    proba = _probabilities(rng, y, 2)
    proba[:5, 1] = 0.5  # ties and the 0.5 threshold
    proba[:5, 0] = 0.5
    found = classification_external(y, proba)
    assert found["roc_auc"] == pytest.approx(roc_auc_score(y, proba[:, 1]), abs=1e-12)
    assert found["pr_auc"] == pytest.approx(average_precision_score(y, proba[:, 1]), abs=1e-12)
    assert found["accuracy"] == pytest.approx(accuracy_score(y, (proba[:, 1] >= 0.5).astype(int)), abs=1e-12)
    assert found["brier"] == pytest.approx(brier_score_loss(y, proba[:, 1]), abs=1e-12)


def test_multiclass_metrics_match_scikit_learn():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 90)
    proba = _probabilities(rng, y, 3)
    found = classification_external(y, proba)
    assert found["roc_auc"] == pytest.approx(roc_auc_score(y, proba, multi_class="ovr", average="macro"), abs=1e-12)
    onehot = label_binarize(y, classes=[0, 1, 2])
    assert found["pr_auc"] == pytest.approx(average_precision_score(onehot, proba, average="macro"), abs=1e-12)
    assert found["accuracy"] == pytest.approx(accuracy_score(y, proba.argmax(axis=1)), abs=1e-12)
    # The workflow's multi-class Brier score is scikit-learn's divided by the number of classes (in [0, 1]).
    assert found["brier"] == pytest.approx(brier_score_loss(y, proba) / 3, abs=1e-12)


def test_regression_metrics_match_scikit_learn():
    rng = np.random.default_rng(5)
    y = rng.normal(50, 10, 70)
    predicted = y + rng.normal(0, 6, 70)
    found = regression_external(y, predicted)
    assert found["r2"] == pytest.approx(r2_score(y, predicted), abs=1e-10)
    assert found["rmse"] == pytest.approx(math.sqrt(mean_squared_error(y, predicted)), abs=1e-10)
    assert found["mae"] == pytest.approx(mean_absolute_error(y, predicted), abs=1e-10)


def test_bootstrap_is_seeded_stratified_and_brackets_the_estimate():
    rng = np.random.default_rng(6)
    y = np.array([0] * 30 + [1] * 12)
    proba = _probabilities(rng, y, 2)
    counts = []

    def score(yy, pp):
        counts.append(np.bincount(yy, minlength=2).tolist())
        return classification_external(yy, pp)

    first = bootstrap(y, proba, score, stratify=True)
    assert len(counts) == BOOTSTRAP_RESAMPLES == 2000
    assert all(c == [30, 12] for c in counts)  # each class resampled within itself
    assert bootstrap(y, proba, classification_external, stratify=True) == first  # fixed seed
    estimate = classification_external(y, proba)
    for metric, (low, high, used) in first.items():
        assert low <= estimate[metric] <= high, metric
        assert used == 2000
    assert bootstrap(y, proba, classification_external, stratify=True, seed=7) != first


def test_one_class_leaves_the_ranking_metrics_undefined_not_the_others():
    y = np.zeros(20, dtype=int)
    proba = np.column_stack([np.linspace(0.2, 0.9, 20), np.linspace(0.8, 0.1, 20)])
    table = external_metrics("p", "classification", y, proba, "new", resamples=50)
    rows = table.set_index("metric")
    assert math.isnan(rows.loc["roc_auc", "value"]) and rows.loc["roc_auc", "resamples"] == 0
    assert rows.loc["accuracy", "resamples"] == 50 and not math.isnan(rows.loc["brier", "ci_low"])
    # Unstratified resamples of a two-class target can hold one class: those are left out of the interval.
    y2 = np.array([0] * 18 + [1, 1])
    intervals = bootstrap(y2, proba, classification_external, stratify=False, resamples=300)
    assert 0 < intervals["roc_auc"][2] < 300 and intervals["accuracy"][2] == 300


def test_only_rows_with_a_prediction_and_a_label_are_scored():
    truth = np.array([1, 0, -1, 1, 0, 1])
    proba = np.array([[0.2, 0.8], [0.7, 0.3], [0.5, 0.5], [np.nan, np.nan], [0.4, 0.6], [0.1, 0.9]])
    table = external_metrics("p", "classification", truth, proba, "cohort", resamples=20)
    assert table.columns.tolist() == METRIC_COLUMNS
    assert set(table["n"]) == {4}
    rows = [0, 1, 4, 5]
    assert table.set_index("metric").loc["roc_auc", "value"] == roc_auc_score(truth[rows], proba[rows, 1])


def test_a_regression_target_is_scored_on_rows_with_a_value_and_a_prediction():
    rng = np.random.default_rng(10)
    truth = rng.normal(60, 8, 50)
    predicted = truth + rng.normal(0, 5, 50)
    truth[[3, 7]] = np.nan  # no target value
    predicted[[7, 11]] = np.nan  # not scored
    table = external_metrics("age", "regression", truth, predicted, "new", resamples=200).set_index("metric")
    rows = np.isfinite(truth) & np.isfinite(predicted)
    assert table.index.tolist() == ["r2", "rmse", "mae"] and set(table["n"]) == {47}
    assert table.loc["r2", "value"] == pytest.approx(r2_score(truth[rows], predicted[rows]), abs=1e-10)
    assert table.loc["mae", "value"] == pytest.approx(mean_absolute_error(truth[rows], predicted[rows]), abs=1e-10)
    assert (table["ci_low"] <= table["value"]).all() and (table["value"] <= table["ci_high"]).all()
    assert set(table["resamples"]) == {200}


def test_labels_follow_the_configs_regexes_in_order():
    patterns = {"non-smoker": "non-smoker|never", "smoker": "smok", "other": None}
    values = ["Current smoker", "Lifelong non-smoker", None, "NA", "never", float("nan"), "unknown"]
    assert class_codes(values, patterns, ["non-smoker", "smoker"]).tolist() == [1, 0, -1, -1, 0, -1, -1]
    assert np.isnan(target_numbers(["1.5", "x", None, "inf", 3])).tolist() == [False, True, True, True, False]


# --- the workflow ---------------------------------------------------------------------------------------


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def validated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Train on part of a planted cohort, then predict held-out samples (with their target) and a few trained ones."""
    work = tmp_path_factory.mktemp("external")
    write_cohort(work / "full.csv", n_samples=150, n_genes=6, effect=2.5, n_malformed=0, n_broken=0, seed=8)
    full = pd.read_csv(work / "full.csv", keep_default_na=False, dtype=str)
    labelled = full[full["SMOKING_HISTORY"] != "NA"]
    held = labelled.iloc[-N_NEW:]
    full.drop(held.index).to_csv(work / "cohort.csv", index=False)
    seen = labelled.iloc[:N_SEEN]
    pd.concat([held, seen]).to_csv(work / "new.csv", index=False)
    config = {
        "panels": {"glial": None, "microglia": None, "all": None, "planted": ["SIG1", "SIG2"]},
        "model": {"epochs": 40, "hidden": [8]},
        "split": {"cv_repeats": 1, "cv_folds": 3},
        "evaluate": {"permutations": 0, "random_panels": 0},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        work, "predict", "--cores", "2", "--configfile", str(work / "extra.yaml"), "--config",
        "raw_csv=cohort.csv", "predict_csv=new.csv",
    )  # fmt: skip
    _check(proc)
    return work


@pytest.mark.workflow
def test_predict_scores_new_samples_that_carry_the_target(validated):
    results = validated / "results"
    metrics = pd.read_csv(results / "predictions" / "planted" / "new.metrics.tsv", sep="\t")
    assert metrics.columns.tolist() == METRIC_COLUMNS
    assert metrics["metric"].tolist() == ["roc_auc", "pr_auc", "accuracy", "brier"]
    # Recompute from the predictions table and the new file's target: same rows, same numbers as scikit-learn.
    table = pd.read_csv(results / "predictions" / "planted" / "new.tsv", sep="\t", keep_default_na=False)
    new = pd.read_csv(validated / "new.csv", keep_default_na=False, dtype=str).set_index("SAMPLE_ID")
    out = table[(table["in_training"] == "no") & (table["status"] == "scored")]
    truth = (~new.loc[out["sample_id"], "SMOKING_HISTORY"].str.contains("non-smoker", case=False)).astype(int)
    p = out["prob_smoker"].astype(float).to_numpy()
    assert len(out) == N_NEW and set(metrics["n"]) == {N_NEW}
    expected = {
        "roc_auc": roc_auc_score(truth, p),
        "pr_auc": average_precision_score(truth, p),
        "accuracy": accuracy_score(truth, (p >= 0.5).astype(int)),
        "brier": brier_score_loss(truth, p),
    }
    for row in metrics.to_dict("records"):
        assert row["value"] == pytest.approx(expected[row["metric"]], abs=2e-6), row
        assert row["ci_low"] <= row["value"] + 1e-9 and row["value"] - 1e-9 <= row["ci_high"], row
    assert metrics.set_index("metric").loc["roc_auc", "value"] > 0.8  # the planted signal carries over


@pytest.mark.workflow
def test_samples_seen_in_training_are_counted_marked_and_left_out(validated):
    import json

    summary = json.loads((validated / "results" / "predictions" / "new.json").read_text())
    assert summary["in_training"]["samples"] == N_SEEN
    table = pd.read_csv(validated / "results" / "predictions" / "planted" / "new.tsv", sep="\t", keep_default_na=False)
    assert (table["in_training"] == "yes").sum() == N_SEEN
    assert table.loc[table["in_training"] == "yes", "sample_id"].tolist() == summary["in_training"]["ids"]
    assert summary["external_validation"]["in_training_left_out"] == N_SEEN
    log = (validated / "logs" / "predict" / "new.log").read_text()
    assert f"{N_SEEN} of the {N_NEW + N_SEEN} new samples were in the training cohort" in log
    assert "not out-of-sample" in log


@pytest.mark.workflow
def test_the_report_is_rebuilt_with_the_external_validation(validated):
    html = (validated / "results" / "report.html").read_text()
    start = html.index('<section id="external">')
    part = html[start : html.index("</section>", start)]
    assert f"{N_SEEN} of the new samples were in the training cohort" in part
    assert "not out-of-sample" in part
    assert f"{N_NEW} new sample(s) with a target value" in part
    assert "only remedy for a chance association" in part
    assert "CV estimate" in part and "difference" in part
    assert (validated / "results" / "report.html").stat().st_mtime >= (
        validated / "results" / "predictions" / "new.json"
    ).stat().st_mtime


def test_the_section_without_predictions_says_how_to_get_them():
    text = external_section({}, pd.DataFrame())
    assert '<section id="external">' in text and "snakemake predict --config predict_csv=new.csv" in text


def _shared_name_run(root: Path, with_collection_column: bool = True) -> tuple[dict, pd.DataFrame]:
    """A named panel X and a set X of collection C, with different CV estimates and external values."""
    summary = pd.DataFrame(
        {
            "collection": ["", "C", ""],
            "panel": ["X", "X", "X"],
            "model": ["mlp", "mlp", "logreg"],
            "metric": "roc_auc",
            "cv_mean": [0.91, 0.62, 0.70],
            "ci_low": [0.85, 0.55, 0.60],
            "ci_high": [0.97, 0.69, 0.80],
        }
    )
    tables = []
    for folder, collection, value in (("X", "", 0.86), ("C", "C", 0.50)):
        table = external_metrics("X", "classification", np.array([0, 1] * 10), np.full((20, 2), 0.5), "new", 10)
        table = table.assign(collection=collection, value=value)[table["metric"] == "roc_auc"]
        if not with_collection_column:
            table = table.drop(columns="collection")
        path = root / folder / "new.metrics.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(path, sep="\t", index=False)
        tables.append(str(path))
    found = root / "new.json"
    found.write_text(json.dumps({"file": "new.csv", "samples": 20, "external_validation": {"column": "T"}}))
    return {"external_summary": str(found), "external": tables}, summary


@pytest.mark.parametrize("with_collection_column", [True, False])
def test_a_named_panel_and_a_collection_set_of_one_name_keep_their_own_cv_estimate(tmp_path, with_collection_column):
    inputs, summary = _shared_name_run(tmp_path, with_collection_column)
    estimates = cv_estimates(summary)
    assert estimates[("", "X", "roc_auc")]["cv_mean"] == 0.91 and estimates[("C", "X", "roc_auc")]["cv_mean"] == 0.62
    text = external_section(inputs, summary)
    rows = re.findall(r"<tr>(.*?)</tr>", text, re.S)
    named = next(r for r in rows if "<td>X</td>" in r)
    in_collection = next(r for r in rows if "<td>C/X</td>" in r)
    assert "0.910 [0.850, 0.970]" in named and "-0.050" in named
    assert "0.620 [0.550, 0.690]" in in_collection and "-0.120" in in_collection
    assert "winner&#x27;s curse" in text or "winner's curse" in text


def test_external_metrics_name_the_collection():
    table = external_metrics(
        "X", "classification", np.array([0, 1] * 5), np.full((10, 2), 0.5), "new", 5, collection="C"
    )
    assert table.columns.tolist() == METRIC_COLUMNS and set(table["collection"]) == {"C"}
    assert set(
        external_metrics("X", "classification", np.array([0, 1]), np.full((2, 2), 0.5), "new", 5)["collection"]
    ) == {""}
