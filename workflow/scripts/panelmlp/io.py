"""The clean step: raw input files -> one typed cohort table, with every line accounted for.

The input is either one table (``raw_csv``: one row per sample, expression
and clinical columns side by side, as the tutorial's file) or an expression
matrix with a separate sample sheet (``input.expression`` + ``input.samples``,
the way GEO, TCGA/GDC and most pipelines ship data), joined on the sample id.
:mod:`panelmlp.reader` reads each file, whatever its separator, compression,
encoding or format; this module joins them, applies the missing-value policy
(``clean.missing``) and writes the cohort, the quarantine table and the
accounting (``clean.json``): every data line of every input ends in the cohort
or in quarantine with a reason, and the counts prove it.
"""

from __future__ import annotations

import csv
import difflib
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from .errors import PanelMlpError
from .reader import TableRead, block_size_for, line_texts, read_table, repair_fields

__all__ = [
    "CleanResult",
    "InputSpec",
    "block_size_for",
    "clean_csv",
    "clean_inputs",
    "clean_step",
    "read_cohort_genes",
    "repair_fields",
    "resolve_gene_columns",
    "write_clean",
]

log = logging.getLogger("panelmlp")

MISSING_POLICIES = ("impute", "drop", "error")
ORIENTATIONS = ("samples_in_rows", "genes_in_rows")


def resolve_gene_columns(header: Sequence[str], genes: object, sample_id: str) -> list[str]:
    """Pick the expression columns from the header by the ``genes`` config.

    ``genes`` is ``{"before_column": NAME}`` (every column left of NAME),
    ``{"regex": PATTERN}`` (every column whose whole name matches), or a list of
    column names. The sample-id column is never an expression column.
    """
    columns = list(header)
    if isinstance(genes, dict) and "before_column" in genes:
        name = genes["before_column"]
        if name not in columns:
            raise PanelMlpError(
                f"config genes.before_column: column {name!r} is not in the CSV header; "
                f"choose one of the header's columns (e.g. {columns[min(len(columns) - 1, 0)]!r})"
            )
        chosen = columns[: columns.index(name)]
    elif isinstance(genes, dict) and "regex" in genes:
        try:
            pattern = re.compile(genes["regex"])
        except re.error as exc:
            raise PanelMlpError(
                f"config genes.regex: {genes['regex']!r} is not a valid regular expression ({exc})"
            ) from None
        chosen = [c for c in columns if pattern.fullmatch(c)]
    elif isinstance(genes, list):
        missing = [g for g in genes if g not in columns]
        if missing:
            hints = "; ".join(
                f"{g!r} (closest: {', '.join(difflib.get_close_matches(str(g), columns, n=3)) or 'none'})"
                for g in missing[:5]
            )
            more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
            raise PanelMlpError(
                f"config genes: {len(missing)} listed column(s) not in the CSV header: {hints}{more}; "
                "fix the names, or select the columns with {before_column: NAME} or {regex: PATTERN}"
            )
        chosen = list(genes)
    else:
        raise PanelMlpError("config genes: give {before_column: NAME}, {regex: PATTERN} or a list")
    chosen = [c for c in chosen if c != sample_id]
    if not chosen:
        shown = ", ".join(repr(c) for c in columns[:5]) + (" ..." if len(columns) > 5 else "")
        raise PanelMlpError(
            f"config genes: {genes!r} selects no expression column of the CSV (its header starts {shown}); "
            "name the columns that hold expression values"
        )
    return chosen


