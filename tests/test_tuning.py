"""Nested tuning and early stopping in the fit job: choices never see the test rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from panelmlp.compare import read_table
from panelmlp.errors import PanelMlpError
from panelmlp.fit import fit_unit
from panelmlp.io import clean_step
from panelmlp.report.figures import tuning_choices
from panelmlp.report.inputs import Rows
from panelmlp.splits import split_step
from panelmlp.synthetic import write_cohort
from panelmlp.tuning import carve_validation, grid_points, inner_folds, point_label, select_points

TARGET = {"column": "SMOKING_HISTORY", "classes": {"non-smoker": "non-smoker", "smoker": "smok"}, "positive": "smoker"}
GRID = {"hidden": [[4], [64]], "lr": [0.001, 0.1], "weight_decay": [0.0, 0.05], "dropout": [0.0, 0.5]}


def test_grid_points_enumerate_every_combination_in_a_fixed_order():
    points = grid_points({"lr": [0.1, 0.01], "hidden": [[8], [16]]})
    assert points == [
        {"hidden": [8], "lr": 0.1},
        {"hidden": [8], "lr": 0.01},
        {"hidden": [16], "lr": 0.1},
        {"hidden": [16], "lr": 0.01},
    ]
    assert grid_points(None) == [{}] and point_label({}) == "default"
    assert point_label(points[0]) == "hidden=[8] lr=0.1"
    with pytest.raises(PanelMlpError, match="cannot be tuned"):
        grid_points({"optimizer": ["adam"]})


def test_validation_rows_are_stratified_and_come_from_training_rows_only():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 100)
    train = np.zeros((2, 100), dtype=bool)
    train[0, :80] = True
    train[1, 20:] = True
    new_train, valid = carve_validation(train, y, 0.25, 0, ["a", "b"])
    for s in range(2):
        assert not (valid[s] & ~train[s]).any() and not (valid[s] & new_train[s]).any()
        assert (valid[s] | new_train[s]).sum() == train[s].sum()
        for c in (0, 1):
            n_c = (train[s] & (y == c)).sum()
            assert (valid[s] & (y == c)).sum() == round(0.25 * n_c)
    again = carve_validation(train[[1]], y, 0.25, 0, ["b"])[1]
    np.testing.assert_array_equal(again[0], valid[1])  # a split's rows do not depend on the others


def test_inner_folds_partition_the_training_rows():
    y = np.array([0, 1] * 30)
    train = np.zeros(60, dtype=bool)
    train[:45] = True
    folds = inner_folds(train, y, 3, 0, "cv_r1_f1")
    assert len(folds) == 3
    covered = np.zeros(60, dtype=int)
    for a, b in folds:
        assert not (a & b).any() and ((a | b) == train).all()
        covered += b
    assert (covered == train).all()
    with pytest.raises(PanelMlpError, match="inner_folds"):
        inner_folds(train, y, 40, 0, "cv_r1_f1")


def test_select_points_uses_the_mean_inner_score_and_skips_undefined_folds():
    scores = np.array([[[0.6, 0.6], [0.7, np.nan], [0.5, 0.9]]])
    assert select_points(scores)[0] == 1
    assert select_points(np.array([[[np.nan], [np.nan]]]))[0] == 0
    assert select_points(np.array([[[0.4], [0.2]]]), higher_is_better=False)[0] == 1


@pytest.fixture(scope="module")
def noise(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A cohort without any signal: 100 samples, 8 noise genes, 5-fold CV once."""
    work = tmp_path_factory.mktemp("noise")
    cohort = write_cohort(work / "cohort.csv", n_samples=100, n_genes=8, effect=0.0, n_malformed=0, seed=7)
    paths = {k: str(work / v) for k, v in {"cohort": "c.parquet", "splits": "s.parquet", "labels": "l.json"}.items()}
    clean_step(
        [str(cohort.path)],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        paths["cohort"],
        str(work / "q.tsv"),
        str(work / "c.json"),
    )
    split = {"test_size": 0.2, "random_state": 81, "cv_folds": 5, "cv_repeats": 2}
    split_step(paths["cohort"], "SAMPLE_ID", TARGET, split, paths["splits"], paths["labels"])
    paths["work"] = str(work)
    return paths


