"""Output tables: each round-trips through its writer and reader with its types, for every target kind; a damaged
table is one clear error; and the writers give the bytes fit.py's own writers give."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from panelmlp import fit, tables
from panelmlp.errors import PanelMlpError
from panelmlp.tables import HISTORY, METRICS, NULLS, PANELS, PREDICTIONS, SUMMARY, TABLES, TUNING, Table
from panelmlp.targets import KINDS

# The pandas dtype each logical type comes back as, per file format: written independently of tables.py's code.
TSV_DTYPES = {"text": "str", "int64": "int64", "float64": "float64", "flag": "bool"}
PARQUET_DTYPES = {"text": "string", "int64": "int64", "float64": "float64"}
HISTORY_DTYPES = {"text": "category", "int32": "int32", "float32": "float32"}

KIND_COLUMNS = {
    "metrics": {
        "classification": [
            "accuracy",
            "balanced_accuracy",
            "precision",
            "recall",
            "f1",
            "roc_auc",
            "pr_auc",
            "mcc",
            "brier",
            "calibration_slope",
            "calibration_intercept",
        ],
        "regression": ["r2", "rmse", "mae", "pearson", "spearman"],
        "survival": ["c_index", "uno_c", "td_auc", "ibs", "td_auc_365", "td_auc_730"],
    },
    "history": {
        "classification": ["train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc"],
        "regression": ["train_loss", "test_loss", "r2", "rmse", "mae", "pearson", "spearman"],
        "survival": ["train_loss", "test_loss", "c_index"],
    },
    "predictions": {
        "classification": ["true_label", "predicted_label", "probability", "prob_a", "prob_b", "prob_c"],
        "regression": ["true_value", "predicted_value"],
        "survival": ["time", "event", "risk", "risk_group"],
    },
}
"""The columns formats.md and the kinds' records give each kind (classification with three classes a, b, c)."""


def _values(dtype: str, n: int) -> list | np.ndarray:
    """``n`` values of a logical type that survive ``%.6g`` exactly (text includes a panel called ``NA``)."""
    if dtype == "text":
        return [["NA", "", "b c", "x"][i % 4] for i in range(n)]
    if dtype == "flag":
        return [i % 2 == 0 for i in range(n)]
    if dtype.startswith("int"):
        return np.arange(1, n + 1, dtype=dtype)
    return (np.arange(n, dtype=dtype) + 0.125) / 4


def _frame(table: Table, kind: str, n: int = 4) -> pd.DataFrame:
    """A small frame of every column of ``table`` for ``kind``, text as plain Python strings."""
    columns = table.columns(kind, horizons=(365, 730), classes=("a", "b", "c"))
    return pd.DataFrame({name: _values(dtype, n) for name, dtype in columns})


def _expected(table: Table, frame: pd.DataFrame, kind: str) -> pd.DataFrame:
    """What reading ``frame`` back must give: text as each format's string dtype, numbers as written."""
    if table is HISTORY:
        types = HISTORY_DTYPES
    elif table.parquet:
        types = PARQUET_DTYPES
    else:
        types = TSV_DTYPES
    out = frame.astype({c: types[table.dtype(c, kind)] for c in frame.columns})
    if table is HISTORY:  # a dictionary in order of first appearance, as fit.py writes it
        for c in frame.columns:
            if table.dtype(c, kind) == "text":
                out[c] = pd.Categorical(frame[c], categories=pd.unique(frame[c]))
    return out


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_round_trips_with_its_types(tmp_path: Path, name: str, kind: str):
    table = TABLES[name]
    frame = _frame(table, kind)
    if table.by_kind:
        own = [c for c, _ in table.columns(kind, horizons=(365, 730), classes=("a", "b", "c"))]
        assert [c for c in own if c not in dict(table.keys) and c not in dict(table.tail)] == KIND_COLUMNS[
            table.by_kind
        ][kind]
    path = tmp_path / table.name
    table.write(frame, path)
    back = table.read(path)
    pd.testing.assert_frame_equal(back, _expected(table, frame, kind))
    assert table.kind_of(back.columns) == (KINDS[kind] if table.by_kind else None)
    again = table.read(path, kind=kind)  # told the kind: the same
    pd.testing.assert_frame_equal(again, back)


