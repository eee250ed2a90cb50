"""Reading a run's outputs for the report, and the report's view of one panel.

Whole-run tables (summary.tsv, panels.tsv, labels, accounting, nulls) are read
once. The per-unit tables (history, metrics, predictions) are read one unit at
a time by :func:`unit_tables`, so the report's memory follows the largest unit,
not the run. Panels are keyed by ``(collection, panel)``: a named panel and a
gene set of a collection may share a name.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from .. import tables
from ..compare import read_table, signal_level
from ..scaling import fit_scaler, read_matrix
from ..targets import KINDS
from .score import CLASSIFICATION, Score, score_of

Key = tuple[str, str]
"""A panel's ``(collection, panel)``; collection is '' for a named panel."""

NAN_ROW = {
    "cv_mean": math.nan,
    "cv_sd": math.nan,
    "ci_low": math.nan,
    "ci_high": math.nan,
    "n_splits": 0,
    "holdout": math.nan,
    "t_p": math.nan,
    "t_q": math.nan,
    "perm_p": math.nan,
    "perm_q": math.nan,
    "n_permutations": 0,
    "random_p": math.nan,
    "random_q": math.nan,
    "random_pct": math.nan,
    "n_random": 0,
}
"""A summary row of a model or metric that is absent."""

NULL_KEYS = [name for name, _type in tables.NULLS.keys]
"""Key columns of nulls.parquet (:data:`panelmlp.tables.NULLS`), which the report reads."""

NULL_COLUMNS = [*NULL_KEYS, "roc_auc"]
"""Columns of a classification target's nulls.parquet the report reads (an empty null table gets these)."""

NULL_SCORES = tuple(kind.main_metric for kind in KINDS.values())
"""The main metric of each target kind: a nulls.parquet holds its kind's, which the report reads beside the keys."""


@dataclass
class Comparison:
    """Mean and 95% CI of a paired difference between two models over the CV splits."""

    mean: float = math.nan
    low: float = math.nan
    high: float = math.nan


@dataclass
class Facts:
    """What the verdict needs beyond summary.tsv, from the panel's per-split metrics and history."""

    accuracy_vs_majority: Comparison = field(default_factory=Comparison)
    auc_vs_majority: Comparison = field(default_factory=Comparison)
    auc_vs_logreg: Comparison = field(default_factory=Comparison)
    auc_vs_sklearn: Comparison = field(default_factory=Comparison)
    holdout_n: int = 0
    device: str = "?"


@dataclass
class Panel:
    """One trained panel as the report shows it: its summary rows, rank, names and ids."""

    collection: str
    name: str
    genes: list[str]
    n_genes: int
    rows: dict[tuple[str, str], dict]
    rank: int = 0
    label: str = ""
    anchor: str = ""
    facts: Facts = field(default_factory=Facts)
    score: Score = CLASSIFICATION

    @property
    def key(self) -> Key:
        """``(collection, panel)``."""
        return self.collection, self.name

    def row(self, model: str, metric: str) -> dict:
        """The summary row of ``model`` and ``metric``; NaN values where absent."""
        return self.rows.get((model, metric), NAN_ROW)

    def has_model(self, model: str) -> bool:
        """Whether summary.tsv has rows of ``model`` (an optional baseline) for this panel."""
        return (model, self.score.metric) in self.rows

    @property
    def auc(self) -> dict:
        """The MLP's main-metric row (ROC-AUC, or R^2 for a regression target): the row every verdict is read from."""
        return self.row("mlp", self.score.metric)

    @property
    def level(self) -> str:
        """The verdict: ``signal``, ``unconfirmed``, ``none``, ``below`` or ``unknown`` (see :func:`compare.signal_level`)."""
        return signal_level(self.auc)


@dataclass
class Run:
    """The whole-run inputs of the report."""

    accounting: dict
    labels: dict
    quarantine: pd.DataFrame
    summary: pd.DataFrame
    panel_table: pd.DataFrame
    nulls: pd.DataFrame

    @property
    def classes(self) -> list[str]:
        """Class names in code order."""
        return [str(c) for c in self.labels.get("classes", [])]

    @property
    def positive(self) -> str:
        """The positive class with two classes; '' with more (macro averages have none)."""
        if len(self.classes) != 2:
            return ""
        return str(self.labels.get("positive") or self.classes[-1])


