"""The report's and compare's fast paths against plain pandas and numpy references (issue 16).

The report splits each unit's tables by panel on numpy columns (slices where a
panel's rows are one run of the file), finds each split's first history row
without sorting, and compare numbers its calibration groups on integer codes.
Each is checked here against the obvious pandas or numpy computation, on
tables whose panels are interleaved, with missing values, a '' category and a
majority baseline; and a whole report must not change when its units' rows
are interleaved.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from panelmlp import calibration
from panelmlp.errors import PanelMlpError
from panelmlp.report import build_report
from panelmlp.report.inputs import Rows, first_rows, rows_by_panel
from panelmlp.report.page import PACK_LEVEL, packed_block, unpack_block
from test_report_data import Spec, make_run


def test_first_rows_are_numpys_first_indices_in_order_of_appearance():
    rng = np.random.default_rng(0)
    names = np.array(["holdout", "cv_r1_f1", "cv_r1_f2", "cv_r2_f1", ""], dtype=object)
    for runs in (True, False):
        for n in (0, 1, 7, 500):
            values = np.repeat(names[rng.integers(0, 5, n)], 3)[:n] if runs else names[rng.integers(0, 5, n)]
            expected = np.sort(np.unique(values, return_index=True)[1]) if n else np.zeros(0, dtype=np.int64)
            got = first_rows(values)
            assert got.dtype == np.int64 and got.tolist() == expected.tolist()
    # a value that comes back after others keeps its first row only
    assert first_rows(np.array(["b", "b", "a", "b", "c", "a"], dtype=object)).tolist() == [0, 2, 4]


def _history_frame(rng: np.random.Generator, interleaved: bool) -> pd.DataFrame:
    """Three panels of two collections (one named, collection ''), 2 splits x 4 epochs, categorical names."""
    rows = []
    for collection, panel in (("", "P1"), ("sets", "P1"), ("sets", "P2")):
        for split in ("holdout", "cv_r1_f1"):
            for epoch in range(1, 5):
                rows.append((collection, panel, split, epoch, rng.normal(), "" if epoch % 2 else "G1 G2"))
    frame = pd.DataFrame(rows, columns=["collection", "panel", "split_id", "epoch", "test_loss", "uninformative"])
    if interleaved:  # every panel's rows spread over the file, each panel's own order kept
        frame = frame.iloc[np.argsort(np.arange(len(frame)) % 8, kind="stable")].reset_index(drop=True)
    for column in ("collection", "panel", "split_id", "uninformative"):
        frame[column] = frame[column].astype("category")
    frame.loc[3, "uninformative"] = None  # a missing value reads as '', like the '' category
    return frame


@pytest.mark.parametrize("interleaved", [False, True])
def test_rows_by_panel_matches_a_pandas_selection(interleaved: bool):
    frame = _history_frame(np.random.default_rng(1), interleaved)
    got = rows_by_panel(frame)
    text = frame.astype({c: object for c in ("collection", "panel", "split_id", "uninformative")}).fillna("")
    keys = list(dict.fromkeys(zip(text["collection"], text["panel"], strict=True)))
    assert list(got) == keys  # in order of first appearance
    for collection, panel in keys:
        part = text[(text["collection"] == collection) & (text["panel"] == panel)]
        rows = got[(collection, panel)]
        assert len(rows) == len(part) == 8
        for column in frame.columns:
            assert rows[column].tolist() == part[column].tolist(), column
        assert all(type(v) is str for v in rows["uninformative"])
    # string columns (predictions.parquet) read as str objects, '' where missing
    strings = pd.DataFrame({"collection": ["", "s", None], "panel": ["a", "b", "b"]}, dtype="string")
    assert Rows.of(strings)["collection"].tolist() == ["", "s", ""]
    assert list(rows_by_panel(strings)) == [("", "a"), ("s", "b"), ("", "b")]


def _predictions(rng: np.random.Generator) -> pd.DataFrame:
    """CV predictions of two panels x (mlp, majority) x 2 repeats of 3 folds, interleaved, and one holdout split."""
    parts = []
    for repeat in (1, 2):
        for fold in (1, 2, 3):
            for panel in ("A", "B"):
                for model in ("mlp", "majority"):
                    ids = np.arange(fold - 1, 60, 3)
                    y = ids % 5 < 2
                    p = 1 / (1 + np.exp(-(rng.normal(size=len(ids)) + 1.5 * y - 0.7)))
                    if model == "majority":
                        p = np.full(len(ids), y.mean())
                    parts.append(
                        pd.DataFrame(
                            {
                                "collection": "sets",
                                "panel": panel,
                                "model": model,
                                "split_id": f"cv_r{repeat}_f{fold}",
                                "kind": "cv",
                                "sample_id": [f"s{i}" for i in ids],
                                "true_label": np.where(y, "case", "ctrl"),
                                "predicted_label": np.where(p >= 0.5, "case", "ctrl"),
                                "probability": p,
                            }
                        )
                    )
    holdout = parts[0].assign(split_id="holdout", kind="holdout")
    frame = pd.concat([*parts, holdout], ignore_index=True)
    return frame.astype({c: "string" for c in frame.columns if c != "probability"})


def _reference_pooled(predictions: pd.DataFrame) -> pd.DataFrame:
    """pooled_calibration by pandas groupby: each (collection, panel, model, repeat) fitted on its own rows."""
    cv = predictions[predictions["kind"] == "cv"].copy()
    cv["repeat"] = cv["split_id"].str.extract(r"^cv_r(\d+)_f\d+$", expand=False).astype(int)
    rows = []
    for (collection, panel, model, repeat), part in cv.groupby(["collection", "panel", "model", "repeat"], sort=False):
        flat = bool((part.groupby("split_id")["probability"].nunique() <= 1).all())
        y = (part["true_label"] == "case").to_numpy()
        fit = calibration._fit(y, part["probability"].to_numpy(np.float64), flat)
        rows.append([collection, panel, model, repeat, *fit, len(part)])
    return pd.DataFrame(rows, columns=calibration.POOLED_COLUMNS)


def test_pooled_calibration_matches_a_groupby_reference():
    predictions = _predictions(np.random.default_rng(2))
    got = calibration.pooled_calibration(predictions)
    expected = _reference_pooled(predictions)
    assert got[["collection", "panel", "model", "repeat"]].values.tolist() == (
        expected[["collection", "panel", "model", "repeat"]].values.tolist()
    )
    assert len(got) == 8 and (got["n_samples"] == 60).all()
    numbers = ["calibration_slope", "calibration_intercept", "slope_se", "intercept_se"]
    np.testing.assert_array_equal(got[numbers].to_numpy(np.float64), expected[numbers].to_numpy(np.float64))
    majority = got[got["model"] == "majority"]
    assert majority["calibration_slope"].isna().all() and majority["calibration_intercept"].notna().all()
    # a majority model whose one split predicts two values has a slope again, as pandas' nunique says
    varied = predictions.copy()
    majority_a = (varied["model"] == "majority") & (varied["panel"] == "A")
    varied.loc[majority_a, "probability"] += np.random.default_rng(5).normal(0, 0.05, 120)
    got = calibration.pooled_calibration(varied)
    expected = _reference_pooled(varied)
    np.testing.assert_array_equal(got[numbers].to_numpy(np.float64), expected[numbers].to_numpy(np.float64))
    assert got.loc[got["model"] == "majority", "calibration_slope"].notna().sum() == 2
    with pytest.raises(PanelMlpError, match=r"sets/B, majority, CV repeat 2: a sample is predicted twice"):
        calibration.pooled_calibration(pd.concat([predictions, predictions.iloc[[-181]]]))


def test_summarise_pooled_matches_a_groupby_reference():
    pooled = calibration.pooled_calibration(_predictions(np.random.default_rng(3)))
    pooled.loc[0, "calibration_slope"] = math.nan  # a repeat without a fit is left out
    got = calibration.summarise_pooled(pooled)
    z = 1.959963984540054
    expected = []
    for (collection, panel, model), part in pooled.groupby(["collection", "panel", "model"], sort=False):
        for metric, se in (("calibration_slope", "slope_se"), ("calibration_intercept", "intercept_se")):
            ok = part[np.isfinite(part[metric])]
            mean = ok[metric].mean() if len(ok) else math.nan
            rms = math.sqrt((ok[se] ** 2).mean()) if len(ok) else math.nan
            sd = ok[metric].std(ddof=1) if len(ok) > 1 else math.nan
            expected.append([collection, panel, model, metric, mean, sd, mean - z * rms, mean + z * rms, len(ok)])
    expected = pd.DataFrame(expected, columns=got.columns)
    assert got.iloc[:, :4].values.tolist() == expected.iloc[:, :4].values.tolist()
    np.testing.assert_allclose(got.iloc[:, 4:].to_numpy(np.float64), expected.iloc[:, 4:].to_numpy(np.float64))
    assert got["n_splits"].tolist()[:2] == [1, 2] and math.isnan(got.loc[0, "cv_sd"])
    assert len(calibration.summarise_pooled(pooled.iloc[:0])) == 0


def test_packed_figures_round_trip_at_the_pack_level():
    value = {"curves": {"data": [{"y": [round(math.sin(i / 7), 3) for i in range(2000)]}], "layout": {"h": 1}}}
    element = packed_block("p-figures", value)
    text = re.sub(r"^<script[^>]*>|</script>$", "", element)
    assert unpack_block(text) == value
    assert PACK_LEVEL == 5 and len(text) < len(str(value)) / 2


def _interleave(path: str, kind: str) -> None:
    """Rewrite a unit's table with its panels' rows interleaved by split, each panel's own row order kept."""
    frame = pd.read_parquet(path)
    position = frame.groupby(["collection", "panel"], sort=False, observed=True).cumcount().to_numpy()
    block = 30 if kind == "history" else 1  # history: a split's epochs stay together
    order = np.lexsort((np.arange(len(frame)), position // block))
    shuffled = frame.iloc[order].reset_index(drop=True)
    assert not shuffled["panel"].astype(str).equals(frame["panel"].astype(str))
    shuffled.to_parquet(path, index=False)


def test_report_is_the_same_when_panels_are_interleaved(tmp_path: Path):
    """The slice path (each panel one run of rows) and the gathered path (interleaved rows) give one page."""
    specs = [Spec("A", 4, 1.2, "sets"), Spec("B", 4, 0.0, "sets"), Spec("C", 5, 0.4, "sets")]
    inputs = make_run(tmp_path / "results", specs, epochs=30)
    config = {"report": {"title": "t"}}
    build_report(inputs, config, str(tmp_path / "runs.html"))
    for path in inputs["history"]:
        _interleave(path, "history")
    for path in inputs["predictions"]:
        _interleave(path, "predictions")
    build_report(inputs, config, str(tmp_path / "interleaved.html"))
    runs, interleaved = ((tmp_path / f"{n}.html").read_text(encoding="utf-8") for n in ("runs", "interleaved"))
    assert runs == interleaved and runs.count('data-figure="curves"') == 3