def test_text_that_looks_like_numbers_or_na_stays_text(tmp_path: Path):
    frame = _frame(PANELS, "classification").assign(panel=["NA", "1", "nan", "True"], coverage=[1.0, 0.5, 0.25, 1.0])
    PANELS.write(frame, tmp_path / "panels.tsv")
    back = PANELS.read(tmp_path / "panels.tsv")
    assert back["panel"].tolist() == ["NA", "1", "nan", "True"]
    assert back["coverage"].dtype == "float64" and back["coverage"].tolist() == [1.0, 0.5, 0.25, 1.0]
    generic = tables.read_tsv(tmp_path / "panels.tsv")
    assert generic["panel"].tolist() == ["NA", "1", "nan", "True"] and generic["n_found"].dtype == "int64"


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("name", ["metrics", "predictions", "nulls", "history"])
def test_a_table_without_one_of_its_kind_columns_is_one_line_naming_file_and_column(
    tmp_path: Path, name: str, kind: str
):
    table = TABLES[name]
    frame = _frame(table, kind)
    own = [c for c, _ in table.kind_columns(kind)]  # the kind's own columns, not per horizon or class
    gone = own[-1]
    path = tmp_path / table.name
    table.write(frame, tmp_path / "whole")  # the writer refuses the damaged frame; the whole one is fine
    if table.parquet:
        frame.drop(columns=gone).to_parquet(path, index=False)
    else:
        frame.drop(columns=gone).to_csv(path, sep="\t", index=False)
    with pytest.raises(PanelMlpError) as caught:
        table.read(path, kind=kind)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: no column {gone!r}") and "--forcerun" in message
    with pytest.raises(PanelMlpError, match=r"w/[a-z]+\.(tsv|parquet): no column '"):  # named, or the kind's main
        table.write(frame.drop(columns=gone), tmp_path / "w" / table.name)


def test_a_key_column_missing_or_holding_text_is_refused(tmp_path: Path):
    frame = _frame(METRICS, "survival")
    path = tmp_path / "metrics.tsv"
    frame.drop(columns="split_id").to_csv(path, sep="\t", index=False)
    with pytest.raises(PanelMlpError, match=r"metrics\.tsv: no column 'split_id'"):
        METRICS.read(path)
    frame.assign(c_index=["0.7", "0.6", "high", ""]).to_csv(path, sep="\t", index=False)
    with pytest.raises(
        PanelMlpError, match=r"metrics\.tsv: column 'c_index' holds 'high' where a number belongs \(line 4\)"
    ):
        METRICS.read(path)
    tuning = _frame(TUNING, "survival").assign(chosen=["True", "yes", "False", "True"])
    tuning.to_csv(tmp_path / "tuning.tsv", sep="\t", index=False)
    with pytest.raises(PanelMlpError, match=r"tuning\.tsv: column 'chosen' holds 'yes'"):
        TUNING.read(tmp_path / "tuning.tsv")
    nulls = _frame(NULLS, "survival").astype({"size": str})
    nulls.to_parquet(tmp_path / "nulls.parquet", index=False)
    with pytest.raises(PanelMlpError, match=r"nulls\.parquet: column 'size' holds .* where numbers belong"):
        NULLS.read(tmp_path / "nulls.parquet")
    with pytest.raises(PanelMlpError, match=r"summary\.tsv: missing; rerun snakemake"):
        SUMMARY.read(tmp_path / "summary.tsv")


def test_an_empty_metrics_table_of_keys_alone_reads(tmp_path: Path):
    """A unit whose panels were all skipped writes metrics.tsv with the key columns alone (fit.py)."""
    empty = pd.DataFrame([], columns=fit.METRIC_KEYS)
    METRICS.write(empty, tmp_path / "metrics.tsv")
    assert (tmp_path / "metrics.tsv").read_text() == "\t".join(fit.METRIC_KEYS) + "\n"
    assert METRICS.read(tmp_path / "metrics.tsv").columns.tolist() == fit.METRIC_KEYS


def test_column_names_never_have_two_types():
    """The generic reader types a column by its name alone, so no two tables may disagree on one."""
    seen: dict[str, str] = {}
    for table in TABLES.values():
        for kind in KINDS:
            for name, dtype in table.columns(kind, horizons=(365,), classes=("a", "b", "c")):
                logical = "number" if dtype.startswith(("int", "float")) else dtype
                assert seen.setdefault(name, logical) == logical, name


# ---------------------------------------------------------------- the bytes fit.py writes


