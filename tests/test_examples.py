"""The shipped example configs (config/examples/), end to end: on generated data always, on the real cohort when present.

Runs are shortened (fewer epochs, one CV repeat) with a second config file; the
example's own target, classes, grid and early stopping are used as shipped.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REAL_CSV
from panelmlp.synthetic import plant_survival, write_cohort
from test_workflow import _check, snakemake

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))
SHORT = {"model": {"epochs": 60}, "split": {"cv_folds": 3, "cv_repeats": 1}}
pytestmark = pytest.mark.workflow


def test_every_example_is_tested():
    assert [p.stem for p in EXAMPLES] == ["age-regression", "laterality", "smoking-3class", "survival", "tuned"]


def _generated_survival(path: Path) -> Path:
    """A generated cohort whose hazard follows SIG1 and SIG2, about 35% censored (VITAL_STATUS and two time columns)."""
    cohort = write_cohort(path, n_samples=90, n_genes=12, n_malformed=0, seed=8)
    plant_survival(cohort.path, ["SIG1", "SIG2"], beta=0.8, seed=8)
    return cohort.path


def _generated(path: Path) -> Path:
    """A generated cohort with a TUMOR_LATERALITY column (Left, Right, one Bilateral)."""
    cohort = write_cohort(path, n_samples=90, n_genes=12, n_malformed=2, seed=8)
    lines = cohort.path.read_text().splitlines()
    sides = ["Left", "Right"]
    out = [lines[0] + ",TUMOR_LATERALITY"]
    out += [line + "," + ("Bilateral" if i == 5 else sides[i % 2]) for i, line in enumerate(lines[1:])]
    cohort.path.write_text("\n".join(out) + "\n")
    return cohort.path


def _run(work: Path, example: Path, raw: Path, panels: dict | None = None) -> Path:
    short = dict(SHORT)
    if panels is not None:
        short["panels"] = panels
    (work / "short.yaml").write_text(yaml.safe_dump(short))
    proc = snakemake(
        work, "--cores", "2", "--configfile", str(example), str(work / "short.yaml"), "--config", f"raw_csv={raw}"
    )
    _check(proc)
    return work / "results"


def _check_run(results: Path, example: str) -> dict:
    labels = json.loads((results / "splits/labels.json").read_text())
    summary = pd.read_csv(results / "metrics/summary.tsv", sep="\t")
    html = (results / "report.html").read_text()
    left_out = labels.get("missing_time", 0) + labels.get("negative_time", 0)  # survival: unusable times
    assert labels["labelled"] + labels["missing_label"] + labels["unmatched_label"] + left_out == labels["samples"]
    if example == "age-regression":
        assert labels["kind"] == "regression" and set(summary["model"]) == {"mlp", "mean", "ridge"}
        assert "R²" in html
    elif example == "survival":
        assert labels["kind"] == "survival" and set(summary["model"]) == {"mlp", "constant", "cox_ridge"}
        assert {"c_index", "uno_c", "td_auc", "ibs"} <= set(summary["metric"]) and "Kaplan-Meier" in html
    else:
        assert "roc_auc" in set(summary["metric"]) and "ROC-AUC" in html
    if example == "smoking-3class":
        assert labels["classes"] == ["lifelong non-smoker", "reformed smoker", "current smoker"]
        assert labels["positive"] is None
    if example == "tuned":
        tuning = pd.read_csv(next(results.glob("panels/*/tuning.tsv")), sep="\t")
        assert tuning["point"].nunique() == 4
        history = pd.read_parquet(next(results.glob("panels/*/history.parquet")))
        assert (history["best_epoch"] <= 60).all()
        assert 'data-figure="tuning"' in html and "Nested tuning: the grid points chosen" in html
    return labels


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_on_generated_data(example: Path, tmp_path: Path):
    raw = (_generated_survival if example.stem == "survival" else _generated)(tmp_path / "cohort.csv")
    panels = {"glial": None, "microglia": None, "all": None, "planted": ["SIG1", "SIG2"]}
    labels = _check_run(_run(tmp_path, example, raw, panels), example.stem)
    if example.stem == "laterality":
        assert labels["class_counts"] == {"left": 45, "right": 44} and labels["unmatched_label"] == 1


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_on_the_real_cohort(example: Path, tmp_path: Path):
    if not REAL_CSV.is_file():
        pytest.skip(f"{REAL_CSV} not present")
    results = _run(tmp_path, example, REAL_CSV, {"microglia": None, "all": None})
    labels = _check_run(results, example.stem)
    summary = pd.read_csv(results / "metrics/summary.tsv", sep="\t")
    if example.stem == "smoking-3class":
        assert labels["class_counts"] == {"lifelong non-smoker": 62, "reformed smoker": 9, "current smoker": 14}
    if example.stem == "laterality":
        assert labels["class_counts"] == {"left": 47, "right": 49} and labels["unmatched_values"] == {"Bilateral": 3}
    if example.stem == "age-regression":
        r2 = summary[(summary["model"] == "mlp") & (summary["metric"] == "r2")].iloc[0]
        assert r2["ci_low"] < 0  # a null result, as expected on this cohort
    if example.stem == "survival":  # 62 deceased, 35 living; two without a vital status
        assert labels["class_counts"] == {"living": 35, "deceased": 62} and labels["missing_label"] == 2
        assert labels["negative_unused_time"] == {
            "C3L-03392": {"column": "PATH_DIAG_TO_LAST_CONTACT_DAYS", "value": -9.0}
        }
    main = {"age-regression": "r2", "survival": "c_index"}.get(example.stem, "roc_auc")
    row = summary[(summary["model"] == "mlp") & (summary["metric"] == main)].iloc[0]
    print(
        f"{example.stem} on the real cohort, glial MLP {main}: {row['cv_mean']:.3f} [{row['ci_low']:.3f}, {row['ci_high']:.3f}]"
    )