@dataclass
class InputSpec:
    """Where the input is and how to read it (config ``raw_csv`` and ``input``)."""

    raw_csv: str | None = None
    expression: str | None = None
    samples: str | None = None
    orientation: str = "samples_in_rows"
    sep: str | None = None
    encoding: str | None = None
    decimal: str = "."

    @classmethod
    def from_config(cls, raw_csv: str | None, section: Mapping | None) -> InputSpec:
        """From the config: ``input.expression`` (with ``input.samples``) wins over ``raw_csv``."""
        section = dict(section or {})
        spec = cls(
            raw_csv=raw_csv,
            expression=section.get("expression"),
            samples=section.get("samples"),
            orientation=section.get("orientation") or "samples_in_rows",
            sep=_separator(section.get("sep")),
            encoding=section.get("encoding"),
            decimal=section.get("decimal") or ".",
        )
        if spec.expression and not spec.samples:
            raise PanelMlpError(
                "config input.samples: input.expression is set but no sample sheet; set input.samples to the "
                "clinical table with the sample id and the target column"
            )
        if spec.samples and not spec.expression:
            raise PanelMlpError("config input.expression: input.samples is set but no expression matrix; set both")
        if spec.orientation not in ORIENTATIONS:
            raise PanelMlpError(f"config input.orientation: {spec.orientation!r}; use one of {list(ORIENTATIONS)}")
        if not spec.expression and not raw_csv:
            raise PanelMlpError("config raw_csv: no input; set raw_csv, or input.expression and input.samples")
        return spec


def _separator(value: object) -> str | None:
    """``input.sep`` as a character: ``tab``/``\\t``, ``comma``, ``semicolon`` or the character itself."""
    if value is None or value == "auto":
        return None
    names = {"tab": "\t", "\\t": "\t", "comma": ",", "semicolon": ";", "pipe": "|"}
    text = names.get(str(value), str(value))
    if len(text) != 1:
        raise PanelMlpError(f"config input.sep: {value!r} is not one character; use ',', 'tab', ';' or auto")
    return text


@dataclass
class CleanResult:
    """The cleaned cohort (file order), the quarantined lines and the accounting."""

    table: pa.Table
    quarantine: list[dict[str, object]]
    accounting: dict[str, object] = field(default_factory=dict)


def clean_csv(
    path: str | Path,
    genes: object,
    sample_id: str,
    missing: str = "impute",
    sep: str | None = None,
    encoding: str | None = None,
    decimal: str = ".",
) -> CleanResult:
    """Read one table (one row per sample) into the cohort; see :func:`clean_inputs`."""
    return clean_inputs(
        InputSpec(raw_csv=str(path), sep=sep, encoding=encoding, decimal=decimal), genes, sample_id, missing
    )


def clean_inputs(
    spec: InputSpec, genes: object, sample_id: str, missing: str = "impute", workdir: str | Path | None = None
) -> CleanResult:
    """Read the input (one table, or an expression matrix and a sample sheet) into the cohort.

    Expression columns come out float32 (missing and non-finite values null),
    clinical columns typed by inference, the sample id as text; rows keep the
    expression file's order. Lines that cannot be read, and rows with a missing
    or repeated id, are quarantined with their reason and raw text; samples
    found in only one of two files too. ``missing`` is the policy for missing
    expression values: ``impute`` (kept; each split's training mean fills them
    where the data are used), ``drop`` (the sample is quarantined) or ``error``.
    """
    if missing not in MISSING_POLICIES:
        raise PanelMlpError(f"config clean.missing: {missing!r}; use one of {list(MISSING_POLICIES)}")
    cohort = _two_files(spec, sample_id, workdir) if spec.expression else _one_table(spec, genes, sample_id, workdir)
    _apply_missing(cohort, missing)
    result = cohort.result()
    result.accounting["uninformative"] = uninformative_genes(result.table, cohort.genes)
    return result


# --- one table -------------------------------------------------------------------------------------------


