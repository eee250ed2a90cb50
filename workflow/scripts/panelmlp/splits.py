"""Train/test splits: one holdout and repeated stratified k-fold.

A split table has one row per (split_id, sample_id) with the sample's role
(``train`` or ``test``), its label and its class code. Split ids are
``holdout`` and ``cv_r{repeat}_f{fold}`` (1-based).

The splitters are plain-numpy ports of scikit-learn's (see
:data:`SKLEARN_VERSION`): importing ``sklearn.model_selection`` costs about
two seconds per process, most of the ``split`` job. Each port draws from a
legacy ``np.random.RandomState`` in exactly the order scikit-learn does, so
the index arrays, and their order, are identical to scikit-learn's for the
same inputs and seed; ``tests/test_split_port.py`` checks that against
scikit-learn itself.
"""

from __future__ import annotations

import difflib
import json
import logging
import numbers
from collections.abc import Iterator, Mapping
from math import ceil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .defaults import with_defaults
from .errors import PanelMlpError
from .labels import Labels, derive_labels
from .targets.survival import default_horizons, survival_labels, time_columns

log = logging.getLogger("panelmlp")

SKLEARN_VERSION = "1.9.1"
"""The scikit-learn release whose splitting algorithms the ports below reproduce."""

_DEFAULT_TEST_SIZE = 0.25
"""``train_test_split``'s test fraction when none is given."""


def check_random_state(seed: int | np.random.RandomState | None) -> np.random.RandomState:
    """scikit-learn's ``utils.validation.check_random_state`` (1.9.1).

    ``None`` gives numpy's global ``RandomState`` singleton, an integer a new
    ``RandomState(seed)``, and a ``RandomState`` is returned as is, so callers
    that pass one on share (and advance) a single stream.
    """
    if seed is None or seed is np.random:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral):
        try:
            return np.random.RandomState(seed)
        except ValueError as err:
            raise PanelMlpError(
                f"config split.random_state={seed}: not a valid seed ({err}); use an integer from 0 to 2**32 - 1"
            ) from None
    if isinstance(seed, np.random.RandomState):
        return seed
    raise PanelMlpError(f"config split.random_state={seed!r}: not an integer; use an integer from 0 to 2**32 - 1")


