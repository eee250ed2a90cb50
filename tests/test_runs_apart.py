"""Runs side by side: `snakemake --directory runs/NAME` keeps two configs apart, and predict keeps the report in step."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from panelmlp.checkpoint import load_checkpoint
from panelmlp.synthetic import write_cohort
from test_workflow import REPO, snakemake

pytestmark = pytest.mark.workflow

TINY = {
    "panels": {"glial": None, "microglia": None, "all": None, "planted": ["SIG1", "SIG2"]},
    "model": {"epochs": 5, "hidden": [4]},
    "split": {"cv_repeats": 1, "cv_folds": 3},
    "evaluate": {"permutations": 0, "random_panels": 0},
}
SEX = {"target": {"column": "SEX", "classes": {"female": "^female$", "male": "^male$"}, "positive": "male"}}


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def _digests(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``folder``: its content hash and modification time."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def _target_of_report(run: Path) -> str:
    html = (run / "results" / "report.html").read_text()
    start = html.index("Target <b>") + len("Target <b>")
    return html[start : html.index("</b>", start)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project folder with two runs side by side: runs/smoking (the default target) and runs/sex."""
    root = tmp_path_factory.mktemp("apart")
    write_cohort(root / "cohort.csv", n_samples=80, n_genes=6, effect=2.0, n_malformed=0, n_broken=0, seed=9)
    (root / "tiny.yaml").write_text(yaml.safe_dump(TINY))
    (root / "sex.yaml").write_text(yaml.safe_dump(SEX))
    cohort = f"raw_csv={root / 'cohort.csv'}"
    _check(
        snakemake(
            root / "runs" / "smoking", "--cores", "2", "--configfile", str(root / "tiny.yaml"), "--config", cohort
        )
    )
    (root / "smoking.digests").write_text(yaml.safe_dump(_digests(root / "runs" / "smoking")))
    _check(
        snakemake(
            root / "runs" / "sex", "--cores", "2", "--configfile", str(root / "tiny.yaml"), str(root / "sex.yaml"),
            "--config", cohort,
        )
    )  # fmt: skip
    full = pd.read_csv(root / "cohort.csv", dtype=str, keep_default_na=False)
    full.iloc[:10].to_csv(root / "new.csv", index=False)
    return root


def test_two_configs_in_two_folders_leave_each_other_alone(runs):
    smoking, sex = runs / "runs" / "smoking", runs / "runs" / "sex"
    # The second run wrote nothing into the first's folder: every file of it, content and time, as it was.
    before = yaml.safe_load((runs / "smoking.digests").read_text())
    after = _digests(smoking)
    assert {k: list(v) for k, v in after.items() if not k.startswith(".snakemake")} == {
        k: list(v) for k, v in before.items() if not k.startswith(".snakemake")
    }
    assert _target_of_report(smoking) == "SMOKING_HISTORY"
    assert _target_of_report(sex) == "SEX"
    for run, classes in ((smoking, ["non-smoker", "smoker"]), (sex, ["female", "male"])):
        checkpoint = load_checkpoint(run / "results" / "panels" / "planted" / "checkpoints" / "planted" / "holdout.pt")
        assert checkpoint["classes"] == classes
    assert not (runs / "results").exists()  # nothing in the folder the runs were started from


def test_predict_with_the_same_config_keeps_the_models_and_rebuilds_the_report(runs, tmp_path):
    run = tmp_path / "smoking"
    shutil.copytree(runs / "runs" / "smoking", run)
    model = run / "results" / "panels" / "planted" / "checkpoints" / "planted" / "holdout.pt"
    trained = model.stat().st_mtime_ns
    proc = snakemake(
        run, "predict", "--cores", "2", "--configfile", str(runs / "tiny.yaml"), "--config",
        f"raw_csv={runs / 'cohort.csv'}", f"predict_csv={runs / 'new.csv'}",
    )  # fmt: skip
    _check(proc)
    assert model.stat().st_mtime_ns == trained  # not retrained
    assert (run / "results" / "predictions" / "planted" / "new.tsv").is_file()
    html = (run / "results" / "report.html").read_text()
    assert _target_of_report(run) == "SMOKING_HISTORY"
    new = pd.read_csv(runs / "new.csv", dtype=str, keep_default_na=False)
    seen = int((new["SMOKING_HISTORY"] != "NA").sum())  # the labelled ones are in the splits; NA ones never were
    assert 0 < seen < 10
    assert f"{seen} of the new samples were in the training cohort" in html


def test_predict_with_another_config_retrains_and_rebuilds_the_report(runs, tmp_path):
    """The models, the predictions and report.html all follow the config of the last documented command."""
    run = tmp_path / "smoking"
    shutil.copytree(runs / "runs" / "smoking", run)
    proc = snakemake(
        run, "predict", "--cores", "2", "--configfile", str(runs / "tiny.yaml"), str(runs / "sex.yaml"), "--config",
        f"raw_csv={runs / 'cohort.csv'}", f"predict_csv={runs / 'new.csv'}",
    )  # fmt: skip
    _check(proc)
    checkpoint = load_checkpoint(run / "results" / "panels" / "planted" / "checkpoints" / "planted" / "holdout.pt")
    assert checkpoint["classes"] == ["female", "male"]
    table = pd.read_csv(run / "results" / "predictions" / "planted" / "new.tsv", sep="\t")
    assert "prob_male" in table.columns
    assert _target_of_report(run) == "SEX"
    metrics = pd.read_csv(run / "results" / "predictions" / "planted" / "new.metrics.tsv", sep="\t")
    assert set(metrics["n"]) == {0}  # every new sample was in training: none is left to validate on


def test_relative_input_paths_fall_back_to_the_project_folder(tmp_path):
    """In a run folder, a relative path missing there is looked up in the project (where data/ and config/ are)."""
    shipped = "config/panels/microglia.txt"
    assert (REPO / shipped).is_file() and not (tmp_path / shipped).exists()
    found = snakemake(tmp_path, "-n", "--config", f"raw_csv={shipped}")
    _check(found)
    missing = snakemake(tmp_path, "-n", "--config", "raw_csv=config/panels/absent.txt")
    assert missing.returncode == 1
    assert "panelmlp error: config raw_csv: config/panels/absent.txt not found" in missing.stderr
