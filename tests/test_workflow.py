"""The workflow end to end: snakemake in a temporary directory on generated and real data."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from panelmlp.synthetic import write_cohort

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.workflow


def snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    """Run the repository's workflow with ``workdir`` as working directory."""
    cmd = [
        sys.executable,
        "-m",
        "snakemake",
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
    ]
    return subprocess.run(
        cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env={**os.environ, "PYTHONHASHSEED": "0"}
    )


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


@pytest.fixture(scope="module")
def planted_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One workflow run on a generated cohort with signal planted in SIG1 and SIG2."""
    work = tmp_path_factory.mktemp("wf")
    cohort = write_cohort(
        work / "cohort.csv", n_samples=120, n_genes=12, effect=2.0, n_malformed=4, n_broken=1, seed=11
    )
    # Two panels: with 49 permutations a lone signal's permutation q-value can reach 2/50 = 0.04 < 0.05.
    extra = {
        "panels": {"glial": None, "microglia": None, "all": None, "planted": ["SIG1", "SIG2"], "noise": "noise.txt"},
        "model": {"epochs": 150, "hidden": [16]},
        "evaluate": {"permutations": 49},
    }
    (work / "noise.txt").write_text("G00001\nG00002\nG00003\n")
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    proc = snakemake(
        work, "--cores", "2", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}"
    )
    _check(proc)
    (work / "cohort.json").write_text(
        json.dumps(
            {
                "malformed": cohort.malformed_lines,
                "broken": cohort.broken_lines,
                "smokers": cohort.smokers,
                "non_smokers": cohort.non_smokers,
            }
        )
    )
    return work


def test_expression_matrix_and_sample_sheet_give_the_same_summary(planted_run, tmp_path):
    """The planted cohort as a gzipped, tab-separated genes-in-rows matrix plus a sample sheet: identical summary.tsv."""
    import gzip

    from panelmlp.synthetic import split_cohort

    split_cohort(planted_run / "cohort.csv", 12, tmp_path / "expr.tsv", tmp_path / "samples.csv", "genes_in_rows", "\t")
    (tmp_path / "expr.tsv.gz").write_bytes(gzip.compress((tmp_path / "expr.tsv").read_bytes()))
    (tmp_path / "noise.txt").write_text((planted_run / "noise.txt").read_text())
    extra = yaml.safe_load((planted_run / "extra.yaml").read_text())
    extra["input"] = {"expression": "expr.tsv.gz", "samples": "samples.csv", "orientation": "genes_in_rows"}
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump(extra))
    proc = snakemake(
        tmp_path, "results/metrics/summary.tsv", "--cores", "2", "--configfile", str(tmp_path / "extra.yaml")
    )
    _check(proc)
    assert (tmp_path / "results/metrics/summary.tsv").read_bytes() == (
        planted_run / "results/metrics/summary.tsv"
    ).read_bytes()
    acc = json.loads((tmp_path / "results/clean/clean.json").read_text())
    assert [f["role"] for f in acc["files"]] == ["expression", "samples"]
    assert "gzip" in acc["files"][0]["format"] and "tab" in acc["files"][0]["format"]
    # The broken sample-sheet line leaves its expression column without a sample: listed, and quarantined.
    assert len(acc["join"]["expression_only"]) == 1 and acc["join"]["samples_only"] == []
    for entry in acc["files"]:
        assert entry["parsed_as_is"] + entry["repaired"] + entry["quarantined"] == entry["data_lines"]


def test_every_output_is_written(planted_run):
    results = planted_run / "results"
    for panel in ("planted", "noise"):
        base = results / "panels" / panel
        for name in (
            "panels.tsv",
            "history.parquet",
            "metrics.tsv",
            "predictions.parquet",
            "nulls.parquet",
            "fit.json",
        ):
            assert (base / name).is_file(), base / name
        checkpoints = sorted(p.name for p in (base / "checkpoints" / panel).glob("*.pt"))
        assert checkpoints == sorted(["holdout.pt"] + [f"cv_r{r}_f{f}.pt" for r in (1, 2) for f in range(1, 6)])
    assert not (results / "panels" / "glial").exists() and not (results / "panels" / "all").exists()
    for name in (
        "clean/cohort.parquet",
        "clean/quarantine.tsv",
        "clean/clean.json",
        "splits/splits.parquet",
        "metrics/summary.tsv",
        "metrics/panels.tsv",
        "report.html",
    ):
        assert (results / name).is_file(), name
    for rule in ("clean", "split", "compare", "report"):
        assert (planted_run / "logs" / f"{rule}.log").is_file()
        assert (planted_run / "benchmarks" / f"{rule}.tsv").is_file()
    assert (planted_run / "logs" / "fit-named.log").is_file()
    assert (planted_run / "benchmarks" / "fit-named.tsv").is_file()


def test_row_accounting_and_labels(planted_run):
    truth = json.loads((planted_run / "cohort.json").read_text())
    acc = json.loads((planted_run / "results/clean/clean.json").read_text())
    assert acc["repaired_lines"] == truth["malformed"]
    assert acc["quarantined_lines"] == truth["broken"]
    assert acc["rows_in_cohort"] == 119
    quarantine = pd.read_csv(planted_run / "results/clean/quarantine.tsv", sep="\t")
    assert quarantine["line"].tolist() == truth["broken"]
    labels = json.loads((planted_run / "results/splits/labels.json").read_text())
    splits = pd.read_parquet(planted_run / "results/splits/splits.parquet")
    assert set(splits.columns) >= {"split_id", "sample_id", "role", "label"}
    assert labels["labelled"] == splits[splits.split_id == "holdout"].shape[0]
    assert labels["labelled"] + labels["missing_label"] + labels["unmatched_label"] == 119


def test_planted_signal_beats_the_baseline_and_noise_does_not(planted_run):
    summary = pd.read_csv(planted_run / "results/metrics/summary.tsv", sep="\t")

    def value(panel, model, metric, column="cv_mean"):
        row = summary[(summary.panel == panel) & (summary.model == model) & (summary.metric == metric)]
        return float(row[column].iloc[0])

    assert value("planted", "mlp", "roc_auc") > 0.8
    assert value("planted", "mlp", "roc_auc", "ci_low") > 0.5
    assert value("planted", "mlp", "balanced_accuracy") > value("planted", "majority", "balanced_accuracy") + 0.15
    assert value("planted", "mlp", "roc_auc", "perm_p") < 0.05
    assert value("planted", "mlp", "roc_auc", "n_permutations") == 49
    assert value("planted", "mlp", "roc_auc", "perm_q") < 0.05
    assert value("noise", "mlp", "roc_auc", "perm_p") >= 0.05
    assert value("noise", "mlp", "roc_auc", "ci_low") < 0.5 < value("noise", "mlp", "roc_auc", "ci_high") + 0.2
    assert value("planted", "majority", "roc_auc") == 0.5
    metrics = pd.read_csv(planted_run / "results/panels/planted/metrics.tsv", sep="\t")
    assert value("planted", "mlp", "roc_auc", "t_q") < 0.05 and value("noise", "mlp", "roc_auc", "t_q") >= 0.05
    assert set(metrics["model"]) == {"mlp", "majority", "logreg"}
    assert len(metrics) == 3 * 11
    history = pd.read_parquet(planted_run / "results/panels/planted/history.parquet")
    assert len(history) == 11 * 150
    assert set(history.columns) >= {
        "split_id",
        "epoch",
        "train_loss",
        "test_loss",
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
    }


def test_rerun_is_a_no_op_and_a_new_panel_reruns_only_its_chain(planted_run):
    extra = planted_run / "extra.yaml"
    raw = f"raw_csv={planted_run / 'cohort.csv'}"
    proc = snakemake(planted_run, "-n", "--configfile", str(extra), "--config", raw)
    _check(proc)
    assert "Nothing to be done" in proc.stdout + proc.stderr
    config = yaml.safe_load(extra.read_text())
    config["panels"]["extra"] = ["SIG1", "G00004"]
    more = planted_run / "more.yaml"
    more.write_text(yaml.safe_dump(config))
    proc = snakemake(planted_run, "-n", "--quiet", "rules", "--configfile", str(more), "--config", raw)
    _check(proc)
    text = proc.stdout + proc.stderr
    counts = {
        line.split()[0]: int(line.split()[1])
        for line in text.splitlines()
        if len(line.split()) == 2 and line.split()[1].isdigit()
    }
    # The small named panels share one fit job: the new one joins it; only the aggregate steps rerun after it.
    assert counts == {"fit_named": 1, "compare": 1, "report": 1, "all": 1, "total": 4}, text


def test_missing_panel_gene_stops_before_training(planted_run, tmp_path):
    work = tmp_path / "bad"
    work.mkdir()
    shutil.copy(planted_run / "cohort.csv", work / "cohort.csv")
    (work / "extra.yaml").write_text(
        yaml.safe_dump(
            {"panels": {"glial": None, "microglia": None, "all": None, "bad": ["SIG1", "SIG3"]}, "model": {"epochs": 5}}
        )
    )
    proc = snakemake(
        work, "--cores", "1", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={work / 'cohort.csv'}"
    )
    assert proc.returncode != 0
    log = (work / "logs/fit-named.log").read_text()
    assert "panelmlp error: panel bad: 1 gene(s) not in the cohort: SIG3 (closest: SIG" in log
    assert "SIG1" in log and "SIG2" in log and len(log.strip().splitlines()) == 1
    assert not (work / "results/panels/bad/history.parquet").exists()


def test_invalid_config_is_rejected_before_any_job(tmp_path):
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump({"model": {"activation": "swish"}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "extra.yaml"), "--config", "raw_csv=x.csv")
    assert proc.returncode != 0
    assert "config model.activation: 'swish' is not one of" in proc.stdout + proc.stderr


def test_config_mistakes_are_named_before_any_job(tmp_path):
    cases = [
        (
            {"evaluate": {"permutations": 9}, "split": {"cv_repeats": 0}},
            "config evaluate.permutations need cross-validation splits",
        ),
        ({"panels": {"..": ["SIG1"]}}, "config panels"),
    ]
    for extra, expected in cases:
        (tmp_path / "extra.yaml").write_text(yaml.safe_dump(extra))
        proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "extra.yaml"), "--config", "raw_csv=x.csv")
        assert proc.returncode != 0 and expected in proc.stdout + proc.stderr, (extra, proc.stderr[-2000:])


@pytest.mark.realdata
def test_real_cohort_figures(real_csv, tmp_path):
    (tmp_path / "extra.yaml").write_text(
        yaml.safe_dump({"panels": {"microglia": None, "all": None}, "model": {"epochs": 20}})
    )
    proc = snakemake(
        tmp_path, "--cores", "2", "--configfile", str(tmp_path / "extra.yaml"), "--config", f"raw_csv={real_csv}"
    )
    _check(proc)
    acc = json.loads((tmp_path / "results/clean/clean.json").read_text())
    assert (acc["rows_in_cohort"], acc["repaired"], acc["quarantined"]) == (99, 12, 0)
    labels = json.loads((tmp_path / "results/splits/labels.json").read_text())
    assert labels["labelled"] == 85 and labels["class_counts"] == {"non-smoker": 62, "smoker": 23}
    assert (tmp_path / "results/report.html").is_file()


def test_snakemake_report_zip(planted_run):
    """`snakemake --report` packs the outputs marked with report() (categories per step, labels per panel)."""
    import zipfile

    raw = f"raw_csv={planted_run / 'cohort.csv'}"
    target = planted_run / "report.zip"
    proc = snakemake(
        planted_run, "--configfile", str(planted_run / "extra.yaml"), "--config", raw, "--report", str(target)
    )
    _check(proc)
    names = zipfile.ZipFile(target).namelist()
    assert sum(n.endswith("/report.html") for n in names) == 2, names  # Snakemake's own page and ours
    assert any(n.endswith("summary.tsv") for n in names)
    assert any(n.endswith("quarantine.tsv") for n in names)
    assert sum(n.endswith("metrics.tsv") for n in names) == 2  # one per fit job


def test_report_renders_in_a_headless_browser(planted_run):
    """The report of a real run opens offline in Chromium and every figure is drawn."""
    from chromium import CHROMIUM, Chromium

    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    with Chromium(timeout=60) as browser:
        session = browser.open((planted_run / "results" / "report.html").as_uri())
        browser.ready(session)
        figures, drawn, text = browser.evaluate(
            session,
            """[document.querySelectorAll(".plotly-graph-div").length,
                Array.from(document.querySelectorAll(".plotly-graph-div")).filter((el) => el.querySelector(".main-svg")).length,
                document.body.innerText]""",
        )
    assert figures >= 8 and drawn == figures  # plotly drew into every figure
    assert "Predictive, not set-specific" in text and "No evidence of signal" in text


def test_download_rule_fetches_a_missing_raw_csv(planted_run, tmp_path):
    """raw_csv absent: the download rule fetches download.url, checks its sha256, and clean reads it."""
    from panelmlp.download import sha256_of

    source = planted_run / "cohort.csv"
    config = {
        "download": {"url": source.as_uri(), "sha256": sha256_of(source), "path": "data/raw/cohort.csv"},
        "raw_csv": "data/raw/cohort.csv",
    }
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path, "results/clean/clean.json", "--cores", "1", "--configfile", str(tmp_path / "extra.yaml"))
    _check(proc)
    assert (tmp_path / "data/raw/cohort.csv").read_bytes() == source.read_bytes()
    assert json.loads((tmp_path / "results/clean/clean.json").read_text())["rows_in_cohort"] == 119
    config["download"]["sha256"] = "0" * 64
    config["download"]["path"] = "data/raw/other.csv"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**config, "raw_csv": "data/raw/other.csv"}))
    proc = snakemake(
        tmp_path, "results/clean/clean.json", "-F", "--cores", "1", "--configfile", str(tmp_path / "bad.yaml")
    )
    assert proc.returncode != 0
    assert "sha256 is" in (tmp_path / "logs/download.log").read_text(), proc.stderr[:1500]
    assert not (tmp_path / "data/raw/other.csv").exists()
    # Any other missing path is "not found", never a download.
    (tmp_path / "typo.yaml").write_text(yaml.safe_dump({**config, "raw_csv": "data/raw/cohrt.csv"}))
    proc = snakemake(tmp_path, "results/clean/clean.json", "-n", "--configfile", str(tmp_path / "typo.yaml"))
    assert proc.returncode != 0
    assert (
        "panelmlp error: config raw_csv: data/raw/cohrt.csv not found (closest in data/raw: cohort.csv" in proc.stderr
    )
    assert "Traceback" not in proc.stderr and "download" not in proc.stdout


def _write_screen_gmt(path: Path, genes: list[str], n_sets: int = 50, size: int = 10, seed: int = 2) -> None:
    """A collection of ``n_sets`` sets of ``size`` genes: PLANTED holds SIG1 and SIG2, the others only noise genes."""
    rng = np.random.default_rng(seed)
    noise = [g for g in genes if not g.startswith("SIG")]
    lines = [
        "PLANTED\tsignal in SIG1 and SIG2\t" + "\t".join(["SIG1", "SIG2", *rng.choice(noise, size - 2, replace=False)])
    ]
    for i in range(1, n_sets):
        lines.append(f"NOISE_{i:02d}\tnoise\t" + "\t".join(rng.choice(noise, size, replace=False)))
    lines.append("TOO_MANY_MISSING\tcoverage\tG00001\tABSENT1\tABSENT2\tABSENT3\tG00002\tG00003")
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module")
def screen_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 50-set collection screen on a generated cohort whose signal sits in one set, with random-panel nulls."""
    work = tmp_path_factory.mktemp("screen")
    cohort = write_cohort(work / "cohort.csv", n_samples=200, n_genes=120, effect=1.5, n_malformed=3, seed=21)
    _write_screen_gmt(work / "screen.gmt", cohort.genes)
    extra = {
        "panels": {"glial": None, "microglia": None, "all": None, "screen": {"gmt": "screen.gmt", "min_size": 5}},
        "model": {"epochs": 100, "hidden": [16]},
        "split": {"cv_repeats": 1},
        "evaluate": {"random_panels": 100},
        "resources": {"panels_per_job": 30},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    proc = snakemake(
        work, "--cores", "2", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}"
    )
    _check(proc)
    return work