@dataclass
class _Cohort:
    """The cohort being assembled: rows, where each row came from, and the files' reads."""

    table: pa.Table
    genes: list[str]
    sample_id: str
    origin: list[list[tuple[str, int | None]]]
    reads: dict[str, TableRead]
    quarantine: list[dict[str, object]]
    accounting: dict[str, object]
    missing: dict[str, object] = field(default_factory=dict)
    gene_lines: dict[str, int] = field(default_factory=dict)
    """Line of each gene in a genes-in-rows matrix (empty otherwise)."""

    def where(self, row: int, gene: str) -> str:
        """Where a cohort row's value of ``gene`` is written: ``FILE line L, column C``."""
        path, line = self.origin[row][0]
        if line is not None:
            return f"{path} line {line}, column {gene}"
        sid = self.table.column(self.sample_id)[row].as_py()
        return f"{path} line {self.gene_lines.get(gene, '?')} (gene {gene}), column {sid}"

    def drop(self, rows: Sequence[int], reasons: Sequence[str], follow: str) -> None:
        """Quarantine cohort rows: their first origin with ``reason``, every further origin with ``follow``."""
        for i, reason in zip(rows, reasons, strict=True):
            first = True
            sid = self.table.column(self.sample_id)[i].as_py()
            for path, line in self.origin[i]:
                text = self._text(path, line, sid)
                self.quarantine.append(
                    {"file": path, "line": line, "id": sid, "reason": reason if first else follow, "text": text}
                )
                first = False
        gone = set(rows)
        keep = [i for i in range(self.table.num_rows) if i not in gone]
        self.table = self.table.take(pa.array(keep, pa.int64()))
        self.origin = [self.origin[i] for i in keep]

    def _text(self, path: str, line: int | None, sid: object) -> str:
        read = self.reads[path]
        if line is None:
            return f"(column {sid} of {path})"
        return read.row_text(line)

    def result(self) -> CleanResult:
        """The accounting of every file, checked, and the cohort with its metadata."""
        if self.table.num_rows == 0:
            raise PanelMlpError(self._empty_message())
        files = []
        for path, read in self.reads.items():
            entry = dict(read.accounting)
            lines_in = {line for origin in self.origin for p, line in origin if p == path and line is not None}
            if read.accounting.get("rows_are") == "genes":
                lines_in = set(read.lines)
            repaired = sorted(set(entry["repaired_lines"]) & lines_in)
            quarantined = sorted(q["line"] for q in self.quarantine if q["file"] == path and q["line"] is not None)
            entry.update(
                {
                    "rows_in_cohort": len(lines_in),
                    "parsed_as_is": len(lines_in) - len(repaired),
                    "repaired": len(repaired),
                    "quarantined": len(quarantined),
                    "repaired_lines": repaired,
                    "quarantined_lines": quarantined,
                }
            )
            if entry["parsed_as_is"] + entry["repaired"] + entry["quarantined"] != entry["data_lines"]:
                raise AssertionError(f"row accounting of {path} does not add up: {entry}")
            files.append(entry)
        accounting = dict(self.accounting)
        accounting["files"] = files
        if len(files) == 1:
            accounting.update({k: v for k, v in files[0].items() if k not in ("role",)})
        accounting["rows_in_cohort"] = self.table.num_rows
        accounting["quarantined"] = len(self.quarantine)
        accounting["n_genes"] = len(self.genes)
        accounting["gene_columns"] = {"first": self.genes[0], "last": self.genes[-1]}
        accounting["missing"] = self.missing
        self.quarantine.sort(key=lambda q: (str(q["file"]), q["line"] if isinstance(q["line"], int) else 1 << 62))
        metadata = {
            b"panelmlp.genes": json.dumps(self.genes).encode(),
            b"panelmlp.sample_id": self.sample_id.encode(),
        }
        return CleanResult(self.table.replace_schema_metadata(metadata), self.quarantine, accounting)

    def _empty_message(self) -> str:
        data_lines = sum(int(r.accounting["data_lines"]) for r in self.reads.values())
        files = " and ".join(self.reads)
        if data_lines == 0:
            return f"{files}: no data lines below the header; the table is empty"
        join = self.accounting.get("join")
        if isinstance(join, Mapping) and join.get("matched") == 0 and join.get("expression_samples"):
            expr_ids = (join.get("expression_only") or [])[:3]
            sheet_ids = (join.get("samples_only") or [])[:3]
            return (
                f"{files}: no sample id is in both files (matrix: {expr_ids} ..., sample sheet: {sheet_ids} ...); "
                "check input.orientation (samples_in_rows or genes_in_rows) and sample_id"
            )
        text_column = _text_value_column(self.quarantine)
        if text_column is not None and len(self.quarantine) == data_lines:
            first = self.quarantine[0]
            return (
                f"{files}: none of the {data_lines} data lines gave a usable sample (first: {first['file']} line "
                f"{first['line']}: {first['reason']}): column {text_column} is not a number on any line, so it holds "
                "no expression values, yet config genes selects it; fix the input or the config: change genes "
                "(e.g. {before_column: NAME} naming the first clinical column, or a list) or move that column right "
                "of the expression columns"
            )
        first = self.quarantine[0] if self.quarantine else None
        where = "" if first is None or first["line"] is None else f" line {first['line']}"
        why = f" (first: {first['file']}{where}: {first['reason']})" if first else ""
        return (
            f"{files}: none of the {data_lines} data lines gave a usable sample{why}; "
            "fix the input (see the reasons in the log) and rerun"
        )


