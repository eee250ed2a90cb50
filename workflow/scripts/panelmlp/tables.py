"""Every output table of the fit and compare steps: its columns, their types, one reader and one writer.

Each table is a :class:`Table` record: its key columns (fixed for every
target kind), the columns that depend on the target kind (the kind's metrics,
its per-epoch history or its prediction columns; see
:mod:`panelmlp.targets`), and the columns that follow them. ``Table.read``
returns the columns typed as the workflow's consumers have always seen them
and refuses a file that lacks a column or holds text where a number belongs,
with one line naming the file and the column; ``Table.write`` writes the bytes
the fit and compare steps write (TSV: tab-separated, no index, ``%.6g``
floats where the table says so; parquet through pandas and pyarrow).

The tables:

- fit, per unit folder ``results/panels/{unit}/``: :data:`PANELS`
  (panels.tsv), :data:`METRICS` (metrics.tsv), :data:`PREDICTIONS`
  (predictions.parquet), :data:`NULLS` (nulls.parquet), :data:`HISTORY`
  (history.parquet), :data:`TUNING` (tuning.tsv);
- compare, in ``results/metrics/``: :data:`SUMMARY` (summary.tsv) and
  :data:`COMPARE_PANELS` (panels.tsv, every unit's panels.tsv in one).

Column types are logical: ``text``, ``int64``, ``int32``, ``float64``,
``float32`` and ``flag`` (``True``/``False``). A TSV's text comes back as
pandas' default string dtype (``str``, empty cells as ``""``: a panel called
``NA`` stays ``NA``), its numbers through :func:`pandas.to_numeric` (an integer
column with an empty cell comes back as float64, as it always has), float
columns as float64, flags as booleans. A parquet file comes back as pandas
reads it (the writer fixed its types: predictions' and nulls' text as the
``string`` dtype, history's text dictionary-encoded, read as ``category``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import PanelMlpError
from .targets import KINDS, TargetKind, target_kind

Column = tuple[str, str]
"""A column: its name and logical type (``text``, ``int64``, ``int32``, ``float64``, ``float32`` or ``flag``)."""

TEXT, FLAG = "text", "flag"
NUMBER_TYPES = ("int64", "int32", "float64", "float32")
"""The logical types that hold numbers."""

PARQUET_TEXT = "string"
"""The pandas dtype text columns of predictions.parquet and nulls.parquet are written (and read back) as."""

HORIZON_COLUMN = re.compile(r"^td_auc_(\d+)$")
"""A survival target's time-dependent AUC at one horizon (days), after the mean ``td_auc`` in metrics.tsv."""

CLASS_COLUMN = re.compile(r"^prob_.+$")
"""A class's probability in predictions.parquet (more than two classes only)."""

PREDICTION_COLUMNS: dict[str, tuple[Column, ...]] = {name: kind.prediction_types for name, kind in KINDS.items()}
"""Per target kind, the columns of predictions.parquet after its keys, from the kind's record (classification with
more than two classes: then ``prob_<class>`` per class; ``probability`` is the positive class's, or the largest)."""