def test_a_collection_screen_finds_the_planted_set_and_only_it(screen_run):
    results = screen_run / "results"
    assert sorted(p.name for p in (results / "panels" / "screen").iterdir()) == ["part-001", "part-002"]
    panels = pd.read_csv(results / "metrics/panels.tsv", sep="\t", keep_default_na=False)
    assert len(panels) == 51 and (panels.collection == "screen").all()
    skipped = panels[panels.status == "skipped"]
    assert skipped.panel.tolist() == ["TOO_MANY_MISSING"] and "below min_coverage 0.80" in skipped.reason.iloc[0]
    summary = pd.read_csv(results / "metrics/summary.tsv", sep="\t", keep_default_na=False)
    auc = summary[(summary.model == "mlp") & (summary.metric == "roc_auc")].copy()
    for column in ("cv_mean", "t_q", "random_p", "n_random"):
        auc[column] = pd.to_numeric(auc[column])
    assert len(auc) == 50 and set(auc.collection) == {"screen"}
    ranked = auc.sort_values("cv_mean", ascending=False)
    best = ranked.iloc[0]
    assert best.panel == "PLANTED"
    assert best.t_q < 0.05 and best.random_p < 0.05 and best.n_random == 100
    noise = auc[auc.panel != "PLANTED"]
    assert (noise.t_q >= 0.05).all(), noise.sort_values("t_q").head()
    # One random pool of size 10 for the whole screen, though it ran as two jobs: trained once, its draws shared
    # out between the two parts whose sets need it, and every set of both parts is compared with all of it.
    nulls = pd.concat(pd.read_parquet(p) for p in results.glob("panels/screen/*/nulls.parquet"))
    assert set(nulls[nulls.kind == "random"]["size"]) == {10}
    trained = {
        part: json.loads((results / "panels/screen" / part / "fit.json").read_text())["models"]["random"]
        for part in ("part-001", "part-002")
    }
    assert trained == {"part-001": 50 * 5, "part-002": 50 * 5}
    assert len(nulls[nulls.kind == "random"]) == 100 * 5
    assert (auc.n_random == 100).all()
    assert "random-panel q-value cannot fall below" in (screen_run / "logs/compare.log").read_text()