def _text_value_column(quarantine: Sequence[Mapping[str, object]]) -> str | None:
    """The one value column whose text set every quarantined line aside (a clinical column taken for a gene), or None.

    Not when the reason suggests a decimal comma: that has its own fix (input.decimal).
    """
    columns = set()
    for entry in quarantine:
        reason = str(entry.get("reason", ""))
        match = re.fullmatch(r"column (.+?): .* is not a number", reason)
        if match is None:
            return None
        columns.add(match.group(1))
    return columns.pop() if len(columns) == 1 else None


def _one_table(spec: InputSpec, genes: object, sample_id: str, workdir: str | Path | None) -> _Cohort:
    path = Path(str(spec.raw_csv))
    if not path.exists():
        raise PanelMlpError(f"{path}: raw CSV not found; set raw_csv in the config to its path")

    def value_columns(header: list[str], id_name: str) -> list[str]:
        return resolve_gene_columns(header, genes, id_name)

    read = read_table(
        path,
        sample_id,
        value_columns,
        sep=spec.sep,
        encoding=spec.encoding,
        decimal=spec.decimal,
        workdir=workdir,
        role="raw_csv",
    )
    key = str(path)
    origin = [[(key, line)] for line in read.lines]
    accounting = {"mode": "one table", "file": key}
    read.accounting["role"] = "table"
    return _Cohort(read.table, read.values, sample_id, origin, {key: read}, list(read.quarantine), accounting)


# --- two files ------------------------------------------------------------------------------------------


