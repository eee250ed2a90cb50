"""Genes that carry no information (constant or all missing in a split's training rows) contribute nothing.

A generated cohort gets a panel with a gene constant in every sample, a gene
with no value at all, and a gene constant only in the training rows of one CV
split. Their standardised input must be 0 in training, in test scoring, in the
baselines and in prediction: the fit on a copy where those genes hold other
values (any constant, or anything outside the training rows of the split where
a gene is constant) must give the same weights and predictions.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from panelmlp.checkpoint import load_checkpoint, predict_raw, predict_value, save_checkpoint
from panelmlp.fit import fit_unit
from panelmlp.io import clean_step
from panelmlp.model import build_mlp
from panelmlp.predict import load_panel_models, read_new_samples, score_panel
from panelmlp.scaling import describe_uninformative, fit_scaler, split_statistics, standardise, uninformative
from panelmlp.splits import split_step
from panelmlp.synthetic import write_cohort

TARGET = {"column": "SMOKING_HISTORY", "classes": {"non-smoker": "non-smoker", "smoker": "smok"}, "positive": "smoker"}
SPLIT = {"test_size": 0.2, "random_state": 7, "cv_folds": 3, "cv_repeats": 1}
MODEL = {"hidden": [8], "epochs": 15, "batch_size": 16, "lr": 0.01}
CONSTANT, ABSENT, LOCAL = "G00003", "G00004", "G00005"
"""Constant in every sample; never observed; constant only in the training rows of split :data:`ONE`."""
ONE = "cv_r1_f2"
PANEL = ["SIG1", "SIG2", "G00001", CONSTANT, ABSENT, LOCAL]


def _rewrite(source: Path, target: Path, values: dict[str, list[str]]) -> None:
    """Copy a generated cohort CSV (no malformed lines) with the given genes' cells replaced, line by line."""
    lines = source.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    rows = [line.split(",") for line in lines[1:]]
    for gene, cells in values.items():
        at = header.index(gene)
        for row, cell in zip(rows, cells, strict=True):
            row[at] = cell
    target.write_text("\n".join([lines[0], *(",".join(r) for r in rows)]) + "\n", encoding="utf-8")


def _prepare(work: Path, csv: Path) -> dict[str, str]:
    """clean + split of one cohort CSV into ``work``."""
    work.mkdir(parents=True, exist_ok=True)
    paths = {k: str(work / v) for k, v in {"cohort": "c.parquet", "splits": "s.parquet", "labels": "l.json"}.items()}
    paths["clean_json"] = str(work / "clean.json")
    clean_step(
        [str(csv)],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        paths["cohort"],
        str(work / "q.tsv"),
        paths["clean_json"],
    )
    split_step(paths["cohort"], "SAMPLE_ID", TARGET, SPLIT, paths["splits"], paths["labels"])
    return paths


def _fit(paths: dict[str, str], out: Path, baselines: tuple[str, ...] = ("majority", "logreg")) -> Path:
    unit = {"name": "named panels", "collection": "", "panels": {"p": PANEL}, "out_dirs": {"p": str(out)}}
    fit_unit(
        unit,
        paths["cohort"],
        paths["splits"],
        paths["labels"],
        model=MODEL,
        permutations=0,
        random_panels=0,
        logreg_c=1.0,
        baselines=baselines,
    )
    return out