@dataclass(frozen=True)
class Table:
    """One output table: where it lies, its columns by target kind, how it is typed, read and written."""

    name: str
    """The file's name, e.g. ``metrics.tsv``."""
    where: str
    """Where the workflow writes it, e.g. ``results/panels/{unit}/metrics.tsv``."""
    keys: tuple[Column, ...]
    """The columns every target kind has, first, in order."""
    by_kind: str = ""
    """Which columns follow the keys for a target kind: ``metrics`` (:attr:`TargetKind.metrics`; survival then
    ``td_auc_<h>`` per horizon), ``history`` (:attr:`TargetKind.history`), ``predictions``
    (:data:`PREDICTION_COLUMNS`), or ``""``: none."""
    tail: tuple[Column, ...] = ()
    """Columns after the kind's, in order."""
    float_format: str | None = None
    """A TSV's float format (None: Python's shortest repr, as panels.tsv is written)."""
    required_tail: bool = True
    """Whether a file must hold the :attr:`tail` columns too (metrics.tsv and history.parquet: no; the MLP's best
    epoch and grid point, history's device and uninformative genes are not read by every consumer)."""
    value_type: str = "float64"
    """The type of the kind's metric or history columns (history.parquet: float32)."""
    optional: tuple[str, ...] = ()
    """Columns a file may lack on reading (added since older runs, and read by no step that needs them)."""

    @property
    def parquet(self) -> bool:
        """Whether the table is a parquet file (else a TSV)."""
        return self.name.endswith(".parquet")

    def kind_columns(self, kind: TargetKind | str) -> tuple[Column, ...]:
        """The columns the target kind adds after the keys (without per-horizon or per-class columns)."""
        kind = _kind(kind)
        number = self.value_type
        if self.by_kind == "metrics":
            return tuple((m, number) for m in kind.metrics)
        if self.by_kind == "history":
            return tuple((m, number) for m in kind.history)
        if self.by_kind == "predictions":
            return PREDICTION_COLUMNS[kind.name]
        return ()

    def columns(
        self, kind: TargetKind | str = "classification", horizons: Sequence[int] = (), classes: Sequence[str] = ()
    ) -> list[Column]:
        """Every column in order, for a target ``kind`` with its ``horizons`` (survival) or ``classes``.

        ``classes`` adds ``prob_<class>`` to predictions.parquet when there
        are more than two; ``horizons`` adds ``td_auc_<h>`` to metrics.tsv
        for a survival target.
        """
        kind = _kind(kind)
        extra: list[Column] = []
        if self.by_kind == "metrics" and "td_auc" in kind.metrics:
            extra = [(f"td_auc_{int(h)}", "float64") for h in horizons]
        if self.by_kind == "predictions" and "probability" in dict(PREDICTION_COLUMNS[kind.name]) and len(classes) > 2:
            extra = [(f"prob_{c}", "float64") for c in classes]
        return [*self.keys, *self.kind_columns(kind), *extra, *self.tail]

    def dtype(self, column: str, kind: TargetKind | str | None = None) -> str | None:
        """The logical type of ``column`` (for ``kind``, or any kind when None); None when the table has no such column."""
        kinds = [_kind(kind)] if kind is not None else list(KINDS.values())
        for k in kinds:
            for name, dtype in (*self.keys, *self.kind_columns(k), *self.tail):
                if name == column:
                    return dtype
        if self.by_kind == "metrics" and HORIZON_COLUMN.match(column):
            return "float64"
        if self.by_kind == "predictions" and CLASS_COLUMN.match(column):
            return "float64"
        return None

    def kind_of(self, columns: Sequence[str]) -> TargetKind | None:
        """The target kind whose columns a file holds; None when it holds none of any kind's (an empty metrics.tsv).

        Columns two kinds share (``train_loss``, ``test_loss``) do not count;
        of the kinds with any of their own columns present, the one with the
        most wins (a file lacking some of its kind's columns is still told
        apart, so :meth:`check` can name the missing one).
        """
        if not self.by_kind:
            return None
        names = set(columns)
        own = {k.name: [c for c, _ in self.kind_columns(k)] for k in KINDS.values()}
        counts: dict[str, int] = {}
        for name, cols in own.items():
            shared = {c for other, oc in own.items() if other != name for c in oc}
            counts[name] = sum(c in names for c in cols if c not in shared)
        best = max(counts, key=lambda n: counts[n])
        return KINDS[best] if counts[best] > 0 else None

    def check(
        self, columns: Sequence[str], path: str | Path, kind: TargetKind | str | None = None, empty: bool = False
    ) -> TargetKind | None:
        """The file's target kind, after checking that it holds every column the table requires of it.

        ``empty``: a file without rows needs only its keys (the fit step writes
        an empty metrics.tsv with the key columns alone). Raises a one-line
        :class:`PanelMlpError` naming the file and the first missing column.
        """
        found = self.kind_of(columns) if kind is None else _kind(kind)
        if self.by_kind and found is None and not empty:
            main = KINDS["classification"].main_metric if self.by_kind != "predictions" else "probability"
            _refuse(path, f"no column {main!r} nor any other target kind's")
        wanted = list(self.keys)
        if found is not None and not empty:
            wanted += self.kind_columns(found)
            if self.required_tail:
                wanted += self.tail
        for name, _dtype in wanted:
            if name not in columns and name not in self.optional:
                _refuse(path, f"no column {name!r}")
        return found

    def read(
        self, path: str | Path, kind: TargetKind | str | None = None, columns: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The table at ``path`` with typed columns; ``kind`` (None: from its columns) says which columns it must hold.

        ``columns`` reads only those (each must be there). A missing file, a
        missing column or text in a number column is one
        :class:`PanelMlpError` naming the file and the column.
        """
        path = Path(path)
        if not path.is_file():
            _refuse(path, "missing", "rerun snakemake so the step that writes it runs")
        if self.parquet:
            names = pq.read_schema(path).names
            if columns is not None:
                for name in columns:
                    if name not in names:
                        _refuse(path, f"no column {name!r}")
                frame = pd.read_parquet(path, columns=list(columns))
                found = _kind(kind) if kind is not None else self.kind_of(names)
            else:
                frame = pd.read_parquet(path)
                found = self.check(names, path, kind, empty=len(frame) == 0)
            for column in frame.columns if len(frame) else ():  # an empty column's type says nothing
                _check_parquet_column(frame[column], self.dtype(column, found), path)
            return frame
        frame = _read_text(path)
        if columns is not None:
            for name in columns:
                if name not in frame.columns:
                    _refuse(path, f"no column {name!r}")
            frame = frame[list(columns)]
            found = _kind(kind) if kind is not None else self.kind_of(frame.columns)
        else:
            found = self.check(list(frame.columns), path, kind, empty=len(frame) == 0)
        return type_columns(frame, path, lambda c: self.dtype(c, found))

    def read_text(self, path: str | Path) -> pd.DataFrame:
        """A TSV table with every column as text (as the predict step reads panels.tsv), its key columns checked."""
        path = Path(path)
        if not path.is_file():
            _refuse(path, "missing", "rerun snakemake so the step that writes it runs")
        frame = _read_text(path)
        for name, _dtype in self.keys:
            if name not in frame.columns:
                _refuse(path, f"no column {name!r}")
        return frame

    def write(self, frame: pd.DataFrame | pa.Table, path: str | Path) -> None:
        """Write ``frame`` as this table, byte for byte as the fit and compare steps always have.

        TSV: ``to_csv(sep="\\t", index=False, float_format=...)``. predictions
        and nulls: text columns as the ``string`` dtype, numbers as their
        type, ``to_parquet(index=False)``. history: a :class:`pyarrow.Table`
        is written as is; a DataFrame with text dictionary-encoded (the
        dictionary in order of first appearance), ``epoch``/``best_epoch``
        int32 and the metrics float32. A frame without rows needs its keys
        only; else a missing column raises :class:`PanelMlpError` (a bug of
        the writer, named with the file).
        """
        path = Path(path)
        names = frame.column_names if isinstance(frame, pa.Table) else list(frame.columns)
        kind = self.check(names, path, empty=len(frame) == 0)
        if isinstance(frame, pa.Table):
            pq.write_table(frame, path)
            return
        if self is HISTORY:
            pq.write_table(_history_arrow(frame, kind), path)
            return
        if self.parquet:
            types = {}
            for column in frame.columns:
                dtype = self.dtype(column, kind)
                if dtype == TEXT:
                    types[column] = PARQUET_TEXT
                elif dtype in NUMBER_TYPES:
                    types[column] = dtype
            frame.astype(types).to_parquet(path, index=False)
            return
        frame.to_csv(path, sep="\t", index=False, float_format=self.float_format)


def _kind(kind: TargetKind | str | None) -> TargetKind:
    """A kind record from a record or a name (None: classification)."""
    return kind if isinstance(kind, TargetKind) else target_kind(kind)


def _refuse(path: str | Path, problem: str, fix: str | None = None) -> None:
    """Raise the one-line error for a table file that is not as the workflow writes it."""
    fix = fix or f"written by an older panelmlp or another program? rerun `snakemake --forcerun {path}` to rewrite it"
    raise PanelMlpError(f"{path}: {problem}; {fix}")


def _read_text(path: Path) -> pd.DataFrame:
    """A TSV of the workflow with every cell as text, empty cells as ``""``."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def type_columns(frame: pd.DataFrame, path: str | Path, dtype_of: Callable[[str], str | None]) -> pd.DataFrame:
    """Type a TSV read as text: ``dtype_of(column)`` gives each column's logical type (None: not in the table).

    Text stays text; flags become booleans (``True``; anything but ``True``,
    ``False`` or empty is refused); numbers go through
    :func:`pandas.to_numeric` with empty cells NaN, float columns then as
    float64; a number column holding other text is refused. A column no
    table knows is numeric when every non-empty cell is a number, else text;
    ``number``: numeric, int64 or float64 as :func:`pandas.to_numeric` finds.
    """
    for column in frame.columns:
        dtype = dtype_of(column)
        text = frame[column]
        if dtype == TEXT:
            continue
        if dtype == FLAG:
            bad = ~text.isin(["True", "False", ""])
            if bad.any():
                value = text[bad].iloc[0]
                _refuse(path, f"column {column!r} holds {value!r} where True or False belongs")
            frame[column] = text == "True"
            continue
        values = pd.to_numeric(text.replace("", np.nan), errors="coerce")
        bad = values.isna() & (text != "")
        if bad.any():
            if dtype is None:
                continue  # a column no table knows, holding text: text
            value = text[bad].iloc[0]
            line = int(np.flatnonzero(bad.to_numpy())[0]) + 2
            _refuse(path, f"column {column!r} holds {value!r} where a number belongs (line {line})")
        frame[column] = values.astype("float64") if dtype in ("float64", "float32") else values
    return frame


def _check_parquet_column(series: pd.Series, dtype: str | None, path: str | Path) -> None:
    """Refuse a parquet column whose type is not the table's (text where numbers belong, or the reverse)."""
    if dtype is None:
        return
    numeric = pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype)
    if dtype in NUMBER_TYPES and not numeric:
        _refuse(path, f"column {series.name!r} holds {series.dtype} values where numbers belong")
    if dtype == TEXT and numeric:
        _refuse(path, f"column {series.name!r} holds {series.dtype} values where text belongs")


