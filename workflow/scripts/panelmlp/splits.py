"""Train/test splits: one holdout and repeated stratified k-fold.

A split table has one row per (split_id, sample_id) with the sample's role
(``train`` or ``test``), its label and its class code. Split ids are
``holdout`` and ``cv_r{repeat}_f{fold}`` (1-based).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from sklearn.model_selection import RepeatedStratifiedKFold, train_test_split

from .errors import PanelMlpError
from .labels import Labels, derive_labels

log = logging.getLogger("panelmlp")


def holdout_split(labels: pd.Series, test_size: float, random_state: int, stratify: bool) -> pd.DataFrame:
    """The tutorial's split: sklearn's ``train_test_split`` on the sample ids."""
    ids = labels.index.to_numpy()
    train, test = train_test_split(
        ids, test_size=test_size, random_state=random_state, stratify=labels.to_numpy() if stratify else None
    )
    return _frame("holdout", "holdout", train, test)


def repeated_stratified_splits(labels: pd.Series, k: int, repeats: int, seed: int) -> pd.DataFrame:
    """Repeated stratified k-fold: ``repeats`` shuffles, each cut into ``k`` folds."""
    smallest = labels.value_counts().min()
    if smallest < k:
        raise PanelMlpError(
            f"config split.cv_folds={k}: the smallest class has only {smallest} samples; lower cv_folds to at most that"
        )
    ids = labels.index.to_numpy()
    splitter = RepeatedStratifiedKFold(n_splits=k, n_repeats=repeats, random_state=seed)
    frames = []
    for i, (train, test) in enumerate(splitter.split(np.zeros(len(ids)), labels.to_numpy())):
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


def split_step(cohort: str, sample_id: str, target: Mapping, split: Mapping, out_splits: str, out_labels: str) -> dict:
    """cohort.parquet -> splits.parquet (every split's membership and labels) and labels.json."""
    column = target["column"]
    schema = pq.read_schema(cohort)
    if column not in schema.names:
        raise PanelMlpError(f"config target.column: {column!r} is not a column of {cohort}; choose a clinical column")
    frame = pq.read_table(cohort, columns=[sample_id, column]).to_pandas()
    values = frame.set_index(sample_id)[column]
    found = derive_labels(values, target["classes"], target.get("positive"))
    table = make_splits(
        found,
        test_size=split["test_size"],
        random_state=split["random_state"],
        stratify=split.get("stratify", True),
        cv_folds=split.get("cv_folds", 5),
        cv_repeats=split.get("cv_repeats", 1),
    )
    table.to_parquet(out_splits, index=False)
    summary = {
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
    Path(out_labels).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("split: %s", json.dumps(summary))
    return summary