def as_list(value: str | Sequence[str]) -> list[str]:
    """A path or a list of paths as a list."""
    return [value] if isinstance(value, str) else [str(v) for v in value]


def read_json(path: str) -> dict:
    """A JSON file of the workflow."""
    return json.loads(Path(path).read_text(encoding="utf-8"))


def read_text_table(path: str) -> pd.DataFrame:
    """A TSV with every column as text (quarantine.tsv: line, sample_id, reason, text)."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def read_nulls(paths: Sequence[str]) -> pd.DataFrame:
    """The rows of every unit's nulls.parquet the report needs (names as text)."""
    frames = []
    for path in paths:
        names = pq.read_schema(path).names
        frames.append(pd.read_parquet(path, columns=[c for c in (*NULL_KEYS, *NULL_SCORES) if c in names]))
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in NULL_COLUMNS})
    nulls = pd.concat(frames, ignore_index=True)
    for column in ("kind", "collection", "panel", "split_id"):
        nulls[column] = nulls[column].astype(object).where(nulls[column].notna(), "").astype(str)
    return nulls


def read_run(inputs: Mapping[str, str | Sequence[str]]) -> Run:
    """Read the whole-run inputs: accounting, labels, quarantine, summary, panels and every unit's nulls."""
    return Run(
        accounting=read_json(str(inputs["accounting"])),
        labels=read_json(str(inputs["labels"])),
        quarantine=read_text_table(str(inputs["quarantine"])),
        summary=read_table(str(inputs["summary"])),
        panel_table=read_table(str(inputs["panels"])),
        nulls=read_nulls(as_list(inputs.get("nulls", []))),
    )


def panels_of(summary: pd.DataFrame, panel_table: pd.DataFrame) -> list[Panel]:
    """Every panel of summary.tsv, with its genes from panels.tsv, ranked by the MLP's mean CV ROC-AUC (best first).

    Ties and NaN (ranked last) are broken by collection and panel name, so the
    order is the same on every build.
    """
    genes = {}
    kept = panel_table[panel_table["status"] == "kept"] if "status" in panel_table else panel_table
    for collection, name, text in zip(kept["collection"], kept["panel"], kept["genes"], strict=True):
        genes[(collection, name)] = str(text).split()
    records = summary.to_dict("records")
    rows: dict[Key, dict[tuple[str, str], dict]] = {}
    sizes: dict[Key, int] = {}
    for r in records:
        key = (r["collection"], r["panel"])
        rows.setdefault(key, {})[(r["model"], r["metric"])] = r
        if not pd.isna(r.get("n_genes")):
            sizes[key] = int(r["n_genes"])
    score = score_of(summary)
    panels = [
        Panel(key[0], key[1], genes.get(key, []), sizes.get(key, len(genes.get(key, []))), value, score=score)
        for key, value in rows.items()
    ]
    panels.sort(key=lambda p: (_descending(p.auc["cv_mean"]), p.collection, p.name))
    names = Counter(p.name for p in panels)
    for rank, panel in enumerate(panels, start=1):
        panel.rank = rank
        shared = names[panel.name] > 1
        panel.label = f"{panel.name} ({panel.collection or 'named panel'})" if shared else panel.name
    return panels


def _descending(value: object) -> float:
    """Sort key putting large values first and NaN last."""
    number = float(value)  # type: ignore[arg-type]
    return math.inf if math.isnan(number) else -number


class Rows:
    """Some columns of a table as numpy arrays (names as ``str`` objects), for fast row selection.

    A report of 200 panels slices each unit's tables hundreds of times; one
    pandas selection costs about a millisecond, the same on numpy arrays
    microseconds.
    """

    def __init__(self, columns: Mapping[str, np.ndarray]) -> None:
        self.columns = dict(columns)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: object) -> bool:
        return name in self.columns

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def take(self, index: slice | np.ndarray) -> Rows:
        """The rows at ``index`` (a slice, a boolean mask or positions)."""
        return Rows({k: v[index] for k, v in self.columns.items()})

    def where(self, **equal: str) -> Rows:
        """The rows whose columns equal the given values, e.g. ``where(kind="cv", model="mlp")``."""
        mask = np.ones(len(self), dtype=bool)
        for name, value in equal.items():
            mask &= self.columns[name] == value
        return self.take(mask)

    @classmethod
    def of(cls, frame: pd.DataFrame) -> Rows:
        """Every column of ``frame``; text columns as ``str`` objects ('' for missing)."""
        columns = {}
        for name in frame.columns:
            column = frame[name]
            if column.dtype.kind in "biuf":
                columns[name] = column.to_numpy()
            elif isinstance(column.dtype, pd.CategoricalDtype):
                # history.parquet's names: one str object per category, shared by its rows (a unit of 100
                # panels has a million history rows; a str per row and column would take hundreds of MB).
                # One take from the categories with '' appended: a missing value's code, -1, picks the ''.
                categories = _text(pd.Series(column.cat.categories, dtype=object))
                columns[name] = np.append(categories, "").astype(object)[column.cat.codes.to_numpy()]
            else:
                columns[name] = _text(column)
        return cls(columns)