def _dictionary(values: pd.Series) -> pa.DictionaryArray:
    """Text as a dictionary array: int32 codes, the dictionary in order of first appearance (as fit.py writes it)."""
    codes, uniques = pd.factorize(values.astype(object), sort=False)
    return pa.DictionaryArray.from_arrays(
        pa.array(codes.astype(np.int32)), pa.array([str(u) for u in uniques], type=pa.string())
    )


def _history_arrow(frame: pd.DataFrame, kind: TargetKind | None) -> pa.Table:
    """history.parquet's arrow table from a DataFrame, typed as fit.py's writer types it."""
    columns = {}
    for column in frame.columns:
        dtype = HISTORY.dtype(column, kind)
        values = frame[column]
        if dtype == TEXT:
            columns[column] = _dictionary(values)
        elif dtype in NUMBER_TYPES:
            columns[column] = pa.array(values.to_numpy().astype(dtype))
        else:
            columns[column] = pa.array(values)
    return pa.table(columns)


PANELS = Table(
    name="panels.tsv",
    where="results/panels/{unit}/panels.tsv",
    keys=(
        ("unit", TEXT),
        ("collection", TEXT),
        ("panel", TEXT),
        ("directory", TEXT),
        ("description", TEXT),
        ("n_listed", "int64"),
        ("n_found", "int64"),
        ("coverage", "float64"),
        ("status", TEXT),
        ("reason", TEXT),
        ("hint", TEXT),
        ("genes", TEXT),
        ("genes_missing", TEXT),
    ),
)
"""Every panel of a unit, kept or skipped (``status``), with its coverage, the reason and the genes."""