def test_a_bad_gmt_file_is_named_before_any_job(tmp_path):
    (tmp_path / "bad.gmt").write_text("GOOD\tdesc\tA\tB\nBROKEN with spaces A B C\n")
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump({"panels": {"bad": {"gmt": str(tmp_path / "bad.gmt")}}}))
    proc = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "extra.yaml"), "--config", "raw_csv=x.csv")
    assert proc.returncode != 0
    assert f"panelmlp error: config panels.bad: {tmp_path / 'bad.gmt'}:2:" in proc.stdout + proc.stderr


@pytest.mark.realdata
def test_the_example_collection_on_the_real_cohort(real_csv, tmp_path):
    (tmp_path / "extra.yaml").write_text(
        yaml.safe_dump(
            {
                "panels": {
                    "glial": None,
                    "microglia": None,
                    "all": None,
                    "example": {"gmt": "config/genesets/example.gmt"},
                },
                "model": {"epochs": 20},
            }
        )
    )
    proc = snakemake(
        tmp_path, "--cores", "2", "--configfile", str(tmp_path / "extra.yaml"), "--config", f"raw_csv={real_csv}"
    )
    _check(proc)
    panels = pd.read_csv(tmp_path / "results/metrics/panels.tsv", sep="\t", keep_default_na=False)
    assert (panels.status == "kept").sum() >= 5 and (panels.status == "skipped").sum() >= 1
    summary = pd.read_csv(tmp_path / "results/metrics/summary.tsv", sep="\t", keep_default_na=False)
    assert set(summary.collection) == {"example"}
    assert set(summary.panel) == set(panels[panels.status == "kept"].panel)
