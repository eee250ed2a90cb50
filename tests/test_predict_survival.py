"""Predicting new samples of a survival run: a risk and a risk group per sample, and external validation.

The run is made with the library (clean, split, fit), as the workflow's rules
do it, on a cohort whose event times depend on SIG1 and SIG2
(:func:`panelmlp.synthetic.plant_survival`); its last samples are held out
as the new cohort. The risks are checked against the checkpoints' networks
run here by hand, against fit's own predictions.parquet, and the external
metrics against scikit-survival.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from panelmlp.checkpoint import load_checkpoint, predict_output, predict_raw, predict_risk, save_checkpoint
from panelmlp.errors import PanelMlpError
from panelmlp.fit import fit_unit
from panelmlp.io import clean_step
from panelmlp.model import build_mlp
from panelmlp.predict import load_panel_models, predict_step
from panelmlp.splits import split_step
from panelmlp.synthetic import SURVIVAL_COLUMNS, plant_survival, write_cohort
from panelmlp.validation import METRIC_COLUMNS, bootstrap, external_metrics, survival_external, survival_truth

N_NEW = 40
N_SEEN = 5
HORIZONS = [150, 300, 600]
TARGET = {
    "column": "SMOKING_HISTORY",  # the default config's, ignored by a survival target
    "kind": "survival",
    "event": {"column": "VITAL_STATUS", "event": "deceased", "censored": "living"},
    "time": {"event": SURVIVAL_COLUMNS[0], "censored": SURVIVAL_COLUMNS[1]},
    "horizons": HORIZONS,
}
MODEL = {"hidden": [8], "epochs": 40, "batch_size": 16, "lr": 0.01}
CV_IDS = [f"cv_r1_f{f}" for f in (1, 2, 3)]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A fitted survival run (one named panel, SIG1 and SIG2) and the new cohort: 40 held-out samples, 5 trained."""
    work = tmp_path_factory.mktemp("survival_predict")
    write_cohort(work / "full.csv", n_samples=200, n_genes=6, n_malformed=0, n_broken=0, seed=11)
    plant_survival(work / "full.csv", ["SIG1", "SIG2"], beta=1.0, censored=0.3, seed=11)
    full = pd.read_csv(work / "full.csv", dtype=str, keep_default_na=False)
    full.iloc[:-N_NEW].to_csv(work / "cohort.csv", index=False)
    new = pd.concat([full.iloc[-N_NEW:], full.iloc[:N_SEEN]])
    new.to_csv(work / "new.csv", index=False)
    new.drop(columns=list(SURVIVAL_COLUMNS)).to_csv(work / "bare.csv", index=False)
    paths = {k: work / f"{k}.{e}" for k, e in (("cohort", "parquet"), ("splits", "parquet"), ("labels", "json"))}
    clean_step(
        [str(work / "cohort.csv")],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        str(paths["cohort"]),
        str(work / "q.tsv"),
        str(work / "c.json"),
    )
    split = {"test_size": 0.2, "random_state": 5, "cv_folds": 3, "cv_repeats": 1}
    split_step(str(paths["cohort"]), "SAMPLE_ID", TARGET, split, str(paths["splits"]), str(paths["labels"]))
    folder = work / "results" / "panels" / "planted"
    unit = {"name": "planted", "collection": "", "panels": {"planted": ["SIG1", "SIG2"]}}
    unit["out_dirs"] = {"planted": str(folder)}
    fit_unit(unit, str(paths["cohort"]), str(paths["splits"]), str(paths["labels"]), MODEL, 0, 0, 1.0)
    return {"work": work, "folder": folder, "checkpoints": folder / "checkpoints" / "planted", **paths}