METRICS = Table(
    name="metrics.tsv",
    where="results/panels/{unit}/metrics.tsv",
    keys=(
        ("collection", TEXT),
        ("panel", TEXT),
        ("model", TEXT),
        ("split_id", TEXT),
        ("kind", TEXT),
        ("n_train", "int64"),
        ("n_test", "int64"),
        ("n_uninformative", "int64"),
    ),
    by_kind="metrics",
    tail=(("best_epoch", "float64"), ("grid_point", TEXT)),
    float_format="%.6g",
    required_tail=False,
    optional=("n_uninformative",),
)
"""Per panel, model and split, the kind's metrics (survival: then ``td_auc_<h>``), the MLP's best epoch and grid point."""

PREDICTIONS = Table(
    name="predictions.parquet",
    where="results/panels/{unit}/predictions.parquet",
    keys=(
        ("collection", TEXT),
        ("panel", TEXT),
        ("model", TEXT),
        ("split_id", TEXT),
        ("kind", TEXT),
        ("sample_id", TEXT),
    ),
    by_kind="predictions",
)
"""Per panel, model and split, every test row's prediction (:data:`PREDICTION_COLUMNS`)."""

NULLS = Table(
    name="nulls.parquet",
    where="results/panels/{unit}/nulls.parquet",
    keys=(
        ("kind", TEXT),
        ("collection", TEXT),
        ("panel", TEXT),
        ("size", "int64"),
        ("replicate", "int64"),
        ("split_id", TEXT),
    ),
    by_kind="history",
)
"""Last-epoch history of the permutation (per panel) and random-panel (per size; panel empty) nulls."""

