"""A planted survival cohort end to end: the Cox-loss MLP finds a hazard driven by three genes, and not in noise."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from panelmlp.synthetic import plant_survival, write_cohort
from test_workflow import _check, snakemake

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def survival_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("survival")
    cohort = write_cohort(work / "cohort.csv", n_samples=200, n_genes=20, planted=("SIG1", "SIG2", "SIG3"),
                          effect=0.0, n_malformed=0, seed=3)  # fmt: skip
    counts = plant_survival(cohort.path, ["SIG1", "SIG2", "SIG3"], beta=0.8, censored=0.35, seed=3)
    assert 0.3 <= counts["censored"] / 200 <= 0.4
    config = {
        "panels": {
            "glial": None,
            "microglia": None,
            "all": None,
            "planted": ["SIG1", "SIG2", "SIG3"],
            "noise": ["G00001", "G00002", "G00003"],
        },
        "model": {"epochs": 150},
        "evaluate": {"permutations": 99},  # add-one p reaches 0.01 (q 0.02 over two panels)
    }
    (work / "run.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        work, "--cores", "2", "--configfile", str(REPO / "config/examples/survival.yaml"), str(work / "run.yaml"),
        "--config", f"raw_csv={cohort.path}",
    )  # fmt: skip
    _check(proc)
    return work / "results"


def _row(results: Path, panel: str, metric: str = "c_index", model: str = "mlp") -> pd.Series:
    summary = pd.read_csv(results / "metrics/summary.tsv", sep="\t")
    return summary[(summary["panel"] == panel) & (summary["model"] == model) & (summary["metric"] == metric)].iloc[0]


def test_the_mlp_finds_the_planted_hazard_and_not_the_noise(survival_run: Path) -> None:
    planted, noise = _row(survival_run, "planted"), _row(survival_run, "noise")
    assert planted["cv_mean"] >= 0.7 and planted["ci_low"] > 0.5, planted.to_dict()
    assert noise["ci_low"] <= 0.5 <= noise["ci_high"], noise.to_dict()
    assert planted["call"] != "none" and noise["call"] == "none"
    assert planted["chance"] == 0.5
    # The ridge Cox baseline sees the same signal; the constant risk is chance exactly.
    assert _row(survival_run, "planted", model="cox_ridge")["cv_mean"] >= 0.7
    assert _row(survival_run, "planted", model="constant")["cv_mean"] == 0.5
    # Uno's C and the time-dependent AUC agree; the Brier score of the MLP beats the constant risk's.
    assert _row(survival_run, "planted", "uno_c")["cv_mean"] >= 0.65
    assert _row(survival_run, "planted", "td_auc")["cv_mean"] >= 0.65
    assert _row(survival_run, "planted", "ibs")["cv_mean"] < _row(survival_run, "planted", "ibs", "constant")["cv_mean"]


def test_every_output_of_a_survival_run_is_there(survival_run: Path) -> None:
    labels = json.loads((survival_run / "splits/labels.json").read_text())
    assert labels["kind"] == "survival" and labels["labelled"] == 200 and labels["horizons"] == [180, 365, 730]
    metrics = pd.read_csv(survival_run / "panels/planted/metrics.tsv", sep="\t")
    assert {"td_auc_180", "td_auc_365", "td_auc_730"} <= set(metrics.columns)
    predictions = pd.read_parquet(survival_run / "panels/planted/predictions.parquet")
    assert {"time", "event", "risk", "risk_group"} <= set(predictions.columns)
    assert set(predictions["risk_group"]) == {"high", "low"}
    history = pd.read_parquet(survival_run / "panels/planted/history.parquet")
    last = history[(history["kind"] == "cv") & (history["epoch"] == 150)]
    assert last["c_index"].mean() == pytest.approx(_row(survival_run, "planted")["cv_mean"], abs=1e-4)
    nulls = pd.read_parquet(survival_run / "panels/planted/nulls.parquet")
    assert set(nulls["kind"]) == {"permutation"} and "c_index" in nulls.columns
    # (time, event) pairs shuffled together over the training rows: the nulls' C-index sits at chance.
    means = nulls.groupby("replicate")["c_index"].mean()  # each permuted labelling's mean over the CV splits
    assert abs(means.mean() - 0.5) < 0.05 and means.max() < 0.6
    verdict = json.loads((survival_run / "metrics/verdict.json").read_text())
    assert verdict["metric"] == "c_index" and verdict["chance"] == 0.5
    html = (survival_run / "report.html").read_text()
    assert "Kaplan-Meier" in html and "log-rank" in html