def test_column_lists_are_the_ones_the_old_writers_wrote():
    """fit.py writes through these records; their columns are those fit.py wrote before (outputs unchanged)."""
    assert [c for c, _ in PANELS.keys] == [
        "unit", "collection", "panel", "directory", "description", "n_listed", "n_found", "coverage",
        "status", "reason", "hint", "genes", "genes_missing",
    ]  # fmt: skip
    assert fit.METRIC_KEYS == [
        "collection", "panel", "model", "split_id", "kind", "n_train", "n_test", "n_uninformative",
    ]  # fmt: skip
    assert [c for c, _ in TUNING.keys] == [
        "collection", "panel", "split_id", "point", "grid_point", "score", "inner_score", "chosen",
    ]  # fmt: skip
    assert [c for c, _ in NULLS.columns("classification")] == [
        "kind", "collection", "panel", "size", "replicate", "split_id", *KINDS["classification"].history,
    ]  # fmt: skip
    assert fit.PREDICTION_KEYS == ("collection", "panel", "model", "split_id", "kind", "sample_id")
    for name, kind in KINDS.items():
        text = [c for c, t in PREDICTIONS.kind_columns(name) if t == "text"]
        assert tuple(text) == kind.prediction_text


def _bytes_equal(a: Path, b: Path) -> None:
    assert a.read_bytes() == b.read_bytes()


def _panel(name: str, collection: str = "") -> fit.Panel:
    return fit.Panel(name, collection, name, ["G1", "G2"], "out")


@pytest.mark.parametrize(
    ("kind", "classes"),
    [("classification", ["no", "yes"]), ("classification", ["a", "b", "c"]), ("regression", []), ("survival", [])],
)
def test_predictions_write_the_bytes_of_fit_py(tmp_path: Path, kind: str, classes: list[str]):
    target = KINDS[kind]
    rng = np.random.default_rng(0)
    samples = [f"S{i}" for i in range(12)]
    if kind == "survival":
        y = np.c_[rng.uniform(10, 900, 12), rng.integers(0, 2, 12)]
    else:
        y = rng.integers(0, len(classes), 12) if classes else rng.normal(size=12)
    width = max(len(classes), 1)
    parts = []
    for p, model in ((_panel("NA"), "mlp"), (_panel("b", "hallmark"), "logreg")):
        for s in range(2):
            rows = np.arange(s * 6, s * 6 + 6)
            output = rng.dirichlet(np.ones(width), 6) if classes else rng.normal(size=(6, 1))
            parts.append((p, model, s, rows, output, 0.1 if kind == "survival" else None))
    written = fit._predictions(parts, ["cv_r1_f1", "cv_r1_f2"], ["cv", "cv"], samples, y, classes, target)
    assert [c for c in written.columns if c not in fit.PREDICTION_KEYS] == KIND_COLUMNS["predictions"][kind][
        : len(written.columns) - len(fit.PREDICTION_KEYS)
    ]
    written.to_parquet(tmp_path / "fit.parquet", index=False)
    PREDICTIONS.write(written, tmp_path / "tables.parquet")
    _bytes_equal(tmp_path / "fit.parquet", tmp_path / "tables.parquet")
    # Without fit.py's cast to the string dtype, the writer casts: the same bytes.
    text = [c for c in written.columns if written[c].dtype == "string"]
    PREDICTIONS.write(written.astype(dict.fromkeys(text, object)), tmp_path / "raw.parquet")
    _bytes_equal(tmp_path / "fit.parquet", tmp_path / "raw.parquet")


def test_survival_predictions_are_typed_by_the_writer(tmp_path: Path):
    frame = _frame(PREDICTIONS, "survival").astype({"event": "int64"})
    PREDICTIONS.write(frame, tmp_path / "p.parquet")
    back = pd.read_parquet(tmp_path / "p.parquet")
    assert back["risk_group"].dtype == "string" and back["sample_id"].dtype == "string"
    assert back["event"].dtype == "int64" and back["time"].dtype == "float64"


@pytest.mark.parametrize("kind", ["classification", "regression", "survival"])
def test_nulls_write_the_bytes_of_fit_py(tmp_path: Path, kind: str):
    history = list(KINDS[kind].history)
    rows = [["permutation", "", "NA", 3, 1, "cv_r1_f1", *np.linspace(0.1, 0.9, len(history))]]
    rows += [["random", None, "", 5, r, "cv_r1_f2", *np.full(len(history), 0.5)] for r in (1, 2)]
    keys = {"kind": "string", "collection": "string", "panel": "string", "size": "int64", "replicate": "int64"}
    keys["split_id"] = "string"
    columns = [*keys, *history]
    types = {**keys, **dict.fromkeys(history, "float64")}
    written = pd.DataFrame(rows, columns=columns).astype(types)  # as fit.py built it before tables.py
    written.to_parquet(tmp_path / "fit.parquet", index=False)
    NULLS.write(pd.DataFrame(rows, columns=columns), tmp_path / "tables.parquet")
    _bytes_equal(tmp_path / "fit.parquet", tmp_path / "tables.parquet")
    empty = pd.DataFrame([], columns=columns).astype(types)
    empty.to_parquet(tmp_path / "fit0.parquet", index=False)
    NULLS.write(pd.DataFrame([], columns=columns), tmp_path / "tables0.parquet")
    _bytes_equal(tmp_path / "fit0.parquet", tmp_path / "tables0.parquet")


