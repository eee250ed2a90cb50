"""The numpy ports in panelmlp.splits give exactly scikit-learn's splits, and import no scikit-learn.

scikit-learn is imported here only, as the reference: every case compares the
train and test index arrays element by element (order included), and where
scikit-learn raises, the port must raise a one-line PanelMlpError instead.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.labels import derive_labels
from panelmlp.splits import (
    SKLEARN_VERSION,
    _approximate_mode,
    check_random_state,
    holdout_split,
    make_splits,
    repeated_stratified_kfold,
    repeated_stratified_splits,
    train_test_indices,
)

sklearn = pytest.importorskip("sklearn")
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split  # noqa: E402
from sklearn.utils.extmath import _approximate_mode as sk_approximate_mode  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SEEDS = [0, 1, 7, 42, 81, 2024, 2**32 - 1]
SIZES = [10, 11, 13, 17, 23, 40, 85, 100, 257, 1000, 2000]


def _label_vector(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Labels of one of several shapes; ``rng`` only builds the data, never the split."""
    if kind == "binary":
        return rng.integers(0, 2, n)
    if kind == "multi":
        return rng.integers(0, int(rng.integers(3, 7)), n)
    if kind == "imbalanced":  # the real cohort's 62/23 share, shuffled
        n1 = max(2, round(n * 23 / 85))
        return rng.permutation(np.array(["non-smoker"] * (n - n1) + ["smoker"] * n1, dtype=object))
    if kind == "strings":
        return rng.choice(np.array(["b", "a", "c", "zeta"]), n, p=[0.5, 0.2, 0.2, 0.1])
    if kind == "blocks":  # sorted, with the second class appearing first in sorted order
        n0 = n // 3
        return np.array(["z"] * n0 + ["a"] * (n - n0), dtype=object)
    raise AssertionError(kind)


LABEL_KINDS = ["binary", "multi", "imbalanced", "strings", "blocks"]