def _text(column: pd.Series) -> np.ndarray:
    """A column as ``str`` objects, '' where missing."""
    if isinstance(column.dtype, pd.StringDtype):  # already str: one conversion, four times faster
        return column.to_numpy(dtype=object, na_value="")
    return column.astype(object).where(column.notna(), "").astype(str).to_numpy(dtype=object)


def rows_by_panel(frame: pd.DataFrame) -> dict[Key, Rows]:
    """``frame`` split into the rows of each ``(collection, panel)``, in order of first appearance."""
    if frame.empty:
        return {}
    rows = Rows.of(frame)
    collections, _ = _value_codes(frame["collection"], rows["collection"])
    names, n_names = _value_codes(frame["panel"], rows["panel"])
    codes, _ = pd.factorize(collections * max(n_names, 1) + names)  # first appearance
    order = np.argsort(codes, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(codes[order]) != 0])
    ends = np.r_[starts[1:], len(order)]
    out = {}
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        first, last = int(order[start]), int(order[end - 1])
        # a panel's rows are usually one run of the file (fit writes panel by panel): then a slice, whose
        # columns are views, instead of a copy of every column (half a million history rows per unit)
        part = rows.take(slice(first, last + 1) if last - first == end - start - 1 else order[start:end])
        out[(str(part["collection"][0]), str(part["panel"][0]))] = part
    return out


def _value_codes(column: pd.Series, values: np.ndarray) -> tuple[np.ndarray, int]:
    """Integer codes of a text column's values as :meth:`Rows.of` reads them (``values``), and how many there are.

    A categorical column (history.parquet's) is coded through its few
    categories instead of hashing each of its rows' values.
    """
    if isinstance(column.dtype, pd.CategoricalDtype):
        texts = np.append(_text(pd.Series(column.cat.categories, dtype=object)), "").astype(object)
        ids, uniques = pd.factorize(texts)  # categories that read the same ('' and a missing value) share a code
        return ids.astype(np.int64)[column.cat.codes.to_numpy()], len(uniques)
    codes, uniques = pd.factorize(values)
    return codes.astype(np.int64), len(uniques)


def first_rows(values: np.ndarray) -> np.ndarray:
    """Positions of the first row of each distinct value of ``values``, in order of appearance.

    As ``np.unique(values, return_index=True)[1]`` sorted, without sorting the
    values: a value's first row starts a run, so only the rows where the value
    changes are looked at. A panel's history has 11 runs of split ids in its
    11,000 rows; sorting its str objects four times per panel cost 5 ms.
    """
    values = np.asarray(values)
    if not len(values):
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.r_[True, values[1:] != values[:-1]])
    seen: set = set()
    first = []
    for i in starts.tolist():
        value = values[i]
        if value not in seen:
            seen.add(value)
            first.append(i)
    return np.asarray(first, dtype=np.int64)


@dataclass
class UnitTables:
    """One unit's per-split tables, split by panel."""

    history: dict[Key, Rows]
    metrics: dict[Key, Rows]
    predictions: dict[Key, Rows]
    tuning: dict[Key, Rows] = field(default_factory=dict)