def _two_files(spec: InputSpec, sample_id: str, workdir: str | Path | None) -> _Cohort:
    """Read the expression matrix and the sample sheet and join them on the sample id."""
    expr_path, sheet_path = Path(str(spec.expression)), Path(str(spec.samples))
    everything_but_id = lambda header, id_name: [c for c in header if c != id_name]  # noqa: E731
    gene_lines: dict[str, int] = {}
    repeated: list[dict[str, object]] = []
    if spec.orientation == "genes_in_rows":
        expr = read_table(
            expr_path,
            lambda h: h[0],
            everything_but_id,
            spec.sep,
            spec.encoding,
            spec.decimal,
            workdir,
            "gene id",
            role="input.expression",
        )
        expr.accounting["rows_are"] = "genes"
        columns, sample_ids, first = [], [], {}
        for k, name in enumerate(expr.values):
            sid = name.strip()
            if sid in first:
                repeated.append(
                    {
                        "file": str(expr_path),
                        "line": None,
                        "id": sid,
                        "reason": f"sample column {name!r} repeats column {first[sid]!r} (the same id once spaces "
                        "are trimmed); the first is kept",
                        "text": f"(column {k + 2} of {expr_path})",
                    }
                )
                continue
            first[sid] = name
            columns.append(name)
            sample_ids.append(sid)
        genes = expr.table.column(expr.id_column).to_pylist()
        gene_lines = dict(zip(genes, expr.lines, strict=True))
        matrix = np.empty((len(sample_ids), len(genes)), dtype=np.float32)
        for j, name in enumerate(columns):
            matrix[j] = expr.table.column(name).to_numpy(zero_copy_only=False)
        gene_arrays = [pa.array(matrix[:, g], type=pa.float32(), from_pandas=True) for g in range(len(genes))]
        expr_origin: list[tuple[str, int | None]] = [(str(expr_path), None)] * len(sample_ids)
    else:
        expr = read_table(
            expr_path,
            lambda h: sample_id if sample_id in h else h[0],
            everything_but_id,
            spec.sep,
            spec.encoding,
            spec.decimal,
            workdir,
            role="input.expression",
        )
        expr.accounting["rows_are"] = "samples"
        sample_ids = expr.table.column(expr.id_column).to_pylist()
        genes = list(expr.values)
        gene_arrays = [expr.table.column(g).combine_chunks() for g in genes]
        expr_origin = [(str(expr_path), line) for line in expr.lines]
    expr.accounting.update({"role": "expression", "orientation": spec.orientation})
    if not genes:
        raise PanelMlpError(f"{expr_path}: no expression values (no gene columns or no gene rows)")
    sheet = read_table(
        sheet_path,
        sample_id,
        lambda header, id_name: [],
        spec.sep,
        spec.encoding,
        spec.decimal,
        workdir,
        role="input.samples",
    )
    sheet.accounting["role"] = "samples"
    sheet_ids = sheet.table.column(sample_id).to_pylist()
    clash = sorted((set(genes) | {sample_id}) & (set(sheet.table.column_names) - {sample_id}))
    if clash:
        raise PanelMlpError(
            f"{sheet_path} line 1: column(s) {clash[:5]} are also genes of {expr_path}; rename them in the sample sheet"
        )

    position = {s: i for i, s in enumerate(sheet_ids)}
    in_expr = set(sample_ids)
    matched = [i for i, s in enumerate(sample_ids) if s in position]
    expression_only = [sample_ids[i] for i in range(len(sample_ids)) if sample_ids[i] not in position]
    sheet_only = [s for s in sheet_ids if s not in in_expr]
    quarantine = list(expr.quarantine) + repeated + list(sheet.quarantine)
    expr_lines = dict(zip(sample_ids, expr_origin, strict=True))
    for s in expression_only:
        path, line = expr_lines[s]
        quarantine.append(
            {
                "file": path,
                "line": line,
                "id": s,
                "reason": f"sample {s!r} has expression values but is not in the sample sheet {sheet_path}",
                "text": line_texts(expr.survey, [line]).get(line, "") if expr.survey and line else f"(column {s})",
            }
        )
    sheet_lines = dict(zip(sheet_ids, sheet.lines, strict=True))
    texts = line_texts(sheet.survey, [sheet_lines[s] for s in sheet_only]) if sheet.survey else {}
    for s in sheet_only:
        line = sheet_lines[s]
        quarantine.append(
            {
                "file": str(sheet_path),
                "line": line,
                "id": s,
                "reason": f"sample {s!r} is in the sample sheet but has no expression values in {expr_path}",
                "text": texts.get(line) or sheet.row_text(line),
            }
        )
    rows = pa.array(matched, pa.int64())
    sheet_rows = pa.array([position[sample_ids[i]] for i in matched], pa.int64())
    columns: dict[str, pa.Array] = {sample_id: pa.array([sample_ids[i] for i in matched], pa.string())}
    for g, array in zip(genes, gene_arrays, strict=True):
        columns[g] = array.take(rows)
    sheet_taken = sheet.table.take(sheet_rows)
    for name in sheet_taken.column_names:
        if name != sample_id:
            columns[name] = sheet_taken.column(name)
    table = pa.table(columns)
    origin = [[expr_origin[i], (str(sheet_path), sheet_lines[sample_ids[i]])] for i in matched]
    accounting = {
        "mode": "expression matrix + sample sheet",
        "file": str(expr_path),
        "join": {
            "on": sample_id,
            "expression_samples": len(sample_ids),
            "sheet_samples": len(sheet_ids),
            "matched": len(matched),
            "expression_only": expression_only,
            "samples_only": sheet_only,
        },
    }
    reads = {str(expr_path): expr, str(sheet_path): sheet}
    return _Cohort(table, genes, sample_id, origin, reads, quarantine, accounting, gene_lines=gene_lines)


