"""Labels from free text, holdout and repeated stratified splits."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.labels import derive_labels
from panelmlp.splits import make_splits

CLASSES = {"non-smoker": "non-smoker", "smoker": "smok"}


def test_first_matching_regex_wins_case_insensitively():
    values = pd.Series(
        [
            "Lifelong Non-Smoker: less",
            "Current smoker",
            "Current reformed smoker, more than 15 years ",
            None,
            "unknown",
        ],
        index=list("abcde"),
    )
    found = derive_labels(values, CLASSES, "smoker")
    assert found.labels.to_dict() == {"a": "non-smoker", "b": "smoker", "c": "smoker"}
    assert found.missing == 1 and found.unmatched == 1 and found.unmatched_values == {"unknown": 1}
    assert found.classes == ["non-smoker", "smoker"]
    assert found.codes().to_dict() == {"a": 0, "b": 1, "c": 1}


def test_positive_class_is_coded_one():
    found = derive_labels(pd.Series(["x", "y"], index=[1, 2]), {"pos": "x", "neg": "y"}, "pos")
    assert found.classes == ["neg", "pos"] and found.codes().to_dict() == {1: 1, 2: 0}
    with pytest.raises(PanelMlpError, match=r"target\.positive"):
        derive_labels(pd.Series(["x"]), {"a": "x", "b": "y"}, "c")


def _labels(n0=60, n1=25):
    values = pd.Series(["non-smoker"] * n0 + ["smoker"] * n1, index=[f"s{i}" for i in range(n0 + n1)])
    return derive_labels(values, CLASSES, "smoker")


def test_a_class_without_samples_stops_with_every_count():
    values = pd.Series(
        ["Lifelong non-smoker", "Current smoker", "Current smoker", None], index=list("abcd"), name="SMOKING"
    )
    classes = {"never": "non-smoker", "current": "current", "reformed": "reformed"}
    with pytest.raises(PanelMlpError) as info:
        derive_labels(values, classes)
    message = str(info.value)
    assert "['reformed'] match no sample of column SMOKING (never: 1, current: 2, reformed: 0)" in message
    assert "leave that class out of target.classes" in message and "\n" not in message
    # Only one class with samples is the same mistake.
    with pytest.raises(PanelMlpError, match=r"\['never'\] match no sample"):
        derive_labels(values[1:], {"never": "non-smoker", "current": "current"})


def test_a_class_set_to_null_is_left_out():
    values = pd.Series(["Lifelong non-smoker", "Current smoker"], index=["a", "b"])
    found = derive_labels(values, {"non-smoker": "non-smoker", "smoker": None, "current": "current"})
    assert found.classes == ["non-smoker", "current"] and found.counts() == {"non-smoker": 1, "current": 1}


def test_splits_are_disjoint_complete_and_stratified():
    labels = _labels()
    table = make_splits(labels, 0.2, 81, True, 5, 2)
    assert set(table["split_id"]) == {"holdout"} | {f"cv_r{r}_f{f}" for r in (1, 2) for f in range(1, 6)}
    overall = 25 / 85
    for split_id, part in table.groupby("split_id"):
        train = set(part.loc[part.role == "train", "sample_id"])
        test = set(part.loc[part.role == "test", "sample_id"])
        assert not train & test, split_id
        assert train | test == set(labels.labels.index)
        share = (part.loc[part.role == "test", "label"] == "smoker").mean()
        assert abs(share - overall) < 0.06, split_id
    # Each repeat's folds cover every sample exactly once as test.
    for r in (1, 2):
        tests = table[(table.split_id.str.startswith(f"cv_r{r}_")) & (table.role == "test")]
        assert sorted(tests["sample_id"]) == sorted(labels.labels.index)


def test_holdout_is_sklearns_train_test_split():
    from sklearn.model_selection import train_test_split

    labels = _labels()
    table = make_splits(labels, 0.2, 81, True, 5, 1)
    _, expected_test = train_test_split(
        labels.labels.index.to_numpy(), test_size=0.2, random_state=81, stratify=labels.labels.to_numpy()
    )
    got = table[(table.split_id == "holdout") & (table.role == "test")]["sample_id"]
    assert list(got) == list(expected_test)


def test_too_few_samples_per_fold_is_a_clear_error():
    with pytest.raises(PanelMlpError, match="cv_folds"):
        make_splits(_labels(20, 3), 0.2, 0, True, 5, 1)


def test_real_labels(real_csv):
    from panelmlp.io import clean_csv

    table = clean_csv(real_csv, {"before_column": "PATIENT_ID"}, "SAMPLE_ID").table.to_pandas()
    found = derive_labels(table.set_index("SAMPLE_ID")["SMOKING_HISTORY"], CLASSES, "smoker")
    assert len(found.labels) == 85
    assert found.counts() == {"non-smoker": 62, "smoker": 23}
    assert found.missing == 14
    assert np.isclose(62 / 85, 0.729, atol=0.001)