def _run(paths: dict, out: Path, model: dict) -> pd.DataFrame:
    unit = {
        "name": "noise",
        "collection": "",
        "panels": {"noise": [f"G{i:05d}" for i in range(1, 7)]},
        "out_dirs": {"noise": str(out)},
    }
    fit_unit(unit, paths["cohort"], paths["splits"], paths["labels"], model, 0, 0, 1.0)
    return pd.read_csv(out / "metrics.tsv", sep="\t")


def test_selecting_on_test_rows_inflates_the_score_and_nested_tuning_does_not(noise, tmp_path):
    """Pure noise: the best of 16 grid points picked on the outer test rows looks like signal; the nested choice does not."""
    base = {"epochs": 200, "batch_size": 16, "seed": 3}
    per_point = []
    for q, point in enumerate(grid_points(GRID)):
        metrics = _run(noise, tmp_path / f"p{q}", {**base, **point})
        mlp = metrics[(metrics["model"] == "mlp") & (metrics["kind"] == "cv")].set_index("split_id")["roc_auc"]
        per_point.append(mlp)
    oracle = pd.concat(per_point, axis=1).max(axis=1).mean()
    nested = _run(noise, tmp_path / "nested", {**base, "grid": GRID, "inner_folds": 3})
    mlp = nested[(nested["model"] == "mlp") & (nested["kind"] == "cv")]
    honest = mlp["roc_auc"].mean()
    print(f"noise: best point picked on the test rows {oracle:.3f}, nested choice {honest:.3f}")
    assert abs(honest - 0.5) < 0.1, honest
    assert oracle > 0.58 and oracle > honest + 0.05, (oracle, honest)
    assert mlp["grid_point"].nunique() >= 1 and (mlp["grid_point"] != "default").all()
    tuning = pd.read_csv(tmp_path / "nested" / "tuning.tsv", sep="\t")
    # The report reads the table back with its names and flags intact and counts one choice per split.
    figure = tuning_choices(Rows.of(read_table(str(tmp_path / "nested" / "tuning.tsv"))))
    assert sum(figure["data"][0]["x"]) == 11 and all(label.startswith("hidden=") for label in figure["data"][0]["y"])
    assert len(tuning) == 16 * 11 and tuning.groupby("split_id")["chosen"].sum().eq(1).all()
    # The chosen point of a split is the one with the best mean inner ROC-AUC.
    for split_id, part in tuning.groupby("split_id"):
        best = part.loc[part["inner_score"].idxmax(), "grid_point"]
        assert part.loc[part["chosen"], "grid_point"].item() == best
        assert mlp[mlp["split_id"] == split_id]["grid_point"].item() == best if split_id.startswith("cv") else True


def test_early_stopping_records_the_chosen_epoch(noise, tmp_path):
    model = {"hidden": [16], "epochs": 400, "batch_size": 16, "lr": 0.03, "early_stopping": {"patience": 10}}
    metrics = _run(noise, tmp_path, model)
    mlp = metrics[metrics["model"] == "mlp"]
    assert (mlp["best_epoch"] < 400).all() and (mlp["best_epoch"] >= 1).all()
    history = pd.read_parquet(tmp_path / "history.parquet")
    for split_id, part in history.groupby("split_id", observed=True):
        best = int(part["best_epoch"].iloc[0])
        assert best == int(mlp[mlp["split_id"] == split_id]["best_epoch"].item())
        trained = part["train_loss"].notna().sum()
        assert trained == min(400, best + 10)
    info = json.loads((tmp_path / "fit.json").read_text())
    assert info["early_stopping"] == {"patience": 10, "validation_fraction": 0.2}