def _approximate_mode(class_counts: np.ndarray, n_draws: int, rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``utils.extmath._approximate_mode`` (1.9.1): per-class draws summing to ``n_draws``.

    Each class gets ``floor(count / total * n_draws)`` (computed in that
    operation order), then the draws still missing go to the classes with the
    largest fractional remainders, largest first: each group of equal
    remainders visited gets ``rng.choice(group, size=min(len(group), missing),
    replace=False)``. That call is made even when the whole group receives
    one, and (legacy ``choice`` being ``permutation(len(group))[:size]``) it
    advances ``rng`` whenever the group has two or more members.
    """
    continuous = class_counts / class_counts.sum() * n_draws
    floored = np.floor(continuous)
    need_to_add = int(n_draws - floored.sum())
    if need_to_add > 0:
        remainder = continuous - floored
        values = np.sort(np.unique(remainder))[::-1]
        for value in values:
            (inds,) = np.where(remainder == value)
            add_now = min(len(inds), need_to_add)
            inds = rng.choice(inds, size=add_now, replace=False)
            floored[inds] += 1
            need_to_add -= add_now
            if need_to_add == 0:
                break
    return floored.astype(int)


def _shuffle_split_sizes(n_samples: int, test_size: float | int | None) -> tuple[int, int]:
    """``(n_train, n_test)`` as scikit-learn's ``model_selection._validate_shuffle_split`` (1.9.1) gives them.

    Only ``test_size`` is supported (``train_size`` is the rest). A float must
    lie in (0, 1) and gives ``n_test = ceil(test_size * n_samples)``; an
    integer must lie in [1, n_samples - 1] and is ``n_test`` itself; ``None``
    means 0.25. Where scikit-learn raises ``ValueError`` (or its parameter
    validation does), this raises :class:`PanelMlpError` naming ``split.test_size``.
    """
    if test_size is None:
        test_size = _DEFAULT_TEST_SIZE
    kind = np.asarray(test_size).dtype.kind
    if kind == "f" and not 0 < test_size < 1:
        raise PanelMlpError(
            f"config split.test_size={test_size}: a fraction must lie strictly between 0 and 1; use e.g. 0.2"
        )
    if kind == "i" and not 0 < test_size < n_samples:
        raise PanelMlpError(
            f"config split.test_size={test_size}: a count of test samples must be from 1 to {n_samples - 1} "
            f"({n_samples} labelled samples); lower it or give a fraction such as 0.2"
        )
    if kind not in "if":
        raise PanelMlpError(f"config split.test_size={test_size!r}: not a number; give a fraction such as 0.2")
    n_test = ceil(test_size * n_samples) if kind == "f" else int(test_size)
    n_train = n_samples - n_test
    if n_train == 0:
        raise PanelMlpError(
            f"config split.test_size={test_size}: puts all {n_samples} labelled samples in the test set; lower it"
        )
    return n_train, n_test


def train_test_indices(
    n_samples: int,
    test_size: float | int | None,
    random_state: int | np.random.RandomState | None,
    stratify: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(train, test)`` positions exactly as scikit-learn 1.9.1's ``train_test_split`` (shuffle=True) picks them.

    ``train_test_split(a, ...)`` returns ``a[train], a[test]``. Sizes follow
    :func:`_shuffle_split_sizes`. Without ``stratify`` this is ``ShuffleSplit``:
    one ``rng.permutation(n_samples)``, whose first ``n_test`` entries are the
    test set and the next ``n_train`` the training set. With ``stratify`` it is
    ``StratifiedShuffleSplit``'s first split, see :func:`_stratified_shuffle_split`.
    """
    n_train, n_test = _shuffle_split_sizes(n_samples, test_size)
    rng = check_random_state(random_state)
    if stratify is None:
        permutation = rng.permutation(n_samples)
        return permutation[n_test : n_test + n_train], permutation[:n_test]
    y = np.asarray(stratify)
    if y.shape != (n_samples,):
        raise ValueError(f"stratify has shape {y.shape}; expected ({n_samples},)")
    return _stratified_shuffle_split(y, n_train, n_test, rng, test_size)


def _stratified_shuffle_split(
    y: np.ndarray, n_train: int, n_test: int, rng: np.random.RandomState, test_size: float | int | None
) -> tuple[np.ndarray, np.ndarray]:
    """One split of scikit-learn 1.9.1's ``StratifiedShuffleSplit._iter_indices``.

    Classes are taken in sorted (``np.unique``) order. Per-class training
    counts are :func:`_approximate_mode` of the class counts for ``n_train``,
    then per-class test counts the same for ``n_test`` over what is left. Each
    class's positions (ascending) are permuted with ``rng.permutation(count)``;
    the first counts go to train, the next to test. Finally the concatenated
    train list and then the test list are each permuted once more, so both come
    back in random order. ``test_size`` is only for error messages.
    """
    classes, y_indices, class_counts = np.unique(y, return_inverse=True, return_counts=True)
    n_classes = classes.shape[0]
    if np.min(class_counts) < 2:
        single = classes[class_counts < 2].tolist()
        which = f"class {single[0]!r} has" if len(single) == 1 else f"classes {', '.join(map(repr, single))} have"
        raise PanelMlpError(
            f"config split.stratify: {which} a single labelled sample, too few to stratify; "
            "set split.stratify: false or merge such a class into another in target.classes"
        )
    if n_train < n_classes:
        raise PanelMlpError(
            f"config split.test_size={test_size}: leaves {n_train} training samples for {n_classes} classes; lower it"
        )
    if n_test < n_classes:
        raise PanelMlpError(
            f"config split.test_size={test_size}: gives {n_test} test samples for {n_classes} classes; "
            f"raise it so the test set holds at least {n_classes}, or set split.stratify: false"
        )
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(class_counts)[:-1])
    n_i = _approximate_mode(class_counts, n_train, rng)
    t_i = _approximate_mode(class_counts - n_i, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for i in range(n_classes):
        permuted = class_indices[i].take(rng.permutation(class_counts[i]), mode="clip")
        train.append(permuted[: n_i[i]])
        test.append(permuted[n_i[i] : n_i[i] + t_i[i]])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def _stratified_kfold_test_folds(y: np.ndarray, n_splits: int, rng: np.random.RandomState) -> np.ndarray:
    """Each sample's test fold, as scikit-learn 1.9.1's ``StratifiedKFold(shuffle=True)._make_test_folds``.

    Classes are numbered by order of first appearance in ``y`` (not sorted).
    How many of each class go to each fold is a round robin over the sorted
    class codes: fold ``i`` gets the counts in ``sorted_codes[i::n_splits]``.
    Then, class by class in that numbering, the block of fold numbers
    ``arange(n_splits).repeat(counts)`` is shuffled in place with
    ``rng.shuffle`` and handed to that class's samples in position order.
    """
    _, y_idx, y_inv = np.unique(y, return_index=True, return_inverse=True)
    _, class_perm = np.unique(y_idx, return_inverse=True)
    y_encoded = class_perm[y_inv]
    n_classes = len(y_idx)
    y_order = np.sort(y_encoded)
    allocation = np.asarray([np.bincount(y_order[i::n_splits], minlength=n_classes) for i in range(n_splits)])
    test_folds = np.empty(len(y), dtype="i")
    for k in range(n_classes):
        folds_for_class = np.arange(n_splits).repeat(allocation[:, k])
        rng.shuffle(folds_for_class)
        test_folds[y_encoded == k] = folds_for_class
    return test_folds


def repeated_stratified_kfold(
    y: np.ndarray, n_splits: int, n_repeats: int, random_state: int | np.random.RandomState | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` positions exactly as scikit-learn 1.9.1's ``RepeatedStratifiedKFold.split`` yields them.

    One ``RandomState`` is made from ``random_state`` and shared by every
    repeat (scikit-learn passes the instance itself to each repeat's
    ``StratifiedKFold(shuffle=True)``), so repeat ``r`` continues the stream
    where repeat ``r - 1`` stopped. Within a repeat the folds come in order
    0..n_splits-1, and both index arrays are ascending. Callers must check that
    every class has at least ``n_splits`` members (scikit-learn only warns when
    some, but not all, have fewer).
    """
    y = np.asarray(y)
    rng = check_random_state(random_state)
    indices = np.arange(len(y))
    for _ in range(n_repeats):
        test_folds = _stratified_kfold_test_folds(y, n_splits, rng)
        for i in range(n_splits):
            mask = test_folds == i
            yield indices[~mask], indices[mask]


def repeated_kfold(
    n_samples: int, n_splits: int, n_repeats: int, random_state: int | np.random.RandomState | None
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(train, test)`` positions exactly as scikit-learn 1.9.1's ``RepeatedKFold.split`` yields them.

    One ``RandomState`` is shared by every repeat (scikit-learn passes the
    instance to each repeat's ``KFold(shuffle=True)``). A repeat shuffles
    ``arange(n)`` in place and cuts it into ``n_splits`` consecutive folds, the
    first ``n % n_splits`` one sample larger; both index arrays come back
    ascending.
    """
    rng = check_random_state(random_state)
    indices = np.arange(n_samples)
    sizes = np.full(n_splits, n_samples // n_splits, dtype=int)
    sizes[: n_samples % n_splits] += 1
    for _ in range(n_repeats):
        order = np.arange(n_samples)
        rng.shuffle(order)
        start = 0
        for size in sizes:
            mask = np.zeros(n_samples, dtype=bool)
            mask[order[start : start + size]] = True
            start += size
            yield indices[~mask], indices[mask]


def holdout_split(labels: pd.Series, test_size: float, random_state: int, stratify: bool) -> pd.DataFrame:
    """The tutorial's split: scikit-learn's ``train_test_split`` on the sample ids, via :func:`train_test_indices`."""
    ids = labels.index.to_numpy()
    train, test = train_test_indices(len(ids), test_size, random_state, labels.to_numpy() if stratify else None)
    return _frame("holdout", "holdout", ids[train], ids[test])


def repeated_stratified_splits(labels: pd.Series, k: int, repeats: int, seed: int) -> pd.DataFrame:
    """Repeated stratified k-fold: ``repeats`` shuffles, each cut into ``k`` folds (:func:`repeated_stratified_kfold`)."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 2:
        raise PanelMlpError(f"config split.cv_folds={k!r}: must be a whole number of at least 2; use e.g. 5")
    if isinstance(repeats, bool) or not isinstance(repeats, numbers.Integral) or repeats < 1:
        raise PanelMlpError(
            f"config split.cv_repeats={repeats!r}: must be a whole number of at least 1 here; use e.g. 2"
        )
    smallest = labels.value_counts().min()
    if smallest < k:
        raise PanelMlpError(
            f"config split.cv_folds={k}: the smallest class has only {smallest} samples; lower cv_folds to at most that"
        )
    ids = labels.index.to_numpy()
    frames = []
    for i, (train, test) in enumerate(repeated_stratified_kfold(labels.to_numpy(), k, repeats, seed)):
        split_id = f"cv_r{i // k + 1}_f{i % k + 1}"
        frames.append(_frame(split_id, "cv", ids[train], ids[test]))
    return pd.concat(frames, ignore_index=True)


def _frame(split_id: str, kind: str, train: np.ndarray, test: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "split_id": split_id,
            "kind": kind,
            "sample_id": np.concatenate([train, test]),
            "role": ["train"] * len(train) + ["test"] * len(test),
        }
    )


def make_splits(
    labels: Labels, test_size: float, random_state: int, stratify: bool, cv_folds: int, cv_repeats: int
) -> pd.DataFrame:
    """Holdout and cross-validation splits of the labelled samples, with labels.

    Rows are ordered by split (holdout first), then train before test, each in
    the order the splitter gave.
    """
    if len(labels.labels) < 4:
        raise PanelMlpError(f"only {len(labels.labels)} samples have a label; check config target")
    parts = [holdout_split(labels.labels, test_size, random_state, stratify)]
    if cv_folds > 1 and cv_repeats > 0:
        parts.append(repeated_stratified_splits(labels.labels, cv_folds, cv_repeats, random_state))
    table = pd.concat(parts, ignore_index=True)
    table["label"] = table["sample_id"].map(labels.labels)
    table["y"] = table["sample_id"].map(labels.codes()).astype("int64")
    return table


def regression_values(values: pd.Series) -> tuple[pd.Series, int, int, dict[str, int]]:
    """The finite numbers of a target column, the count of missing values, and of values that are not numbers.

    Returns ``(numbers indexed by sample id, missing, unusable, unusable values with counts)``;
    text, ``inf`` and ``nan`` written out count as unusable, never silently as missing.
    """
    missing = values.isna()
    numeric = pd.to_numeric(values.where(~missing), errors="coerce").astype("float64")
    finite = np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan))
    unusable = ~missing & ~finite
    counts = values[unusable].astype(str).value_counts()
    return numeric[finite], int(missing.sum()), int(unusable.sum()), {str(k): int(v) for k, v in counts.items()}


def make_regression_splits(
    values: pd.Series, test_size: float, random_state: int, cv_folds: int, cv_repeats: int
) -> pd.DataFrame:
    """Holdout and repeated k-fold splits (not stratified) of samples with a numeric target; ``y`` is the value."""
    if len(values) < 4:
        raise PanelMlpError(
            f"config target.column: only {len(values)} samples have a numeric value in column {values.name or 'target'!r} "
            "(a regression target needs numbers); choose a numeric column, or set target.kind: classification "
            "for a column of text classes"
        )
    ids = values.index.to_numpy()
    train, test = train_test_indices(len(ids), test_size, random_state, None)
    parts = [_frame("holdout", "holdout", ids[train], ids[test])]
    if cv_folds > 1 and cv_repeats > 0:
        if cv_folds > len(ids):
            raise PanelMlpError(f"config split.cv_folds={cv_folds}: only {len(ids)} samples have a numeric target")
        for i, (tr, te) in enumerate(repeated_kfold(len(ids), cv_folds, cv_repeats, random_state)):
            parts.append(_frame(f"cv_r{i // cv_folds + 1}_f{i % cv_folds + 1}", "cv", ids[tr], ids[te]))
    table = pd.concat(parts, ignore_index=True)
    table["y"] = table["sample_id"].map(values).astype("float64")
    table["label"] = table["y"].map(lambda v: f"{v:g}")
    return table[["split_id", "kind", "sample_id", "role", "label", "y"]]


def _regression_step(
    values: pd.Series, column: str, split: Mapping, out_splits: str, out_labels: str, loss: str = "mse"
) -> dict:
    numbers, missing, unusable, unusable_values = regression_values(values)
    table = make_regression_splits(
        numbers,
        test_size=split["test_size"],
        random_state=split["random_state"],
        cv_folds=split["cv_folds"],
        cv_repeats=split["cv_repeats"],
    )
    table.to_parquet(out_splits, index=False)
    summary = {
        "kind": "regression",
        "loss": loss,
        "target": column,
        "samples": len(values),
        "labelled": len(numbers),
        "missing_label": missing,
        "unmatched_label": unusable,
        "unmatched_values": unusable_values,
        "classes": [],
        "positive": None,
        "class_counts": {},
        "values": {
            "mean": float(numbers.mean()),
            "sd": float(numbers.std(ddof=1)) if len(numbers) > 1 else 0.0,
            "min": float(numbers.min()),
            "median": float(numbers.median()),
            "max": float(numbers.max()),
        },
        "splits": {k: int(v) for k, v in table.groupby("kind")["split_id"].nunique().items()},
    }
    if summary["values"]["sd"] == 0:
        raise PanelMlpError(f"config target.column: {column!r} has the same value for every sample; nothing to predict")
    return _write_summary(summary, out_labels)


def _stratified_splits(labels: Labels, split: Mapping) -> pd.DataFrame:
    """:func:`make_splits` with the config's split section (classes, or a survival target's event status)."""
    return make_splits(
        labels,
        test_size=split["test_size"],
        random_state=split["random_state"],
        stratify=split["stratify"],
        cv_folds=split["cv_folds"],
        cv_repeats=split["cv_repeats"],
    )


def _write_summary(summary: dict, out_labels: str) -> dict:
    """labels.json, and the same summary in the log; returns it."""
    Path(out_labels).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("split: %s", json.dumps(summary))
    return summary


def _check_column(column: str, key: str, names: list[str], cohort: str) -> None:
    if column not in names:
        close = difflib.get_close_matches(column, names, n=3)
        hint = f" (closest: {', '.join(close)})" if close else ""
        raise PanelMlpError(f"config {key}: {column!r} is not a column of {cohort}{hint}; choose a clinical column")


def _survival_step(
    cohort: str, sample_id: str, target: Mapping, split: Mapping, out_splits: str, out_labels: str
) -> dict:
    """Survival: time and event per sample, splits stratified by event, labels.json with every sample accounted for."""
    names = pq.read_schema(cohort).names
    event_column = target["event"]["column"]
    _check_column(event_column, "target.event.column", names, cohort)
    time = target["time"]
    keys = ["target.time"] if isinstance(time, str) else ["target.time.event", "target.time.censored"]
    for column, key in zip(time_columns(target), keys, strict=True):
        _check_column(column, key, names, cohort)
    columns = list(dict.fromkeys([sample_id, event_column, *time_columns(target)]))
    frame = pq.read_table(cohort, columns=columns).to_pandas().set_index(sample_id)
    found = survival_labels(frame, target)
    counts = found.event.value_counts()
    n_event, n_censored = int(counts.get(1, 0)), int(counts.get(0, 0))
    if n_event < 2:
        raise PanelMlpError(
            f"config target.event: {n_event} sample(s) have the event ({found.event_name!r} in column {event_column!r}) "
            f"with a usable time; a survival target needs events; check target.event.event and target.time"
        )
    classes = found.class_labels()
    stratified = Labels(
        labels=classes,
        classes=[found.censored_name, found.event_name],
        positive=found.event_name,
        missing=found.missing_label,
        unmatched=found.unmatched_label,
        unmatched_values=found.unmatched_values,
    )
    table = _stratified_splits(stratified, split)
    table["y"] = table["sample_id"].map(found.time).astype("float64")
    table["event"] = table["sample_id"].map(found.event).astype("int64")
    table.to_parquet(out_splits, index=False)
    horizons = target.get("horizons") or default_horizons(found.time.to_numpy(), found.event.to_numpy())
    summary = {
        "kind": "survival",
        "target": event_column,
        "event": dict(target["event"]),
        "time": {"column": time} if isinstance(time, str) else dict(time),
        "samples": len(frame),
        "labelled": len(found.time),
        "missing_label": found.missing_label,
        "unmatched_label": found.unmatched_label,
        "unmatched_values": found.unmatched_values,
        "missing_time": found.missing_time,
        "negative_time": found.negative_time,
        "bad_time_values": found.bad_time_values,
        "negative_unused_time": found.negative_unused,
        "classes": stratified.classes,
        "positive": found.event_name,
        "class_counts": {found.censored_name: n_censored, found.event_name: n_event},
        "horizons": [float(h) for h in horizons],
        "values": {
            "events": n_event,
            "censored": n_censored,
            "median_time": float(found.time.median()),
            "max_time": float(found.time.max()),
        },
        "splits": {k: int(v) for k, v in table.groupby("kind")["split_id"].nunique().items()},
    }
    for sample, bad in found.negative_unused.items():
        log.warning(
            "split: sample %s: %s is %g (negative) but unused (its time comes from the other column); check the record",
            sample,
            bad["column"],
            bad["value"],
        )
    return _write_summary(summary, out_labels)


def split_step(cohort: str, sample_id: str, target: Mapping, split: Mapping, out_splits: str, out_labels: str) -> dict:
    """cohort.parquet -> splits.parquet (every split's membership and labels) and labels.json."""
    split = with_defaults("split", split)
    if target.get("kind") == "survival":
        return _survival_step(cohort, sample_id, target, split, out_splits, out_labels)
    column = target["column"]
    _check_column(column, "target.column", pq.read_schema(cohort).names, cohort)
    frame = pq.read_table(cohort, columns=[sample_id, column]).to_pandas()
    values = frame.set_index(sample_id)[column]
    if target.get("kind", "classification") == "regression":
        return _regression_step(values, column, split, out_splits, out_labels, target.get("loss", "mse"))
    if not target.get("classes"):
        raise PanelMlpError("config target.classes: a classification target needs classes (label: regex)")
    found = derive_labels(values, target["classes"], target.get("positive"))
    table = _stratified_splits(found, split)
    table.to_parquet(out_splits, index=False)
    summary = {
        "kind": "classification",
        "target": column,
        "samples": len(values),
        "labelled": len(found.labels),
        "missing_label": found.missing,
        "unmatched_label": found.unmatched,
        "unmatched_values": found.unmatched_values,
        "classes": found.classes,
        "positive": found.positive,
        "class_counts": found.counts(),
        "splits": {k: int(v) for k, v in table.groupby("kind")["split_id"].nunique().items()},
    }
    return _write_summary(summary, out_labels)