HISTORY = Table(
    name="history.parquet",
    where="results/panels/{unit}/history.parquet",
    keys=(
        ("collection", TEXT),
        ("panel", TEXT),
        ("split_id", TEXT),
        ("kind", TEXT),
        ("epoch", "int32"),
    ),
    by_kind="history",
    tail=(("device", TEXT), ("best_epoch", "int32"), ("uninformative", TEXT)),
    value_type="float32",
    required_tail=False,
)
"""Per panel, split and epoch, the kind's history (float32), the device, the kept epoch and the uninformative genes."""

TUNING = Table(
    name="tuning.tsv",
    where="results/panels/{unit}/tuning.tsv",
    keys=(
        ("collection", TEXT),
        ("panel", TEXT),
        ("split_id", TEXT),
        ("point", "int64"),
        ("grid_point", TEXT),
        ("score", TEXT),
        ("inner_score", "float64"),
        ("chosen", FLAG),
    ),
    float_format="%.6g",
)
"""Per panel, split and grid point, the mean inner-fold score (``score`` names it: the kind's
:attr:`TargetKind.tuning_score`, ``loss`` for a regression target) and whether it was chosen."""

SUMMARY = Table(
    name="summary.tsv",
    where="results/metrics/summary.tsv",
    keys=(
        ("collection", TEXT),
        ("panel", TEXT),
        ("n_genes", "float64"),
        ("model", TEXT),
        ("metric", TEXT),
        ("cv_mean", "float64"),
        ("cv_sd", "float64"),
        ("ci_low", "float64"),
        ("ci_high", "float64"),
        ("n_splits", "int64"),
        ("holdout", "float64"),
        ("t_p", "float64"),
        ("t_q", "float64"),
        ("perm_p", "float64"),
        ("perm_q", "float64"),
        ("n_permutations", "int64"),
        ("random_p", "float64"),
        ("random_q", "float64"),
        ("random_pct", "float64"),
        ("n_random", "int64"),
        ("random_size", "float64"),
        ("random_p_method", TEXT),
        ("chance", "float64"),
        ("call", TEXT),
    ),
    float_format="%.6g",
)
"""Per panel, model and metric (the kind's metrics, one per row in ``metric``): CV mean, interval, p- and q-values,
call (see :mod:`panelmlp.compare`)."""

COMPARE_PANELS = Table(name="panels.tsv", where="results/metrics/panels.tsv", keys=PANELS.keys)
"""Every unit's panels.tsv in one table, as the fit jobs wrote them."""

TABLES: dict[str, Table] = {
    "panels": PANELS,
    "metrics": METRICS,
    "predictions": PREDICTIONS,
    "nulls": NULLS,
    "history": HISTORY,
    "tuning": TUNING,
    "summary": SUMMARY,
    "compare_panels": COMPARE_PANELS,
}
"""Every output table of the fit and compare steps, by a short name."""


def _any_dtype(column: str) -> str | None:
    """A column's logical type in whichever TSV table has it, numbers as ``number`` (the tables never disagree)."""
    for table in TABLES.values():
        if not table.parquet:
            dtype = table.dtype(column)
            if dtype is not None:
                return "number" if dtype in NUMBER_TYPES else dtype
    return None


def read_tsv(path: str | Path) -> pd.DataFrame:
    """Any TSV of the workflow, typed by the column names of every :class:`Table`, without checking which columns it has.

    For a file whose table is not known in advance (the report reads summary,
    panels, metrics and tuning tables by one function). Unlike a table's own
    :meth:`Table.read`, integer columns are not told apart from float ones:
    both go through :func:`pandas.to_numeric` (int64 when every cell is an
    integer), as the workflow's readers always did.
    """
    path = Path(path)
    return type_columns(_read_text(path), path, _any_dtype)


__all__ = [
    "COMPARE_PANELS",
    "HISTORY",
    "METRICS",
    "NULLS",
    "PANELS",
    "PREDICTIONS",
    "PREDICTION_COLUMNS",
    "SUMMARY",
    "TABLES",
    "TUNING",
    "Column",
    "Table",
    "read_tsv",
]