# --- missing values --------------------------------------------------------------------------------------


def _apply_missing(cohort: _Cohort, policy: str) -> None:
    """Count missing and non-finite expression values per gene and sample; apply ``clean.missing``.

    Non-finite values (inf, -inf, nan written out) are treated as missing and
    counted apart. Counts are taken before the policy acts.
    """
    table, genes = cohort.table, cohort.genes
    n = table.num_rows
    per_sample = np.zeros(n, dtype=np.int64)
    by_gene: dict[str, int] = {}
    non_finite = 0
    first_gene: dict[int, str] = {}
    for g in genes:
        column = table.column(g)
        values = column.to_numpy() if column.null_count == 0 else column.to_numpy(zero_copy_only=False)
        bad = ~np.isfinite(values)
        count = int(bad.sum())
        if not count:
            continue
        extra = count - column.null_count
        if extra:
            non_finite += extra
            table = table.set_column(table.column_names.index(g), g, pa.array(values, pa.float32(), mask=bad))
        by_gene[g] = count
        per_sample += bad
        if policy != "impute" and len(first_gene) < n:
            for i in np.flatnonzero(bad):
                first_gene.setdefault(int(i), g)
    cohort.table = table
    ids = table.column(cohort.sample_id).to_pylist()
    by_sample = {ids[i]: int(per_sample[i]) for i in np.flatnonzero(per_sample)}
    cohort.missing = {
        "policy": policy,
        "cells": int(per_sample.sum()),
        "non_finite_cells": non_finite,
        "genes_with_missing": len(by_gene),
        "samples_with_missing": len(by_sample),
        "by_gene": by_gene,
        "by_sample": by_sample,
        "samples_dropped": 0,
    }
    if not by_sample:
        return
    rows = [int(i) for i in np.flatnonzero(per_sample)]
    if policy == "error":
        i = rows[0]
        raise PanelMlpError(
            f"{cohort.where(i, first_gene[i])}: expression value missing or not finite "
            f"({cohort.missing['cells']} such cells in {len(by_gene)} genes and {len(by_sample)} samples); "
            "set clean.missing: impute (each split's training mean fills them) or drop (quarantine those samples)"
        )
    if policy == "drop":
        reasons = [
            f"column {first_gene[i]}: expression value missing or not finite "
            f"({int(per_sample[i])} in this sample; clean.missing: drop)"
            for i in rows
        ]
        cohort.drop(rows, reasons, "its expression values were quarantined (clean.missing: drop)")
        cohort.missing["samples_dropped"] = len(rows)
    elif non_finite:
        log.warning("clean: %d non-finite expression values (inf or nan) treated as missing", non_finite)


def uninformative_genes(table: pa.Table, genes: Sequence[str]) -> dict[str, list[str]]:
    """Genes that carry no information in the whole cohort: ``all_missing`` (no value) and ``constant`` (one value).

    Such a gene is constant in every split's training rows, so its input is 0
    in every model (see :mod:`panelmlp.scaling`). Missing values are nulls here.
    """
    out: dict[str, list[str]] = {"all_missing": [], "constant": []}
    for g in genes:
        column = table.column(g)
        if column.null_count == len(column):
            out["all_missing"].append(g)
        elif (bounds := pc.min_max(column))["min"].as_py() == bounds["max"].as_py():
            out["constant"].append(g)
    return out