@pytest.fixture(scope="module")
def cohorts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Cohort ``a`` and two copies that differ only where the genes must not matter, each cleaned, split and fitted.

    ``other``: the constant gene holds another constant and the never-observed
    gene a constant value (a gene constant in the cohort contributes nothing,
    like one never observed). ``local``: gene :data:`LOCAL` holds another
    constant in the training rows of :data:`ONE` and wild values in every
    other row, so only split ONE's models must be unchanged.
    """
    work = tmp_path_factory.mktemp("constant")
    base = write_cohort(work / "base.csv", n_samples=80, n_genes=12, n_malformed=0, missing_history=4, seed=11)
    first = _prepare(work / "first", base.path)  # the splits depend on the labels only: same in every copy
    splits = pd.read_parquet(first["splits"])
    one_train = set(splits.loc[(splits.split_id == ONE) & (splits.role == "train"), "sample_id"])
    lines = base.path.read_text(encoding="utf-8").splitlines()
    header = lines[0].split(",")
    ids = [line.split(",")[header.index("SAMPLE_ID")] for line in lines[1:]]
    rng = np.random.default_rng(3)
    original = [line.split(",")[header.index(LOCAL)] for line in lines[1:]]
    wild = [f"{v:.3f}" for v in rng.normal(0, 500, len(ids))]
    variants = {
        "a": {
            CONSTANT: ["5.0"] * len(ids),
            ABSENT: ["NA"] * len(ids),
            LOCAL: ["7.25" if s in one_train else v for s, v in zip(ids, original, strict=True)],
        },
        "other": {
            CONSTANT: ["-40.5"] * len(ids),
            ABSENT: ["2.5"] * len(ids),
            LOCAL: ["7.25" if s in one_train else v for s, v in zip(ids, original, strict=True)],
        },
        "local": {
            CONSTANT: ["5.0"] * len(ids),
            ABSENT: ["NA"] * len(ids),
            LOCAL: ["1000" if s in one_train else w for s, w in zip(ids, wild, strict=True)],
        },
    }
    out: dict[str, object] = {"one_train": one_train}
    for name, values in variants.items():
        _rewrite(base.path, work / f"{name}.csv", values)
        paths = _prepare(work / name, work / f"{name}.csv")
        pd.testing.assert_frame_equal(pd.read_parquet(paths["splits"]), splits)
        out[name] = {**paths, "csv": str(work / f"{name}.csv"), "fit": str(_fit(paths, work / name / "p"))}
    return out


def _predictions(fit: str) -> pd.DataFrame:
    table = pd.read_parquet(Path(fit) / "predictions.parquet")
    return table.sort_values(["model", "split_id", "sample_id"]).reset_index(drop=True)


def test_the_clean_step_names_all_missing_and_constant_genes(cohorts, tmp_path, caplog):
    accounting = json.loads(Path(cohorts["a"]["clean_json"]).read_text())
    assert accounting["uninformative"] == {"all_missing": [ABSENT], "constant": [CONSTANT]}
    other = json.loads(Path(cohorts["other"]["clean_json"]).read_text())
    assert other["uninformative"] == {"all_missing": [], "constant": [CONSTANT, ABSENT]}
    with caplog.at_level(logging.WARNING, logger="panelmlp"):
        _prepare(tmp_path / "again", Path(cohorts["a"]["csv"]))
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("1 gene(s) with no value at all" in m and m.endswith(f": {ABSENT}") for m in lines), lines
    assert any("1 gene(s) with the same value in every" in m and m.endswith(f": {CONSTANT}") for m in lines), lines


def test_uninformative_genes_contribute_nothing_to_any_model(cohorts):
    a, other = _predictions(cohorts["a"]["fit"]), _predictions(cohorts["other"]["fit"])
    assert set(a["model"]) == {"mlp", "majority", "logreg"}
    columns = [c for c in a.columns if c.startswith(("prob", "probability"))] or ["probability"]
    np.testing.assert_allclose(a[columns].to_numpy(float), other[columns].to_numpy(float), atol=1e-6, rtol=0)
    for split in ("holdout", ONE, "cv_r1_f1"):
        wa = load_checkpoint(Path(cohorts["a"]["fit"]) / "checkpoints" / "p" / f"{split}.pt")["state_dict"]
        wo = load_checkpoint(Path(cohorts["other"]["fit"]) / "checkpoints" / "p" / f"{split}.pt")["state_dict"]
        for key, value in wa.items():
            torch.testing.assert_close(value, wo[key], atol=1e-6, rtol=0)


def test_a_gene_constant_in_one_splits_training_rows_is_zero_there_also_in_its_test_rows(cohorts):
    a, local = _predictions(cohorts["a"]["fit"]), _predictions(cohorts["local"]["fit"])
    column = "probability" if "probability" in a else next(c for c in a.columns if c.startswith("prob"))
    same = (a["split_id"] == ONE).to_numpy()
    # Split ONE's test rows hold wild values of the gene in `local`: its models score them as before.
    np.testing.assert_allclose(a.loc[same, column], local.loc[same, column], atol=1e-6, rtol=0)
    # Elsewhere the gene is informative, so its changed values change the models (the comparison can fail).
    assert np.abs(a.loc[~same, column].to_numpy() - local.loc[~same, column].to_numpy()).max() > 1e-3


def test_fit_outputs_count_and_name_them_per_split(cohorts):
    fit = Path(cohorts["a"]["fit"])
    metrics = pd.read_csv(fit / "metrics.tsv", sep="\t")
    splits = list(dict.fromkeys(metrics["split_id"]))  # holdout first, as the job orders them
    counts = metrics.groupby("split_id")["n_uninformative"].agg(["min", "max"])
    assert (counts["min"] == counts["max"]).all()  # every model of a split: the same inputs
    assert counts["max"].to_dict() == {s: 3 if s == ONE else 2 for s in splits}
    info = json.loads((fit / "fit.json").read_text())
    assert info["uninformative"] == {"p": {CONSTANT: splits, ABSENT: splits, LOCAL: [ONE]}}
    history = pd.read_parquet(fit / "history.parquet").drop_duplicates("split_id").set_index("split_id")
    assert history.loc[ONE, "uninformative"] == f"{CONSTANT} {ABSENT} {LOCAL}"
    assert history.loc["holdout", "uninformative"] == f"{CONSTANT} {ABSENT}"
    checkpoint = load_checkpoint(fit / "checkpoints" / "p" / f"{ONE}.pt")
    assert checkpoint["scaler"]["uninformative"] == [CONSTANT, ABSENT, LOCAL]
    assert np.isinf(checkpoint["scaler"]["scale"][PANEL.index(LOCAL)])
    text = describe_uninformative(info["uninformative"]["p"], len(splits))
    assert text == f"{CONSTANT} (all {len(splits)} splits), {ABSENT} (all {len(splits)} splits), {LOCAL} ({ONE})"


def test_predict_gives_the_same_probabilities_whatever_their_values(cohorts, tmp_path):
    fit = Path(cohorts["a"]["fit"])
    models = load_panel_models(fit / "checkpoints" / "p", "p", PANEL)
    rng = np.random.default_rng(5)
    n = 6
    informative = rng.normal(12, 2, size=(n, 4))  # SIG1, SIG2, G00001 and LOCAL (informative in most splits)
    rows = []
    for wild in ([5.0, 8.0], [1e6, -1e6], [-3e4, 42.0], [5.0, 1e30]):
        values = np.column_stack([informative[:, :3], np.full(n, wild[0]), np.full(n, wild[1]), informative[:, 3]])
        rows.append(values)
    outputs = []
    for k, values in enumerate(rows):
        csv = tmp_path / f"new{k}.csv"
        frame = pd.DataFrame(values, columns=PANEL)
        frame.insert(0, "SAMPLE_ID", [f"N{i}" for i in range(n)])
        frame.to_csv(csv, index=False)
        table = score_panel(models, read_new_samples(csv, PANEL, "SAMPLE_ID"))
        assert (table["status"] == "scored").all()
        outputs.append(table.filter(regex="^(prob|holdout_prob)_").to_numpy(float))
    for out in outputs[1:]:
        np.testing.assert_allclose(out, outputs[0], atol=1e-6, rtol=0)
    # Genes every checkpoint ignores need no value at all; LOCAL, used by most splits' models, does.
    lacking = pd.DataFrame(rows[0], columns=PANEL).drop(columns=[CONSTANT, ABSENT])
    lacking.insert(0, "SAMPLE_ID", [f"N{i}" for i in range(n)])
    lacking.loc[0, LOCAL] = np.nan
    lacking.to_csv(tmp_path / "lacking.csv", index=False)
    table = score_panel(models, read_new_samples(tmp_path / "lacking.csv", PANEL, "SAMPLE_ID"))
    assert table["status"].tolist() == ["not scored: 1 panel gene(s) missing"] + ["scored"] * (n - 1)
    assert table.loc[0, "missing_genes"] == f"{CONSTANT} {ABSENT} {LOCAL}"
    scored = table.filter(regex="^(prob|holdout_prob)_").to_numpy(float)
    np.testing.assert_allclose(scored[1:], outputs[0][1:], atol=1e-6, rtol=0)
    # Split ONE's model ignores LOCAL too; the other splits' models do not.
    one = load_checkpoint(fit / "checkpoints" / "p" / f"{ONE}.pt")
    hold = load_checkpoint(fit / "checkpoints" / "p" / "holdout.pt")
    changed = rows[0].copy()
    changed[:, PANEL.index(LOCAL)] += 50.0
    np.testing.assert_allclose(predict_raw(one, changed), predict_raw(one, rows[0]), atol=1e-7, rtol=0)
    assert np.abs(predict_raw(hold, changed) - predict_raw(hold, rows[0])).max() > 1e-4


def test_scaler_marks_constant_and_unobserved_columns_exactly():
    train = np.array(
        [[12345.678, np.nan, 1.0, np.nan], [12345.678, np.nan, 2.0, 3.0], [12345.678, np.nan, 4.0, np.nan]]
    )
    scaler = fit_scaler(train.astype(np.float32))
    assert uninformative(scaler.scale).tolist() == [True, True, False, True]  # one observed value: constant too
    wild = np.array([[-1e9, 7.0, 1.0, np.inf], [np.nan, np.nan, 4.0, -5.0]])
    out = scaler.transform(wild)
    assert np.isfinite(out).all() and (out[:, [0, 1, 3]] == 0).all() and out[1, 2] != 0
    x = train.astype(np.float32)
    mean, scale = split_statistics(x, np.array([[True, True, False], [True, True, True]]))
    assert uninformative(scale).tolist() == [[True, True, False, True], [True, True, False, True]]
    z = standardise(x, np.arange(3), np.arange(4), mean[0], scale[0])
    assert (z[:, [0, 1, 3]] == 0).all() and z[2, 2] != 0  # the test row of column 2 is scaled, not zeroed


def test_checkpoints_without_the_flag_still_load_and_score(tmp_path):
    torch.manual_seed(0)
    model = build_mlp(2, [4], 1, "relu", 0.0)
    hyper = {"hidden": [4], "activation": "relu", "dropout": 0.0}
    path = tmp_path / "new.pt"
    save_checkpoint(path, model.state_dict(), ["A", "B"], [1.0, 5.0], [2.0, np.inf], ["n", "p"], "p", hyper, "h", "cpu")
    checkpoint = load_checkpoint(path)
    assert checkpoint["scaler"]["uninformative"] == ["B"]
    old = dict(checkpoint, scaler={"mean": [1.0, 5.0], "scale": [2.0, 1.0]})  # as written before the flag
    torch.save(old, tmp_path / "old.pt")
    loaded = load_checkpoint(tmp_path / "old.pt")
    values = np.array([[1.0, 5.0], [3.0, 5.0]])
    np.testing.assert_allclose(predict_raw(loaded, values), predict_raw(checkpoint, values), atol=1e-7)
    regression = dict(checkpoint, target={"kind": "regression", "mean": 50.0, "sd": 10.0})
    regression["state_dict"] = build_mlp(2, [4], 1, "relu", 0.0).state_dict()
    wild = values.copy()
    wild[:, 1] = [1e12, -np.inf]
    np.testing.assert_allclose(predict_value(regression, wild), predict_value(regression, values), atol=1e-9)


def test_the_report_names_them_in_the_accounting_and_the_panel_details(cohorts):
    from panelmlp.report.accounting import accounting_section
    from panelmlp.report.detail import uninformative_note
    from panelmlp.report.inputs import Rows

    accounting = json.loads(Path(cohorts["a"]["clean_json"]).read_text())
    labels = json.loads(Path(cohorts["a"]["labels"]).read_text())
    html = accounting_section(accounting, pd.DataFrame(columns=["file", "line", "id", "reason", "text"]), labels)
    assert f"1 gene with no value at all: {ABSENT}; 1 gene with the same value in every sample: {CONSTANT}." in html
    history = Rows.of(pd.read_parquet(Path(cohorts["a"]["fit"]) / "history.parquet"))
    note = uninformative_note(history)
    assert f"{CONSTANT} (all 4 splits), {ABSENT} (all 4 splits), {LOCAL} ({ONE})." in note
    quiet = pd.read_parquet(Path(cohorts["a"]["fit"]) / "history.parquet").assign(uninformative="")
    assert uninformative_note(Rows.of(quiet)) == ""