def _tts_cases() -> list[tuple]:
    pick = np.random.default_rng(12345)
    cases = []
    for n, kind, stratify in itertools.product(SIZES, LABEL_KINDS, (True, False)):
        for test_size in dict.fromkeys((0.2, 0.25, 0.33, 0.5, 0.1, 0.9, 1, 3, n // 3)):
            cases.append((n, kind, stratify, test_size, SEEDS[int(pick.integers(len(SEEDS)))]))
    return cases


def _sklearn_or_error(call: Callable[[], object]) -> object:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            return call()
    except ValueError:
        return ValueError


def _assert_same(got: np.ndarray, want: np.ndarray) -> None:
    assert got.shape == want.shape
    assert np.array_equal(got, want)
    assert got.dtype.kind == want.dtype.kind


def test_reference_version_is_installed():
    assert sklearn.__version__ == SKLEARN_VERSION


@pytest.mark.parametrize(("n", "kind", "stratify", "test_size", "seed"), _tts_cases())
def test_train_test_indices_match_sklearn(n, kind, stratify, test_size, seed):
    y = _label_vector(kind, n, np.random.default_rng(n * 31 + len(kind)))
    positions = np.arange(n)
    want = _sklearn_or_error(
        lambda: train_test_split(positions, test_size=test_size, random_state=seed, stratify=y if stratify else None)
    )
    if want is ValueError:
        with pytest.raises(PanelMlpError, match=r"config split\.(test_size|stratify)") as err:
            train_test_indices(n, test_size, seed, y if stratify else None)
        assert "\n" not in str(err.value)
        return
    train, test = train_test_indices(n, test_size, seed, y if stratify else None)
    _assert_same(train, want[0])
    _assert_same(test, want[1])


def test_train_test_indices_accept_a_shared_random_state():
    """Passing one RandomState on advances it as scikit-learn does: successive splits match too."""
    y = _label_vector("multi", 200, np.random.default_rng(5))
    ours, theirs = np.random.RandomState(3), np.random.RandomState(3)
    for stratify in (True, False, True):
        got = train_test_indices(200, 0.3, ours, y if stratify else None)
        want = train_test_split(np.arange(200), test_size=0.3, random_state=theirs, stratify=y if stratify else None)
        _assert_same(got[0], want[0])
        _assert_same(got[1], want[1])


def _kfold_cases() -> list[tuple]:
    pick = np.random.default_rng(777)
    cases = []
    for n, kind in itertools.product(SIZES, LABEL_KINDS):
        for k in range(2, 11):
            repeats = int(pick.integers(1, 4))
            cases.append((n, kind, k, repeats, SEEDS[int(pick.integers(len(SEEDS)))]))
    return cases


@pytest.mark.parametrize(("n", "kind", "k", "repeats", "seed"), _kfold_cases())
def test_repeated_stratified_kfold_matches_sklearn(n, kind, k, repeats, seed):
    y = _label_vector(kind, n, np.random.default_rng(n * 17 + k))
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    want = _sklearn_or_error(lambda: list(splitter.split(np.zeros(n), y)))
    if want is ValueError:  # every class smaller than k; the public function refuses these labels
        labels = pd.Series(y, index=np.arange(n))
        with pytest.raises(PanelMlpError, match=r"split\.cv_folds"):
            repeated_stratified_splits(labels, k, repeats, seed)
        return
    got = list(repeated_stratified_kfold(y, k, repeats, seed))
    assert len(got) == len(want) == k * repeats
    for (train, test), (want_train, want_test) in zip(got, want, strict=True):
        _assert_same(train, want_train)
        _assert_same(test, want_test)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize(
    "counts", [[4, 2], [5, 2], [2, 2, 2, 1], [62, 23], [10, 10, 10], [3, 3, 3, 3, 3, 3, 1], [7, 5, 3, 1]]
)
def test_approximate_mode_matches_sklearn(counts, seed):
    counts = np.array(counts)
    for n_draws in range(counts.sum() + 1):
        ours, theirs = np.random.RandomState(seed), np.random.RandomState(seed)
        _assert_same(_approximate_mode(counts, n_draws, ours), sk_approximate_mode(counts, n_draws, theirs))
        assert ours.randint(1 << 30) == theirs.randint(1 << 30), "the streams must advance alike"


def test_check_random_state_matches_sklearn():
    from sklearn.utils import check_random_state as sk_check_random_state

    state = np.random.RandomState(9)
    assert check_random_state(state) is state
    assert check_random_state(None) is sk_check_random_state(None)
    assert (
        check_random_state(81).randint(1 << 30, size=5).tolist()
        == sk_check_random_state(81).randint(1 << 30, size=5).tolist()
    )


# The implementation before the port, kept as the reference for whole outputs.


def _old_holdout_split(labels: pd.Series, test_size: float, random_state: int, stratify: bool) -> pd.DataFrame:
    ids = labels.index.to_numpy()
    train, test = train_test_split(
        ids, test_size=test_size, random_state=random_state, stratify=labels.to_numpy() if stratify else None
    )
    return _old_frame("holdout", "holdout", train, test)


def _old_repeated_stratified_splits(labels: pd.Series, k: int, repeats: int, seed: int) -> pd.DataFrame:
    ids = labels.index.to_numpy()
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    frames = []
    for i, (train, test) in enumerate(splitter.split(np.zeros(len(ids)), labels.to_numpy())):
        frames.append(_old_frame(f"cv_r{i // k + 1}_f{i % k + 1}", "cv", ids[train], ids[test]))
    return pd.concat(frames, ignore_index=True)


def _old_frame(split_id: str, kind: str, train: np.ndarray, test: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split_id": split_id,
            "kind": kind,
            "sample_id": np.concatenate([train, test]),
            "role": ["train"] * len(train) + ["test"] * len(test),
        }
    )


CLASSES = {"non-smoker": "non-smoker", "smoker": "smok"}


def _cohort_labels(n0: int, n1: int, seed: int) -> pd.Series:
    """Free-text smoking labels for shuffled sample ids, as derive_labels gives them."""
    rng = np.random.default_rng(seed)
    text = rng.permutation(["Lifelong Non-smoker"] * n0 + ["Current smoker"] * n1)
    values = pd.Series(text, index=[f"C3L-{i:05d}" for i in rng.permutation(n0 + n1)])
    return derive_labels(values, CLASSES, "smoker").labels


@pytest.mark.parametrize(("n0", "n1"), [(62, 23), (60, 25), (8, 5), (500, 120), (1400, 600)])
@pytest.mark.parametrize("seed", [0, 81, 3])
def test_public_functions_equal_the_sklearn_implementation(n0, n1, seed):
    labels = _cohort_labels(n0, n1, seed)
    for test_size, stratify in itertools.product((0.2, 0.25, 0.33, 0.5, 7), (True, False)):
        pd.testing.assert_frame_equal(
            holdout_split(labels, test_size, seed, stratify), _old_holdout_split(labels, test_size, seed, stratify)
        )
    for k, repeats in ((2, 1), (5, 2), (5, 1), (min(10, n1), 3)):
        pd.testing.assert_frame_equal(
            repeated_stratified_splits(labels, k, repeats, seed),
            _old_repeated_stratified_splits(labels, k, repeats, seed),
        )


def test_make_splits_table_is_unchanged():
    labels = derive_labels(
        pd.Series(np.random.default_rng(1).permutation(["never smoker"] * 62 + ["smoker"] * 23), index=range(85)),
        {"non-smoker": "never", "smoker": "smok"},
        "smoker",
    )
    table = make_splits(labels, 0.2, 81, True, 5, 2)
    reference = pd.concat(
        [_old_holdout_split(labels.labels, 0.2, 81, True), _old_repeated_stratified_splits(labels.labels, 5, 2, 81)],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(table[reference.columns], reference)


def test_real_cohort_splits_are_unchanged(real_csv):
    from panelmlp.io import clean_csv

    table = clean_csv(real_csv, {"before_column": "PATIENT_ID"}, "SAMPLE_ID").table.to_pandas()
    labels = derive_labels(table.set_index("SAMPLE_ID")["SMOKING_HISTORY"], CLASSES, "smoker").labels
    pd.testing.assert_frame_equal(holdout_split(labels, 0.2, 81, True), _old_holdout_split(labels, 0.2, 81, True))
    pd.testing.assert_frame_equal(
        repeated_stratified_splits(labels, 5, 2, 81), _old_repeated_stratified_splits(labels, 5, 2, 81)
    )


@pytest.mark.parametrize(
    ("call", "key"),
    [
        (lambda: train_test_indices(10, 0.0, 0), "split.test_size"),
        (lambda: train_test_indices(10, 1.0, 0), "split.test_size"),
        (lambda: train_test_indices(10, 10, 0), "split.test_size"),
        (lambda: train_test_indices(10, 0, 0), "split.test_size"),
        (lambda: train_test_indices(10, True, 0), "split.test_size"),
        (lambda: train_test_indices(10, "0.2", 0), "split.test_size"),
        (lambda: train_test_indices(10, 0.95, 0), "split.test_size"),  # ceil(9.5) = 10: no training rows
        (lambda: train_test_indices(10, 0.1, 0, np.array([0, 1, 2] * 3 + [0])), "split.test_size"),  # 1 test row
        (lambda: train_test_indices(10, 0.8, 0, np.array([0, 1, 2] * 3 + [0])), "split.test_size"),  # 2 train rows
        (lambda: train_test_indices(10, 0.2, 0, np.array(["a"] * 9 + ["b"])), "split.stratify"),
        (lambda: train_test_indices(10, 0.2, -1), "split.random_state"),
        (lambda: repeated_stratified_splits(_cohort_labels(20, 3, 0), 5, 1, 0), "split.cv_folds"),
        (lambda: repeated_stratified_splits(_cohort_labels(20, 3, 0), 1, 1, 0), "split.cv_folds"),
        (lambda: repeated_stratified_splits(_cohort_labels(20, 8, 0), 5, 0, 0), "split.cv_repeats"),
    ],
)
def test_errors_name_the_config_key(call, key):
    with pytest.raises(PanelMlpError, match=key.replace(".", r"\.")) as err:
        call()
    assert "\n" not in str(err.value)


def test_cv_folds_message_is_kept():
    with pytest.raises(PanelMlpError) as err:
        repeated_stratified_splits(_cohort_labels(20, 3, 0), 5, 1, 0)
    assert str(err.value) == (
        "config split.cv_folds=5: the smallest class has only 3 samples; lower cv_folds to at most that"
    )


def test_importing_splits_does_not_import_sklearn():
    code = "import sys, panelmlp.splits; print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))"
    env = {**os.environ, "PYTHONPATH": str(REPO / "workflow" / "scripts")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60, check=True)
    assert proc.stdout.strip() == "[]"
