"""How a survival target's clinical columns become (time, event): every sample used or counted, never silently lost."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.splits import split_step
from panelmlp.targets.survival import default_horizons, survival_labels

TARGET = {
    "kind": "survival",
    "event": {"column": "VITAL_STATUS", "event": "deceased", "censored": "living"},
    "time": {"event": "DEATH_DAYS", "censored": "CONTACT_DAYS"},
}


def _frame() -> pd.DataFrame:
    rows = [
        ("a", "Deceased", 100.0, 50.0),  # event at 100
        ("b", "Living", None, 300.0),  # censored at 300
        ("c", "Deceased", None, 80.0),  # dead without a death time: missing time (not the contact time)
        ("d", "Living", None, -4.0),  # negative time: left out
        ("e", None, 20.0, 20.0),  # no status
        ("f", "Unknown", 10.0, 10.0),  # a status matching neither class
        ("g", "Deceased", 147.0, -9.0),  # used (147); the negative contact time is listed
        ("h", "LIVING", None, "n/a"),  # a time that is not a number
        ("i", "living", None, 0.0),  # censored at 0: usable
    ]
    frame = pd.DataFrame(rows, columns=["SAMPLE_ID", "VITAL_STATUS", "DEATH_DAYS", "CONTACT_DAYS"])
    return frame.set_index("SAMPLE_ID")


def test_every_sample_is_used_or_counted_with_its_reason() -> None:
    found = survival_labels(_frame(), TARGET)
    assert found.time.to_dict() == {"a": 100.0, "b": 300.0, "g": 147.0, "i": 0.0}
    assert found.event.to_dict() == {"a": 1, "b": 0, "g": 1, "i": 0}
    assert (found.missing_label, found.unmatched_label, found.unmatched_values) == (1, 1, {"Unknown": 1})
    assert (found.missing_time, found.negative_time, found.bad_time_values) == (2, 1, {"n/a": 1})
    assert found.negative_unused == {"g": {"column": "CONTACT_DAYS", "value": -9.0}}
    total = len(found.time) + found.missing_label + found.unmatched_label + found.missing_time + found.negative_time
    assert total == len(_frame())


def test_a_single_time_column_serves_every_sample() -> None:
    target = {**TARGET, "time": "CONTACT_DAYS"}
    found = survival_labels(_frame(), target)
    assert found.time.to_dict() == {"a": 50.0, "b": 300.0, "c": 80.0, "i": 0.0}  # g's -9 is now its time: left out
    assert found.negative_time == 2 and found.negative_unused == {}


def test_default_horizons_are_the_quartiles_of_event_times() -> None:
    time = np.array([10.0, 20.0, 30.0, 40.0, 50.0, 999.0])
    event = np.array([1, 1, 1, 1, 1, 0])
    assert default_horizons(time, event) == [20.0, 30.0, 40.0]  # the censored 999 is no event time


def _cohort(tmp_path, n: int = 40, seed: int = 0) -> str:
    rng = np.random.default_rng(seed)
    dead = rng.random(n) < 0.6
    frame = pd.DataFrame(
        {
            "SAMPLE_ID": [f"S{i:03d}" for i in range(n)],
            "VITAL_STATUS": np.where(dead, "Deceased", "Living"),
            "DEATH_DAYS": np.where(dead, rng.integers(10, 900, n), np.nan),
            "CONTACT_DAYS": rng.integers(10, 900, n).astype(float),
        }
    )
    path = tmp_path / "cohort.parquet"
    frame.to_parquet(path)
    return str(path)


def test_split_step_stratifies_by_event_and_writes_time_and_event(tmp_path) -> None:
    cohort = _cohort(tmp_path)
    summary = split_step(cohort, "SAMPLE_ID", TARGET, {}, str(tmp_path / "s.parquet"), str(tmp_path / "l.json"))
    splits = pd.read_parquet(tmp_path / "s.parquet")
    assert {"y", "event"} <= set(splits.columns) and splits["y"].dtype == "float64"
    share = summary["class_counts"]["deceased"] / summary["labelled"]
    for _, part in splits[(splits["kind"] == "cv") & (splits["role"] == "test")].groupby("split_id"):
        assert abs(part["event"].mean() - share) < 0.15  # stratified folds keep the event share
    written = json.loads((tmp_path / "l.json").read_text())
    assert (
        written["kind"] == "survival" and written["horizons"] == summary["horizons"] and len(written["horizons"]) == 3
    )


def test_a_survival_target_without_events_or_columns_stops_with_one_line(tmp_path) -> None:
    cohort = _cohort(tmp_path)
    with pytest.raises(PanelMlpError, match=r"target.event: 0 sample\(s\) have the event"):
        split_step(cohort, "SAMPLE_ID", {**TARGET, "event": {**TARGET["event"], "event": "^nobody$"}}, {}, "s", "l")
    with pytest.raises(PanelMlpError, match=r"config target.time.censored: 'CONTACT' is not a column .*CONTACT_DAYS"):
        split_step(
            cohort, "SAMPLE_ID", {**TARGET, "time": {"event": "DEATH_DAYS", "censored": "CONTACT"}}, {}, "s", "l"
        )
