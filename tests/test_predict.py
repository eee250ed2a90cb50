"""Predicting new samples: `snakemake predict --config predict_csv=new.csv` and the library behind it."""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from panelmlp.checkpoint import load_checkpoint, predict_raw, predict_value, save_checkpoint
from panelmlp.errors import PanelMlpError
from panelmlp.model import build_mlp
from panelmlp.predict import (
    NewSamples,
    PanelModels,
    load_panel_models,
    predict_step,
    read_new_samples,
    score_panel,
)
from panelmlp.predict_plan import prediction_name
from panelmlp.synthetic import write_cohort
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
N_HELD_OUT = 50
EXTRA_ROWS = ("X-MISSING", "X-INF", "X-BAD")
"""New samples beside the held-out ones: SIG2 is NA, SIG1 is inf, SIG1 is not a number."""
CV_IDS = [f"cv_r{r}_f{f}" for r in (1, 2) for f in range(1, 6)]


def _check(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]


def error_line(proc: subprocess.CompletedProcess) -> str:
    """The one ``panelmlp error:`` line of a failed run, from ``panelmlp error:`` on."""
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "panelmlp error:" in line]
    assert len(lines) == 1, text
    return lines[0][lines[0].index("panelmlp error:") :]


def _true_label(history: str) -> str | None:
    """The default target config: 'non-smoker' first, then 'smok'; NA has no label."""
    if history == "NA":
        return None
    return "non-smoker" if "non-smoker" in history.lower() else "smoker"