def unit_tables(
    inputs: Mapping[str, str | Sequence[str]], wanted: Collection[Key] | None = None
) -> Iterator[UnitTables]:
    """Each unit's history, metrics, predictions and (when given) tuning table, one unit at a time.

    ``wanted``: only these panels' rows are needed (a large screen details a
    few of its panels). A unit's metrics are read whole; its history and
    predictions, the bulk of a unit's outputs, only for its wanted panels, and
    not at all when it has none. None reads every unit whole.
    """
    keys = ("history", "metrics", "predictions")
    lists = {k: as_list(inputs.get(k, [])) for k in keys}
    n = len(lists["metrics"])
    for k, paths in lists.items():
        if len(paths) != n:
            raise ValueError(f"report input {k!r} has {len(paths)} paths for {n} units")
    tuning = as_list(inputs.get("tuning", [])) or [None] * n
    if len(tuning) != n:
        raise ValueError(f"report input 'tuning' has {len(tuning)} paths for {n} units")
    for history, metrics, predictions, tuned in zip(
        lists["history"], lists["metrics"], lists["predictions"], tuning, strict=True
    ):
        if wanted is None:
            yield UnitTables(
                history=rows_by_panel(pd.read_parquet(history)),
                metrics=rows_by_panel(read_table(metrics)),
                predictions=rows_by_panel(pd.read_parquet(predictions)),
                tuning=rows_by_panel(read_table(tuned)) if tuned else {},
            )
            continue
        by_panel = {k: v for k, v in rows_by_panel(read_table(metrics)).items() if k in wanted}
        if not by_panel:
            yield UnitTables(history={}, metrics={}, predictions={})
            continue
        names = sorted({name for _collection, name in by_panel})
        only = [("panel", "in", names)]
        yield UnitTables(
            history=_only(rows_by_panel(pd.read_parquet(history, filters=only)), by_panel),
            metrics=by_panel,
            predictions=_only(rows_by_panel(pd.read_parquet(predictions, filters=only)), by_panel),
            tuning=_only(rows_by_panel(read_table(tuned)), by_panel) if tuned else {},
        )


def _only(tables: dict[Key, Rows], keep: Collection[Key]) -> dict[Key, Rows]:
    """The tables of the panels in ``keep`` (a panel name filter can also match a namesake of another collection)."""
    return {k: v for k, v in tables.items() if k in keep}


PAIR_MAX_SAMPLES = 500
"""Pair plots draw at most this many samples (evenly spaced), so a large cohort does not weigh down every panel."""


@dataclass
class PairData:
    """Standardised values of the genes drawn in pair plots, on the holdout split's samples."""

    values: np.ndarray
    """Samples (rows) x genes, standardised with the holdout split's training rows."""
    columns: dict[str, int]
    """Column of each gene in ``values``."""
    labels: np.ndarray
    """Class of each row."""
    total: int
    """Samples of the holdout split; more than the rows when they were thinned to :data:`PAIR_MAX_SAMPLES`."""

    def matrix(self, genes: Sequence[str]) -> np.ndarray:
        """The values of ``genes``, in that order."""
        return self.values[:, [self.columns[g] for g in genes]]


def pair_genes(panels: Sequence[Panel], max_genes: int) -> dict[Key, list[str]]:
    """The genes of each panel's pair plot: its first ``max_genes`` genes, in panel order."""
    return {p.key: p.genes[: max(2, max_genes)] for p in panels}


def pair_data(cohort: str, splits: str, genes: Sequence[str]) -> PairData:
    """The holdout split's samples (training and test) with ``genes`` standardised by its training rows.

    Scaled values are not stored by the workflow; they are recomputed here as
    the fit step does, from the raw cohort and the split's training rows, and
    only for the genes the pair plots draw (one read of the cohort for all).
    """
    table = pd.read_parquet(splits, columns=["split_id", "sample_id", "role", "label"])
    holdout = table[table["split_id"] == "holdout"]
    if holdout.empty and len(table):
        holdout = table[table["split_id"] == table["split_id"].iloc[0]]
    genes = list(dict.fromkeys(genes))
    labels = holdout["label"].astype(str).to_numpy(dtype=object)
    if holdout.empty or not genes:
        return PairData(np.zeros((len(holdout), 0)), {}, labels, len(holdout))
    sample_id = pq.read_schema(cohort).metadata[b"panelmlp.sample_id"].decode()
    raw = read_matrix(cohort, sample_id, genes, holdout["sample_id"].astype(str).tolist())
    values = fit_scaler(raw[(holdout["role"] == "train").to_numpy()]).transform(raw)
    keep = np.unique(np.linspace(0, len(values) - 1, min(len(values), PAIR_MAX_SAMPLES)).round().astype(int))
    return PairData(values[keep], {g: j for j, g in enumerate(genes)}, labels[keep], len(values))