def _some_genes(names: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown} and {len(names) - most} more"


# --- writing ---------------------------------------------------------------------------------------------


QUARANTINE_COLUMNS = ("file", "line", "id", "reason", "text")


def write_clean(
    result: CleanResult,
    cohort_path: str | Path,
    quarantine_path: str | Path,
    json_path: str | Path,
    chunk_rows: int = 1024,
) -> None:
    """Write the cohort parquet, the quarantine TSV and the accounting JSON."""
    table = result.table
    genes = set(json.loads(table.schema.metadata[b"panelmlp.genes"]))
    text_columns = [c for c in table.column_names if c not in genes]
    # Dictionary-encoding thousands of float columns costs time and saves nothing.
    pq.write_table(table, cohort_path, compression="zstd", use_dictionary=text_columns, row_group_size=chunk_rows)
    with open(quarantine_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(QUARANTINE_COLUMNS)
        for q in result.quarantine:
            writer.writerow(["" if q.get(k) is None else q[k] for k in QUARANTINE_COLUMNS])
    Path(json_path).write_text(json.dumps(result.accounting, indent=2) + "\n", encoding="utf-8")


def read_cohort_genes(path: str | Path) -> list[str]:
    """Expression column names recorded by the clean step in the parquet metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if b"panelmlp.genes" not in metadata:
        raise PanelMlpError(f"{path}: not a cohort written by the clean step; rerun the workflow")
    return json.loads(metadata[b"panelmlp.genes"])


def clean_step(
    files: Sequence[str],
    input: Mapping | None,
    genes: object,
    sample_id: str,
    missing: str,
    cohort: str,
    quarantine: str,
    accounting: str,
) -> dict:
    """Raw input -> cohort.parquet, quarantine.tsv, clean.json.

    ``files`` are the rule's inputs: ``[raw_csv]``, or ``[expression, samples]``
    when ``input.expression`` is set.
    """
    section = dict(input or {})
    if section.get("expression"):
        section["expression"], section["samples"] = files[0], files[1]
        spec = InputSpec.from_config(None, section)
    else:
        spec = InputSpec.from_config(files[0], section)
    result = clean_inputs(spec, genes, sample_id, missing, workdir=Path(cohort).parent)
    write_clean(result, cohort, quarantine, accounting)
    acc = result.accounting
    for entry in acc["files"]:
        log.info(
            "clean: %s (%s): %s",
            entry["file"],
            entry.get("format", "?"),
            json.dumps({k: entry[k] for k in ("data_lines", "parsed_as_is", "repaired", "quarantined")}),
        )
    if "join" in acc:
        join = acc["join"]
        log.info(
            "clean: joined on %s: %d matched, %d only in the expression matrix, %d only in the sample sheet",
            join["on"],
            join["matched"],
            len(join["expression_only"]),
            len(join["samples_only"]),
        )
    missing_info = acc["missing"]
    if missing_info["cells"]:
        log.warning(
            "clean: %d missing expression values (%d non-finite) in %d genes and %d samples; clean.missing: %s",
            missing_info["cells"],
            missing_info["non_finite_cells"],
            missing_info["genes_with_missing"],
            missing_info["samples_with_missing"],
            missing,
        )
    silent = acc["uninformative"]
    for key, what in (("all_missing", "with no value at all"), ("constant", "with the same value in every sample")):
        if silent[key]:
            log.warning(
                "clean: %d gene(s) %s carry no information: their input is 0 in every model, which they do not "
                "change (clean.json uninformative.%s): %s",
                len(silent[key]),
                what,
                key,
                _some_genes(silent[key]),
            )
    for q in result.quarantine:
        log.warning("quarantined %s line %s: %s", q["file"], q["line"], q["reason"])
    return acc