@pytest.fixture(scope="module")
def predicted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh directory: 50 labelled samples held out of a planted-signal cohort, then `snakemake predict`.

    The signal (3 sd in SIG1 and SIG2) lets the Bayes-optimal rule err on about
    2% of samples (2 sd: about 7%, too close to the 10% the test allows).
    The new file is gzipped, tab-separated, with its columns in another order,
    an ignored text column, and three extra rows: a missing value, an infinite
    value and a value that is not a number.
    """
    work = tmp_path_factory.mktemp("predict")
    cohort = write_cohort(work / "full.csv", n_samples=170, n_genes=8, effect=3.0, n_malformed=0, seed=5)
    lines = (work / "full.csv").read_text().splitlines()
    full = pd.read_csv(work / "full.csv", keep_default_na=False, dtype=str)
    labelled = [i for i in range(len(full)) if _true_label(full.SMOKING_HISTORY[i])]
    held = set(labelled[-N_HELD_OUT:])
    kept = [lines[0]] + [lines[i + 1] for i in range(len(full)) if i not in held]
    (work / "cohort.csv").write_text("\n".join(kept) + "\n")
    genes = list(reversed(cohort.genes))
    new = full.iloc[sorted(held)][["SAMPLE_ID", *genes]].reset_index(drop=True)
    new.insert(3, "BATCH", "b1")
    extra = pd.DataFrame([new.iloc[0]] * 3).reset_index(drop=True)
    extra["SAMPLE_ID"] = EXTRA_ROWS
    extra.loc[0, "SIG2"], extra.loc[1, "SIG1"], extra.loc[2, "SIG1"] = "NA", "inf", "high"
    table = pd.concat([new, extra], ignore_index=True)
    text = "\n".join("\t".join(row) for row in [table.columns.tolist(), *table.astype(str).values.tolist()])
    (work / "new.tsv.gz").write_bytes(gzip.compress((text + "\n").encode()))
    (work / "truth.tsv").write_text(
        "\n".join(["sample_id\tlabel"] + [f"{full.SAMPLE_ID[i]}\t{_true_label(full.SMOKING_HISTORY[i])}" for i in held])
    )
    # A collection whose set name differs from its checkpoint directory (SET:ONE -> SET_ONE); TINY is skipped.
    (work / "sets.gmt").write_text("SET:ONE\tplanted and noise\tSIG1\tSIG2\tG00003\nTINY\ttoo small\tG00004\n")
    config = {
        "panels": {
            "glial": None,
            "microglia": None,
            "all": None,
            "planted": ["SIG1", "SIG2"],
            "noise": ["G00001", "G00002"],
            "sets": {"gmt": "sets.gmt", "min_size": 2},
        },
        "model": {"epochs": 150, "hidden": [16]},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(config))
    proc = snakemake(
        work,
        "predict",
        "--cores",
        "2",
        "--configfile",
        str(work / "extra.yaml"),
        "--config",
        "raw_csv=cohort.csv",
        "predict_csv=new.tsv.gz",
    )
    _check(proc)
    return work


def _table(work: Path, panel: str, name: str = "new") -> pd.DataFrame:
    return pd.read_csv(work / "results" / "predictions" / panel / f"{name}.tsv", sep="\t", keep_default_na=False)


def _numbers(frame: pd.DataFrame, columns: list[str]) -> np.ndarray:
    return frame[columns].replace("", np.nan).astype(float).to_numpy()


@pytest.mark.workflow
def test_predict_trains_first_and_writes_every_table(predicted):
    results = predicted / "results"
    assert sorted(p.name for p in (results / "panels" / "planted" / "checkpoints" / "planted").glob("*.pt")) == sorted(
        ["holdout.pt", *(f"{s}.pt" for s in CV_IDS)]
    )
    for panel in ("planted", "noise", "sets"):
        assert (results / "predictions" / panel / "new.tsv").is_file(), panel
    assert (results / "predictions" / "new.json").is_file()
    assert (predicted / "logs" / "predict" / "new.log").is_file()
    assert (predicted / "benchmarks" / "predict" / "new.tsv").is_file()
    table = _table(predicted, "planted")
    assert table.columns.tolist() == [
        "sample_id",
        "prob_non-smoker",
        "prob_smoker",
        "predicted_label",
        "sd_non-smoker",
        "sd_smoker",
        "holdout_prob_non-smoker",
        "holdout_prob_smoker",
        "holdout_label",
        "n_models",
        "n_genes_present",
        "missing_genes",
        "status",
        "in_training",
    ]
    assert len(table) == N_HELD_OUT + 2  # X-BAD is quarantined
    assert set(table["in_training"]) == {"no"}  # held out of the cohort before training
    quarantine = pd.read_csv(results / "predictions" / "new.quarantine.tsv", sep="\t")
    assert quarantine["id"].tolist() == ["X-BAD"] and quarantine["line"].tolist() == [N_HELD_OUT + 4]
    assert "column SIG1: 'high' is not a number" in quarantine["reason"].iloc[0]
    assert "X-BAD" in quarantine["text"].iloc[0]
    assert "quarantined new.tsv.gz line 54" in (predicted / "logs" / "predict" / "new.log").read_text()


@pytest.mark.workflow
def test_held_out_samples_get_the_right_class(predicted):
    truth = pd.read_csv(predicted / "truth.tsv", sep="\t").set_index("sample_id")["label"]
    table = _table(predicted, "planted").set_index("sample_id")
    assert len(truth) == N_HELD_OUT
    right = (table.loc[truth.index, "predicted_label"] == truth).sum()
    assert right >= 0.9 * N_HELD_OUT, f"{right} of {N_HELD_OUT} right"


@pytest.mark.workflow
def test_the_ensemble_is_the_mean_of_the_cv_checkpoints(predicted):
    """Computed here from the checkpoints with predict_raw, independently of the predict step."""
    new = pd.read_csv(predicted / "new.tsv.gz", sep="\t", dtype=str, keep_default_na=False)
    new = new[new.SAMPLE_ID.isin([s for s in new.SAMPLE_ID if not s.startswith("X-")])]
    table = _table(predicted, "planted").set_index("sample_id").loc[new.SAMPLE_ID]
    folder = predicted / "results" / "panels" / "planted" / "checkpoints" / "planted"
    outputs = []
    for split in CV_IDS:
        checkpoint = load_checkpoint(folder / f"{split}.pt")
        values = new[checkpoint["genes"]].astype(float).to_numpy()
        outputs.append(predict_raw(checkpoint, values).astype(np.float64))
    stacked = np.stack(outputs)
    columns = ["prob_non-smoker", "prob_smoker"]
    assert np.abs(_numbers(table, columns) - stacked.mean(axis=0)).max() < 1e-6
    assert np.abs(_numbers(table, ["sd_non-smoker", "sd_smoker"]) - stacked.std(axis=0, ddof=1)).max() < 1e-6
    holdout = load_checkpoint(folder / "holdout.pt")
    expected = predict_raw(holdout, new[holdout["genes"]].astype(float).to_numpy())
    assert np.abs(_numbers(table, ["holdout_prob_non-smoker", "holdout_prob_smoker"]) - expected).max() < 1e-6
    assert (table["n_models"] == 10).all() and (table["n_genes_present"] == 2).all()
    smoker = stacked.mean(axis=0)[:, 1] >= 0.5  # the evaluation's rule: the positive class from 0.5 on
    assert (table["predicted_label"] == np.where(smoker, "smoker", "non-smoker")).all()


@pytest.mark.workflow
def test_a_sample_missing_a_panel_gene_is_listed_with_it_not_scored(predicted):
    table = _table(predicted, "planted").set_index("sample_id")
    for sample, gene in (("X-MISSING", "SIG2"), ("X-INF", "SIG1")):
        row = table.loc[sample]
        assert row["missing_genes"] == gene
        assert row["n_genes_present"] == 1 and row["n_models"] == 0
        assert row["prob_smoker"] == "" and row["predicted_label"] == "" and row["holdout_label"] == ""
        assert row["status"] == "not scored: 1 panel gene(s) missing"
    # The noise panel does not need SIG1 or SIG2: the same samples are scored there.
    noise = _table(predicted, "noise").set_index("sample_id")
    assert noise.loc["X-MISSING", "status"] == "scored" and noise.loc["X-MISSING", "missing_genes"] == ""


@pytest.mark.workflow
def test_a_collection_set_is_found_by_its_directory(predicted):
    table = _table(predicted, "sets")
    assert set(table["panel"]) == {"SET:ONE"}  # TINY was skipped (min_size 2): no model, no rows
    # Two sets make two parts (resources.collection_min_jobs): TINY (1 gene) in the first, SET:ONE in the second.
    held = sorted((predicted / "results" / "panels" / "sets").glob("part-*/checkpoints/SET_ONE/holdout.pt"))
    assert [p.parents[2].name for p in held] == ["part-002"]
    row = table.set_index("sample_id").loc["X-MISSING"]
    assert row["missing_genes"] == "SIG2" and row["n_genes_present"] == 2


@pytest.mark.workflow
def test_predict_panels_picks_panels_and_sets(predicted):
    shutil.copy(predicted / "new.tsv.gz", predicted / "again.tsv.gz")
    proc = snakemake(
        predicted,
        "predict",
        "--cores",
        "1",
        "--configfile",
        str(predicted / "extra.yaml"),
        "--config",
        "raw_csv=cohort.csv",
        "predict_csv=again.tsv.gz",
        "predict_panels=[noise, 'SET:ONE']",
    )
    _check(proc)
    out = predicted / "results" / "predictions"
    assert (out / "noise" / "again.tsv").is_file() and (out / "sets" / "again.tsv").is_file()
    assert not (out / "planted" / "again.tsv").exists()
    assert "Rule: fit" not in proc.stderr  # nothing retrained


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (
            [],
            "panelmlp error: config predict_csv: not set; name the new samples' table: "
            "snakemake predict --config predict_csv=new.csv",
        ),
        (["predict_csv=nope.csv"], "panelmlp error: config predict_csv: nope.csv not found"),
        (
            ["predict_csv=new.tsv.gz", "predict_panels=[glial]"],
            "panelmlp error: config predict_panels: 'glial' is not a panel of this run; name one of noise, planted, sets",
        ),
    ],
)
def test_predict_config_mistakes_stop_in_one_line(predicted, config, message):
    proc = snakemake(
        predicted,
        "predict",
        "-n",
        "--cores",
        "1",
        "--configfile",
        str(predicted / "extra.yaml"),
        "--config",
        "raw_csv=cohort.csv",
        *config,
    )
    assert error_line(proc).startswith(message)


def _copy_models(predicted: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "results" / "panels" / "planted"
    shutil.copytree(predicted / "results" / "panels" / "planted", folder)
    return folder


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"genes": ["SIG1", "G00003"]}, "genes differ (it holds 2 genes, the panel 2, lacks SIG2, has G00003 besides)"),
        ({"classes": ["a", "b"]}, "classes ['a', 'b'], the panel's other checkpoints ['non-smoker', 'smoker']"),
        ({"target": {"kind": "regression", "mean": 0.0, "sd": 1.0}}, "target kind regression"),
    ],
)
def test_a_checkpoint_that_does_not_fit_is_named_in_one_line(predicted, tmp_path, change, problem):
    folder = _copy_models(predicted, tmp_path)
    odd = folder / "checkpoints" / "planted" / "cv_r2_f3.pt"
    checkpoint = load_checkpoint(odd)
    checkpoint.update(change)
    torch.save(checkpoint, odd)
    plan = [
        {
            "panel": "planted",
            "collection": False,
            "sets": None,
            "folders": [str(folder)],
            "table": str(tmp_path / "x.tsv"),
        }
    ]
    with pytest.raises(PanelMlpError) as info:
        predict_step(
            str(predicted / "new.tsv.gz"),
            plan,
            "SAMPLE_ID",
            {},
            str(tmp_path / "new.json"),
            str(tmp_path / "q.tsv"),
        )
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"checkpoint {odd} does not fit panel planted: {problem}"), message
    assert "snakemake --forcerun" in message


@pytest.mark.workflow
def test_a_gene_absent_from_the_file_is_listed(predicted, tmp_path):
    (tmp_path / "few.csv").write_text("SAMPLE_ID,SIG1,other\nA,12.5,x\nB,NA,y\n")
    samples = read_new_samples(tmp_path / "few.csv", ["SIG1", "SIG2"], "SAMPLE_ID")
    assert samples.genes == ["SIG1"]
    folder = predicted / "results" / "panels" / "planted" / "checkpoints" / "planted"
    table = score_panel(load_panel_models(folder, "planted", ["SIG1", "SIG2"]), samples)
    assert table["missing_genes"].tolist() == ["SIG2", "SIG1 SIG2"]
    assert table["n_genes_present"].tolist() == [1, 0]
    assert table["prob_smoker"].isna().all() and (table["n_models"] == 0).all()


def test_a_file_without_any_panel_gene_stops(tmp_path):
    (tmp_path / "new.csv").write_text("SAMPLE_ID,sig1,GENE2\nA,1,2\n")
    with pytest.raises(PanelMlpError, match=r"new.csv line 1: none of the 2 panel genes \(SIG1, SIG2\) is a column"):
        read_new_samples(tmp_path / "new.csv", ["SIG1", "SIG2"], "SAMPLE_ID")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("new.csv", "new"),
        ("data/new.csv.gz", "new"),
        ("batch.2.TSV.zst", "batch.2"),
        ("cohort.parquet", "cohort"),
        ("plain", "plain"),
        (".csv", ".csv"),
    ],
)
def test_prediction_name(path, name):
    assert prediction_name(path) == name


def _regression_checkpoint(path: Path, seed: int, genes: list[str]) -> dict:
    torch.manual_seed(seed)
    model = build_mlp(len(genes), [4], 1)
    save_checkpoint(
        path,
        model.state_dict(),
        genes,
        [10.0 + seed, 5.0],
        [2.0, 1.0 + seed],
        [],
        None,
        {"hidden": [4], "activation": "relu", "dropout": 0.0},
        path.stem,
        "cpu",
        target={"kind": "regression", "mean": 50.0 + seed, "sd": 10.0},
    )
    return load_checkpoint(path)


def test_a_regression_ensemble_is_the_mean_of_predict_value(tmp_path):
    genes = ["A", "B"]
    folder = tmp_path / "checkpoints" / "age"
    folder.mkdir(parents=True)
    cv = [_regression_checkpoint(folder / f"cv_r1_f{k}.pt", k, genes) for k in (1, 2, 3)]
    # The holdout model lists the genes in the other order: values are given to it in its own order.
    holdout = _regression_checkpoint(folder / "holdout.pt", 7, genes[::-1])
    values = np.array([[11.0, 4.0], [9.0, np.nan], [13.0, 6.0]])
    samples = NewSamples(["s1", "s2", "s3"], genes, values)
    models = load_panel_models(folder, "age", genes)
    assert isinstance(models, PanelModels) and models.kind == "regression" and len(models.cv) == 3
    table = score_panel(models, samples)
    assert table.columns.tolist() == [
        "sample_id",
        "predicted_value",
        "sd",
        "holdout_value",
        "n_models",
        "n_genes_present",
        "missing_genes",
        "status",
    ]
    rows = [0, 2]
    each = np.stack([predict_value(c, values[rows]) for c in cv])
    assert np.abs(table["predicted_value"].to_numpy()[rows] - each.mean(axis=0)).max() < 1e-6
    assert np.abs(table["sd"].to_numpy()[rows] - each.std(axis=0, ddof=1)).max() < 1e-6
    assert np.abs(table["holdout_value"].to_numpy()[rows] - predict_value(holdout, values[rows][:, ::-1])).max() < 1e-6
    assert np.isnan(table.loc[1, "predicted_value"]) and table.loc[1, "missing_genes"] == "B"


def test_the_plan_names_panels_collections_and_sets():
    from panelmlp.predict_plan import predict_csv_problem, prediction_plan

    panels = {"glial": None, "planted": ["SIG1"], "sets": {"gmt": "s.gmt"}, "other": {"gmt": "o.gmt"}}
    units = {
        "sets/part-001": {"collection": "sets", "sets": ["A", "B"]},
        "sets/part-002": {"collection": "sets", "sets": ["C"]},
        "other/part-001": {"collection": "other", "sets": ["C", "D"]},
    }
    every = prediction_plan(panels, None, units, "new")
    assert [(e["panel"], e["sets"], e["folders"], e["table"]) for e in every] == [
        ("planted", None, ["results/panels/planted"], "results/predictions/planted/new.tsv"),
        (
            "sets",
            None,
            ["results/panels/sets/part-001", "results/panels/sets/part-002"],
            "results/predictions/sets/new.tsv",
        ),
        ("other", None, ["results/panels/other/part-001"], "results/predictions/other/new.tsv"),
    ]
    # A set name picks its collection's parts that hold it (C is in two collections); a whole collection wins.
    some = prediction_plan(panels, ["C", "A", "other"], units, "b")
    assert [(e["panel"], e["sets"], e["folders"]) for e in some] == [
        ("sets", ["C", "A"], ["results/panels/sets/part-002", "results/panels/sets/part-001"]),
        ("other", None, ["results/panels/other/part-001"]),
    ]
    with pytest.raises(PanelMlpError, match=r"^config predict_panels: 'glial' is not a panel of this run; name one of"):
        prediction_plan(panels, ["glial"], units, "new")
    with pytest.raises(PanelMlpError, match=r"^config predict_panels: an empty list"):
        prediction_plan(panels, [], units, "new")
    assert predict_csv_problem(__file__) is None
    assert (
        predict_csv_problem(Path(__file__).parent)
        == f"config predict_csv: {Path(__file__).parent} is a folder; point it at the table of new samples"
    )
    assert predict_csv_problem(Path(__file__).with_name("test_predikt.py")).startswith(
        f"config predict_csv: {Path(__file__).with_name('test_predikt.py')} not found (closest in {Path(__file__).parent}: test_predict.py"
    )


@pytest.mark.workflow
def test_a_skipped_set_named_in_predict_panels_is_said_in_one_line(predicted):
    from panelmlp.predict import panel_targets

    folders = [str(p) for p in sorted((predicted / "results" / "panels" / "sets").glob("part-*"))]
    entry = {"panel": "sets", "collection": True, "sets": ["TINY"], "folders": folders, "table": "t.tsv"}
    with pytest.raises(PanelMlpError, match=r"^config predict_panels: TINY has no trained model: it was skipped \("):
        panel_targets(entry)
    targets = panel_targets({**entry, "sets": None})
    assert [(t.panel, t.directory.name, t.genes) for t in targets] == [
        ("SET:ONE", "SET_ONE", ["SIG1", "SIG2", "G00003"])
    ]


def test_predict_output_is_the_kinds_output(tmp_path):
    """Classes: predict_raw's probabilities; regression: predict_value as one column (what the ensembles average)."""
    from panelmlp.checkpoint import predict_output

    genes = ["A", "B"]
    values = np.array([[11.0, 4.0], [9.0, 7.0]])
    regression = _regression_checkpoint(tmp_path / "r.pt", 2, genes)
    np.testing.assert_array_equal(predict_output(regression, values), predict_value(regression, values)[:, None])
    torch.manual_seed(3)
    save_checkpoint(
        tmp_path / "c.pt",
        build_mlp(2, [4], 3).state_dict(),
        genes,
        [10.0, 5.0],
        [2.0, 1.0],
        ["a", "b", "c"],
        None,
        {"hidden": [4], "activation": "relu", "dropout": 0.0},
        "c",
        "cpu",
    )
    classes = load_checkpoint(tmp_path / "c.pt")
    found = predict_output(classes, values)
    assert found.shape == (2, 3) and found.dtype == np.float64
    np.testing.assert_array_equal(found, predict_raw(classes, values))
    with pytest.raises(PanelMlpError, match="predict_value needs a regression checkpoint"):
        predict_value(classes, values)