def _predict(run: dict[str, Path], new: Path, name: str, folder: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """predict_step on ``new`` with the run's panel (or the panel folder given): its table and JSON summary."""
    out = run["work"] / "out" / name
    out.mkdir(parents=True, exist_ok=True)
    plan = [
        {
            "panel": "planted",
            "collection": False,
            "sets": None,
            "folders": [str(folder or run["folder"])],
            "table": str(out / "planted.tsv"),
            "metrics": str(out / "planted.metrics.tsv"),
        }
    ]
    summary = predict_step(
        str(new),
        plan,
        "SAMPLE_ID",
        {},
        str(out / "s.json"),
        str(out / "q.tsv"),
        splits=str(run["splits"]),
        target=TARGET,
    )
    table = pd.read_csv(out / "planted.tsv", sep="\t", keep_default_na=False)
    return table, summary


def _by_hand(checkpoint: dict, raw: np.ndarray) -> np.ndarray:
    """The network of a checkpoint on raw values standardised with its scaler, written out here: risks [n]."""
    hyper = checkpoint["hyper"]
    net = build_mlp(len(checkpoint["genes"]), hyper["hidden"], 2, hyper["activation"], hyper["dropout"])  # 1 output
    net.load_state_dict(checkpoint["state_dict"])
    z = (raw - np.array(checkpoint["scaler"]["mean"])) / np.array(checkpoint["scaler"]["scale"])
    with torch.inference_mode():
        return net.eval()(torch.as_tensor(z, dtype=torch.float32))[:, 0].numpy().astype(np.float64)


def _numbers(frame: pd.DataFrame, column: str) -> np.ndarray:
    return frame[column].replace("", np.nan).astype(float).to_numpy()


def test_the_risk_is_the_networks_output_and_the_group_follows_the_median_risk(run):
    table, summary = _predict(run, run["work"] / "new.csv", "new")
    assert table.columns.tolist() == [
        "sample_id",
        "risk",
        "sd",
        "risk_group",
        "holdout_risk",
        "holdout_risk_group",
        "n_models",
        "n_genes_present",
        "missing_genes",
        "status",
        "in_training",
    ]
    new = pd.read_csv(run["work"] / "new.csv", dtype=str, keep_default_na=False).set_index("SAMPLE_ID")
    table = table.set_index("sample_id").loc[new.index]
    cv = [load_checkpoint(run["checkpoints"] / f"{s}.pt") for s in CV_IDS]
    risks = np.stack([_by_hand(c, new[c["genes"]].astype(float).to_numpy()) for c in cv])
    medians = np.array([c["target"]["median_risk"] for c in cv])
    # The reader holds values in float32, as the cohort's parquet does; here they are float64: within 1e-5.
    assert np.abs(_numbers(table, "risk") - risks.mean(axis=0)).max() < 1e-5
    assert np.abs(_numbers(table, "sd") - (risks - medians[:, None]).std(axis=0, ddof=1)).max() < 1e-5
    high = _numbers(table, "risk") > medians.mean()
    assert 0 < high.sum() < len(high)
    assert (table["risk_group"] == np.where(high, "high", "low")).all()
    holdout = load_checkpoint(run["checkpoints"] / "holdout.pt")
    held = _by_hand(holdout, new[holdout["genes"]].astype(float).to_numpy())
    assert np.abs(_numbers(table, "holdout_risk") - held).max() < 1e-5
    cut = holdout["target"]["median_risk"]
    assert (table["holdout_risk_group"] == np.where(_numbers(table, "holdout_risk") > cut, "high", "low")).all()
    assert (table["n_models"] == 3).all() and (table["status"] == "scored").all()
    assert (table["in_training"] == "yes").sum() == N_SEEN
    panel = summary["panels"][0]
    assert panel["kind"] == "survival" and panel["predicted"] == {"high": int(high.sum()), "low": int((~high).sum())}


def test_median_risk_is_the_models_median_on_its_own_training_rows(run):
    """The cut of the risk groups, recomputed from the cohort and the splits: the holdout model's training rows."""
    splits = pd.read_parquet(run["splits"])
    train = splits[(splits["split_id"] == "holdout") & (splits["role"] == "train")]["sample_id"].astype(str)
    cohort = pd.read_csv(run["work"] / "cohort.csv", dtype=str, keep_default_na=False).set_index("SAMPLE_ID")
    holdout = load_checkpoint(run["checkpoints"] / "holdout.pt")
    risks = _by_hand(holdout, cohort.loc[train, holdout["genes"]].astype(float).to_numpy())
    assert holdout["target"]["median_risk"] == pytest.approx(float(np.median(risks)), abs=1e-5)
    assert holdout["target"]["horizons"] == HORIZONS


@pytest.mark.parametrize("split_id", CV_IDS)
def test_training_samples_reproduce_fits_predictions(run, tmp_path, split_id):
    """One CV checkpoint alone as the ensemble: its risks and groups of its split's test rows are fit's."""
    folder = tmp_path / "planted"
    shutil.copytree(run["folder"], folder)
    for other in CV_IDS:
        if other != split_id:
            (folder / "checkpoints" / "planted" / f"{other}.pt").unlink()
    table, _ = _predict(run, run["work"] / "cohort.csv", f"train_{split_id}", folder)
    assert (table["in_training"] == "yes").all() and (table["n_models"] == 1).all()
    table = table.set_index("sample_id")
    fitted = pd.read_parquet(run["folder"] / "predictions.parquet")
    for split, column in ((split_id, "risk"), ("holdout", "holdout_risk")):
        rows = fitted[(fitted["model"] == "mlp") & (fitted["split_id"] == split)].set_index("sample_id")
        assert len(rows) > 20
        mine = _numbers(table.loc[rows.index], column)
        np.testing.assert_allclose(mine, rows["risk"].to_numpy(), rtol=0, atol=1e-5)
        assert (table.loc[rows.index, f"{column}_group"] == rows["risk_group"]).all()


def test_external_validation_matches_scikit_survival(run):
    from sksurv.metrics import concordance_index_censored, concordance_index_ipcw, cumulative_dynamic_auc

    table, summary = _predict(run, run["work"] / "new.csv", "new")
    metrics = pd.read_csv(run["work"] / "out" / "new" / "planted.metrics.tsv", sep="\t")
    assert metrics.columns.tolist() == METRIC_COLUMNS
    assert metrics["metric"].tolist() == ["c_index", "uno_c", "td_auc", "td_auc_150", "td_auc_300", "td_auc_600"]
    new = pd.read_csv(run["work"] / "new.csv", dtype=str, keep_default_na=False).set_index("SAMPLE_ID")
    out = table[table["in_training"] == "no"]
    rows = new.loc[out["sample_id"]]
    event = rows["VITAL_STATUS"].str.lower().eq("deceased").to_numpy()
    time = np.where(event, rows[SURVIVAL_COLUMNS[0]], rows[SURVIVAL_COLUMNS[1]]).astype(float)
    risk = out["risk"].astype(float).to_numpy()
    y = np.array(list(zip(event, time, strict=True)), dtype=[("event", bool), ("time", float)])
    horizons = [h for h in HORIZONS if time.min() <= h < time.max()]
    assert len(horizons) == 3
    auc, mean_auc = cumulative_dynamic_auc(y, y, risk, horizons)
    expected = {
        "c_index": concordance_index_censored(event, time, risk)[0],
        "uno_c": concordance_index_ipcw(y, y, risk, tau=time.max())[0],
        "td_auc": mean_auc,
        **{f"td_auc_{h}": a for h, a in zip(horizons, auc, strict=True)},
    }
    assert set(metrics["n"]) == {N_NEW}
    for row in metrics.to_dict("records"):
        assert row["value"] == pytest.approx(expected[row["metric"]], abs=2e-6), row
        assert row["ci_low"] <= row["value"] + 1e-9 <= row["ci_high"] + 2e-9, row
        assert row["resamples"] > 1900, row
    assert metrics.set_index("metric").loc["c_index", "value"] > 0.65  # the planted hazard carries over
    found = summary["external_validation"]
    assert found["column"] == "VITAL_STATUS" and found["time"] == list(SURVIVAL_COLUMNS)
    assert found["kind"] == "survival" and found["in_training_left_out"] == N_SEEN and found["missing"] == 0
    assert summary["panels"][0]["external"]["c_index"]["value"] == pytest.approx(expected["c_index"], abs=1e-9)


def test_without_the_survival_columns_it_only_predicts(run):
    table, summary = _predict(run, run["work"] / "bare.csv", "bare")
    metrics = pd.read_csv(run["work"] / "out" / "bare" / "planted.metrics.tsv", sep="\t")
    assert metrics.columns.tolist() == METRIC_COLUMNS and len(metrics) == 0
    assert summary["external_validation"] is None and "external" not in summary["panels"][0]
    same, _ = _predict(run, run["work"] / "new.csv", "new")
    assert table["risk"].tolist() == same["risk"].tolist()
    assert json.loads((run["work"] / "out" / "bare" / "s.json").read_text())["samples"] == N_NEW + N_SEEN


def test_the_new_cohorts_time_and_event_follow_the_split_steps_rules():
    columns = {
        "VITAL_STATUS": ["Deceased", "LIVING", None, "unknown", "deceased", "Living"],
        SURVIVAL_COLUMNS[0]: ["100", "NA", "5", "7", None, None],
        SURVIVAL_COLUMNS[1]: ["90", "250.5", "5", "7", "30", "-3"],
    }
    found = survival_truth(["a", "b", "c", "d", "e", "f"], columns, TARGET)
    # a: event at its death time; b: censored at last contact; c: no status; d: unmatched; e: event without a
    # death time; f: a negative time.
    expected = [[100.0, 1.0], [250.5, 0.0], [np.nan] * 2, [np.nan] * 2, [np.nan] * 2, [np.nan] * 2]
    np.testing.assert_array_equal(found, np.array(expected))


def test_the_survival_bootstrap_keeps_the_events_of_every_resample():
    rng = np.random.default_rng(0)
    y = np.c_[rng.exponential(100, 30), (np.arange(30) % 3 == 0).astype(float)]
    counts = set()

    def score(rows: np.ndarray, p: np.ndarray) -> dict[str, float]:
        counts.add(int(rows[:, 1].sum()))
        return survival_external(rows, p, [50.0])

    intervals = bootstrap(y, rng.normal(size=30), score, stratify=True, resamples=200, seed=1, strata=y[:, 1])
    assert counts == {10}
    assert set(intervals) == {"c_index", "uno_c", "td_auc", "td_auc_50"}


def test_external_metrics_of_a_survival_target_score_rows_with_both():
    time = np.array([10.0, 20, 30, 40, 50, 60, 70, 80])
    event = np.array([1.0, 0, 1, 1, 0, 1, 0, 1])
    risk = np.array([8.0, 7, 6, 5, 4, 3, 2, 1])
    truth = np.c_[time, event]
    truth[1] = np.nan  # no usable time and event
    predicted = risk.copy()
    predicted[2] = np.nan  # not scored
    table = external_metrics("P", "survival", truth, predicted, "new", resamples=50, horizons=[45])
    assert table["metric"].tolist() == ["c_index", "uno_c", "td_auc", "td_auc_45"]
    assert set(table["n"]) == {6}
    # risks fall with time: every comparable pair of the rows kept is concordant
    assert table.set_index("metric").loc["c_index", "value"] == 1.0


def _survival_checkpoint(path: Path, seed: int, median: float | None) -> dict:
    torch.manual_seed(seed)
    target = {"kind": "survival", "horizons": [100.0]} | ({} if median is None else {"median_risk": median})
    save_checkpoint(
        path,
        build_mlp(2, [4], 1).state_dict(),
        ["A", "B"],
        [1.0, 2.0],
        [1.0, 0.5],
        ["living", "deceased"],
        "deceased",
        {"hidden": [4], "activation": "relu", "dropout": 0.0},
        path.stem,
        "cpu",
        target=target,
    )
    return load_checkpoint(path)


def test_a_survival_checkpoint_gives_risks_and_needs_its_median(tmp_path):
    folder = tmp_path / "checkpoints" / "p"
    folder.mkdir(parents=True)
    one = _survival_checkpoint(folder / "cv_r1_f1.pt", 1, 0.25)
    values = np.array([[1.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(predict_risk(one, values), _by_hand(one, values), atol=1e-7)
    np.testing.assert_array_equal(predict_output(one, values)[:, 0], predict_risk(one, values))
    assert load_panel_models(folder, "p", ["A", "B"]).kind == "survival"
    _survival_checkpoint(folder / "cv_r1_f2.pt", 2, None)
    with pytest.raises(PanelMlpError, match=r"cv_r1_f2.pt does not fit panel p: a survival checkpoint without"):
        load_panel_models(folder, "p", ["A", "B"])
    classes = tmp_path / "c.pt"
    save_checkpoint(classes, build_mlp(2, [4], 2).state_dict(), ["A", "B"], [0, 0], [1, 1], ["x", "y"], "y",
                    {"hidden": [4], "activation": "relu", "dropout": 0.0}, "c", "cpu")  # fmt: skip
    with pytest.raises(PanelMlpError, match="predict_risk needs a survival checkpoint, not a classification one"):
        predict_risk(load_checkpoint(classes), values)
    np.testing.assert_array_equal(
        predict_output(load_checkpoint(classes), values), predict_raw(load_checkpoint(classes), values)
    )