@pytest.mark.parametrize("kind", ["classification", "regression", "survival"])
def test_history_writes_the_bytes_of_fit_py(tmp_path: Path, kind: str):
    names = KINDS[kind].history
    epochs, split_ids, kinds = 4, ["cv_r1_f1", "holdout"], ["cv", "holdout"]
    rng = np.random.default_rng(1)
    parts = []
    for p in (_panel("NA"), _panel("b", "hallmark")):
        for s in range(2):
            h = rng.random((epochs, len(names))).astype(np.float32)
            h[3:] = np.nan
            parts.append((p, s, h, "cpu", 3))
    silent = {("out", "NA"): {"G2": ["holdout"]}}
    fit._write_history(tmp_path / "fit.parquet", parts, split_ids, kinds, epochs, names, silent)
    frame = pd.DataFrame(
        {
            "collection": np.repeat([p.collection for p, *_ in parts], epochs),
            "panel": np.repeat([p.name for p, *_ in parts], epochs),
            "split_id": np.repeat([split_ids[s] for _, s, *_ in parts], epochs),
            "kind": np.repeat([kinds[s] for _, s, *_ in parts], epochs),
            "epoch": np.tile(np.arange(1, epochs + 1), len(parts)),
            **{n: np.concatenate([h[:, j] for _, _, h, *_ in parts]) for j, n in enumerate(names)},
            "device": "cpu",
            "best_epoch": 3,
            "uninformative": np.repeat(["", "G2", "", ""], epochs),
        }
    )
    HISTORY.write(frame, tmp_path / "tables.parquet")
    _bytes_equal(tmp_path / "fit.parquet", tmp_path / "tables.parquet")
    fit._write_history(tmp_path / "fit0.parquet", [], split_ids, kinds, epochs, names)
    HISTORY.write(frame.iloc[:0], tmp_path / "tables0.parquet")
    _bytes_equal(tmp_path / "fit0.parquet", tmp_path / "tables0.parquet")


def test_tsv_tables_write_the_bytes_of_fit_py(tmp_path: Path):
    """panels.tsv without a float format, metrics.tsv and tuning.tsv with ``%.6g``, as fit.py writes them."""
    panels = _frame(PANELS, "classification").assign(coverage=[1 / 3, 1.0, 0.5, 2 / 7])
    panels.to_csv(tmp_path / "fit_panels.tsv", sep="\t", index=False)
    PANELS.write(panels, tmp_path / "panels.tsv")
    _bytes_equal(tmp_path / "fit_panels.tsv", tmp_path / "panels.tsv")
    for kind in KINDS:
        metrics = _frame(METRICS, kind).assign(best_epoch=[3.0, np.nan, np.nan, 7.0])
        metrics[metrics.columns[8]] = [1 / 3, np.nan, 1e-9, 0.987654321]
        metrics.to_csv(tmp_path / "fit_metrics.tsv", sep="\t", index=False, float_format="%.6g")
        METRICS.write(metrics, tmp_path / "metrics.tsv")
        _bytes_equal(tmp_path / "fit_metrics.tsv", tmp_path / "metrics.tsv")
    rows = [
        {
            "collection": "",
            "panel": "NA",
            "split_id": "cv_r1_f1",
            "point": q,
            "grid_point": f"lr={q}",
            "score": "c_index",
            "inner_score": 2 / 3 if q else np.nan,
            "chosen": q == 1,
        }
        for q in (1, 2)
    ]
    tuning = pd.DataFrame(
        rows, columns=["collection", "panel", "split_id", "point", "grid_point", "score", "inner_score", "chosen"]
    )
    tuning.to_csv(tmp_path / "fit_tuning.tsv", sep="\t", index=False, float_format="%.6g")
    TUNING.write(tuning, tmp_path / "tuning.tsv")
    _bytes_equal(tmp_path / "fit_tuning.tsv", tmp_path / "tuning.tsv")
    back = TUNING.read(tmp_path / "tuning.tsv")
    assert back["chosen"].tolist() == [True, False] and back["score"].tolist() == ["c_index", "c_index"]
