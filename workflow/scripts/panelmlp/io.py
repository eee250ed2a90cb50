"""Reading the raw expression CSV without losing a row.

The raw file is a comma-separated table: expression columns (floats) and clinical
columns (free text, numbers, booleans). Some exporters write free text with
unquoted commas, so a line carries more fields than the header. Every such extra
field in the real cohort starts with a space (the tail of a phrase such as
``Current reformed smoker, more than 15 years``), which is what
:func:`repair_fields` relies on. A line that cannot be repaired unambiguously goes
to the quarantine table with its file line number and the reason; every other line
ends up in the cohort. :func:`clean_csv` returns the accounting that proves it.

The bulk of the file is parsed by pyarrow's multi-threaded CSV reader, with the
expression columns read straight into float32; only the malformed lines go through
Python.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import PanelMlpError

log = logging.getLogger("panelmlp")

NULL_VALUES = ["NA", ""]
"""Cell texts read as missing."""


@dataclass
class Repair:
    """The outcome of repairing one line: its fields, or why it failed."""

    fields: list[str] | None
    reason: str | None = None
    merged: int = 0


def repair_fields(fields: Sequence[str], n_columns: int) -> Repair:
    """Join the pieces of free text that unquoted commas split apart.

    A field that begins with a space is taken as the continuation of the field
    before it, re-joined with the comma that split them. The repair is applied
    only when exactly ``len(fields) - n_columns`` fields begin with a space, so
    there is a single way to read the line; otherwise the line is not repaired
    and the reason says why.

    >>> repair_fields(["1", "smoker", " more than 15 years ", "x"], 3).fields
    ['1', 'smoker, more than 15 years ', 'x']
    """
    n_fields = len(fields)
    if n_fields == n_columns:
        return Repair(list(fields))
    if n_fields < n_columns:
        return Repair(None, f"has {n_fields} fields, expected {n_columns} (line is truncated)")
    extra = n_fields - n_columns
    continuations = [i for i in range(1, n_fields) if fields[i].startswith(" ")]
    if len(continuations) != extra:
        return Repair(
            None,
            f"has {n_fields} fields, expected {n_columns}; {len(continuations)} fields start "
            f"with a space, so the {extra} unquoted comma(s) cannot be located: quote the free text",
        )
    out: list[str] = []
    for i, value in enumerate(fields):
        if i in continuations:
            out[-1] = out[-1] + "," + value
        else:
            out.append(value)
    return Repair(out, merged=extra)


@dataclass
class CleanResult:
    """The cleaned cohort and the accounting of every line of the raw file."""

    table: pa.Table
    quarantine: list[dict[str, object]]
    accounting: dict[str, object] = field(default_factory=dict)


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
        pattern = re.compile(genes["regex"])
        chosen = [c for c in columns if pattern.fullmatch(c)]
    elif isinstance(genes, list):
        missing = [g for g in genes if g not in columns]
        if missing:
            raise PanelMlpError(f"config genes: columns {missing} are not in the CSV header")
        chosen = list(genes)
    else:
        raise PanelMlpError("config genes: give {before_column: NAME}, {regex: PATTERN} or a list")
    chosen = [c for c in chosen if c != sample_id]
    if not chosen:
        raise PanelMlpError(f"config genes {genes!r} selects no expression column of the CSV")
    return chosen


def read_header(path: Path) -> list[str]:
    """The column names of the CSV's first line."""
    with open(path, newline="", encoding="utf-8") as handle:
        try:
            return next(csv.reader(handle))
        except StopIteration:
            raise PanelMlpError(f"{path}: the file is empty; expected a CSV with a header line") from None


def _locate_lines(path: Path, texts: Iterable[str]) -> dict[str, list[int]]:
    """File line numbers (1-based) of each given line text, in file order."""
    wanted = {t.encode("utf-8") for t in texts}
    found: dict[str, list[int]] = {}
    if not wanted:
        return found
    lengths = {len(w) for w in wanted}
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if len(line) in lengths and line in wanted:
                found.setdefault(line.decode("utf-8"), []).append(number)
    return found


def _count_lines(path: Path) -> tuple[int, int]:
    """Number of lines and of blank lines in the file (a final newline ends a line)."""
    total = blank = 0
    previous_newline = True
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 24):
            total += chunk.count(b"\n")
            blank += chunk.count(b"\n\n") + chunk.count(b"\n\r\n")
            if previous_newline and chunk[:1] in (b"\n", b"\r"):
                blank += 1
            previous_newline = chunk.endswith(b"\n")
    if not previous_newline:
        total += 1
    return total, blank


def _parse_clinical(columns: dict[str, pa.Array]) -> pa.Table:
    """Type clinical columns read as text the way pyarrow's CSV reader would."""
    table = pa.table(columns)
    if table.num_columns == 0:
        return table
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return pacsv.read_csv(
        io.BytesIO(buffer.getvalue()),
        convert_options=pacsv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


def _null_na(values: pa.Array) -> pa.Array:
    """Cells written as ``NA`` or left empty become missing."""
    return pc.if_else(pc.is_in(values, value_set=pa.array(NULL_VALUES)), pa.scalar(None, pa.string()), values)


def _float_reason(table: pa.Table, gene_columns: Sequence[str]) -> list[str | None]:
    """Per row, the first expression cell that is not a number (or None)."""
    reasons: list[str | None] = [None] * table.num_rows
    for name in gene_columns:
        column = pc.utf8_trim_whitespace(_null_na(table.column(name).combine_chunks()))
        try:
            pc.cast(column, pa.float32())
            continue
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass
        for i, value in enumerate(column.to_pylist()):
            if value is None or reasons[i] is not None:
                continue
            try:
                float(value)
            except ValueError:
                reasons[i] = f"column {name}: {value!r} is not a number"
    return reasons


def clean_csv(path: str | Path, genes: object, sample_id: str) -> CleanResult:
    """Read the raw CSV into a typed table, repairing or quarantining bad lines.

    Expression columns come out float32, clinical columns typed by inference
    (integers, floats, booleans, text), ``NA`` and empty cells as missing. Rows
    keep the file's order. Rows whose sample id is missing or repeats an earlier
    one are quarantined, as are lines that cannot be repaired.
    """
    path = Path(path)
    if not path.is_file():
        raise PanelMlpError(f"{path}: raw CSV not found; set raw_csv in the config to its path")
    header = read_header(path)
    n_columns = len(header)
    duplicated = sorted({c for c in header if header.count(c) > 1})
    if duplicated:
        raise PanelMlpError(f"{path} line 1: duplicated column names {duplicated}; rename them")
    if sample_id not in header:
        raise PanelMlpError(
            f"{path} line 1: no column {sample_id!r} for sample_id; set sample_id in the config "
            "to the header's sample-id column"
        )
    gene_columns = resolve_gene_columns(header, genes, sample_id)
    gene_set = set(gene_columns)
    clinical_columns = [c for c in header if c not in gene_set]

    invalid: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text)
        return "skip"

    def read(gene_type: pa.DataType) -> pa.Table:
        types = {c: gene_type for c in gene_columns}
        types.update({c: pa.string() for c in clinical_columns})
        return pacsv.read_csv(
            path,
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_invalid),
            convert_options=pacsv.ConvertOptions(
                column_types=types,
                null_values=NULL_VALUES,
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )

    try:
        good = read(pa.float32())
        text_genes = False
    except pa.ArrowInvalid:
        invalid.clear()
        good = read(pa.string())
        text_genes = True

    # Repair the malformed lines and parse them alongside the good ones.
    located = _locate_lines(path, invalid)
    repaired_rows: list[tuple[int, list[str]]] = []
    quarantine: list[dict[str, object]] = []
    seen: dict[str, int] = {}
    for text in invalid:
        number = located.get(text, [None]).pop(0) if located.get(text) else None
        fields = next(csv.reader([text]))
        outcome = repair_fields(fields, n_columns)
        if outcome.fields is None:
            quarantine.append({"line": number, "sample_id": None, "reason": outcome.reason, "text": text})
        else:
            repaired_rows.append((number if number is not None else -1, outcome.fields))

    good_rows = good.num_rows
    rep = {name: pa.array([r[1][i] for r in repaired_rows], pa.string()) for i, name in enumerate(header)}
    gene_text = pa.table({c: rep[c] for c in gene_columns})
    repaired_reasons = _float_reason(gene_text, gene_columns)

    # File line numbers of the good rows: the data lines that are not malformed.
    total_lines, blank_lines = _count_lines(path)
    bad_numbers = {q["line"] for q in quarantine} | {n for n, _ in repaired_rows}
    data_lines = [n for n in range(2, total_lines + 1)]
    ordered = len(data_lines) - blank_lines == good_rows + len(invalid) and None not in bad_numbers
    if ordered and blank_lines:
        blanks = set()
        with open(path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip(b"\r\n"):
                    blanks.add(number)
        data_lines = [n for n in data_lines if n not in blanks]
    good_lines = [n for n in data_lines if n not in bad_numbers] if ordered else [None] * good_rows

    # Assemble one table: gene columns (text when a good row held a non-number).
    line_numbers = pa.array(good_lines + [n for n, _ in repaired_rows], pa.int64())
    repaired_flag = pa.array([False] * good_rows + [True] * len(repaired_rows))
    gene_type = pa.string() if text_genes else pa.float32()
    columns: dict[str, pa.ChunkedArray] = {}
    valid_repaired = pa.array([r is None for r in repaired_reasons], pa.bool_())
    for name in gene_columns:
        values = _null_na(rep[name])
        if not text_genes:
            kept = pc.if_else(valid_repaired, pc.utf8_trim_whitespace(values), pa.scalar(None, pa.string()))
            values = pc.cast(kept, pa.float32())
        columns[name] = pa.chunked_array([*good.column(name).chunks, values], gene_type)
    clinical_text = {
        name: pa.concat_arrays([*good.column(name).chunks, _null_na(rep[name])]) for name in clinical_columns
    }
    table = pa.table(columns)
    for name, array in zip(clinical_columns, _parse_clinical(clinical_text).columns, strict=True):
        table = table.append_column(name, array)
    table = table.select(header)

    # Row-level checks: numbers in gene columns, present and unique sample ids.
    reasons: list[str | None] = [None] * table.num_rows
    if text_genes:
        reasons = _float_reason(table, gene_columns)
    else:
        for i, r in enumerate(repaired_reasons):
            reasons[good_rows + i] = r
    ids = table.column(sample_id).to_pylist()
    lines = line_numbers.to_pylist()
    order = sorted(range(table.num_rows), key=lambda i: (lines[i] is None, lines[i] or 0, i))
    for i in order:
        if reasons[i] is not None:
            continue
        sid = ids[i]
        if sid is None or str(sid).strip() == "":
            reasons[i] = f"column {sample_id}: sample id is missing"
        elif sid in seen:
            reasons[i] = f"column {sample_id}: sample id {sid!r} repeats line {seen[sid]}"
        else:
            seen[sid] = lines[i]
    keep = [i for i in order if reasons[i] is None]
    dropped = [i for i in order if reasons[i] is not None]
    if dropped:
        raw_text = _row_texts(table, dropped, header)
        for i, text in zip(dropped, raw_text, strict=True):
            quarantine.append({"line": lines[i], "sample_id": ids[i], "reason": reasons[i], "text": text})
    cohort = table.take(pa.array(keep, pa.int64()))
    if text_genes:
        cohort = pa.table(
            {
                c: (
                    pc.cast(pc.utf8_trim_whitespace(cohort.column(c)), pa.float32())
                    if c in gene_set
                    else cohort.column(c)
                )
                for c in header
            }
        )
    repaired_kept = int(pc.sum(repaired_flag.take(pa.array(keep, pa.int64()))).as_py() or 0)
    quarantine.sort(key=lambda q: (q["line"] is None, q["line"] or 0))
    accounting = {
        "file": str(path),
        "lines_read": total_lines,
        "header_lines": 1,
        "blank_lines": blank_lines,
        "data_lines": good_rows + len(invalid),
        "parsed_as_is": good_rows - sum(1 for i in dropped if i < good_rows),
        "repaired": repaired_kept,
        "quarantined": len(quarantine),
        "rows_in_cohort": cohort.num_rows,
        "repaired_lines": sorted(lines[i] for i in keep if i >= good_rows and lines[i] is not None),
        "quarantined_lines": [q["line"] for q in quarantine],
        "n_columns": n_columns,
        "n_genes": len(gene_columns),
        "gene_columns": {"first": gene_columns[0], "last": gene_columns[-1]},
        "row_order": "file order" if ordered else "good rows, then repaired rows",
    }
    if accounting["parsed_as_is"] + accounting["repaired"] + accounting["quarantined"] != accounting["data_lines"]:
        raise AssertionError(f"row accounting does not add up: {accounting}")
    metadata = {b"panelmlp.genes": json.dumps(gene_columns).encode(), b"panelmlp.sample_id": sample_id.encode()}
    cohort = cohort.replace_schema_metadata(metadata)
    return CleanResult(cohort, quarantine, accounting)


def _row_texts(table: pa.Table, rows: list[int], header: Sequence[str]) -> list[str]:
    """Rows of the table written back as CSV lines (for the quarantine table)."""
    sub = table.take(pa.array(rows, pa.int64()))
    out = []
    for record in sub.to_pylist():
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="").writerow(["NA" if record[c] is None else record[c] for c in header])
        out.append(buffer.getvalue())
    return out


def write_clean(
    result: CleanResult, cohort_path: str | Path, quarantine_path: str | Path, json_path: str | Path
) -> None:
    """Write the cohort parquet, the quarantine TSV and the accounting JSON."""
    pq.write_table(result.table, cohort_path, compression="zstd")
    with open(quarantine_path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter="\t", lineterminator="\n")
        writer.writerow(["line", "sample_id", "reason", "text"])
        for q in result.quarantine:
            writer.writerow(["" if q[k] is None else q[k] for k in ("line", "sample_id", "reason", "text")])
    Path(json_path).write_text(json.dumps(result.accounting, indent=2) + "\n", encoding="utf-8")


def read_cohort_genes(path: str | Path) -> list[str]:
    """Expression column names recorded by :func:`clean_csv` in the parquet metadata."""
    metadata = pq.read_schema(path).metadata or {}
    if b"panelmlp.genes" not in metadata:
        raise PanelMlpError(f"{path}: not a cohort written by the clean step; rerun the workflow")
    return json.loads(metadata[b"panelmlp.genes"])


def clean_step(raw_csv: str, genes: object, sample_id: str, cohort: str, quarantine: str, accounting: str) -> dict:
    """Raw CSV -> cohort.parquet, quarantine.tsv, clean.json."""
    result = clean_csv(raw_csv, genes, sample_id)
    write_clean(result, cohort, quarantine, accounting)
    log.info(
        "clean: %s",
        json.dumps({k: result.accounting[k] for k in ("data_lines", "parsed_as_is", "repaired", "quarantined")}),
    )
    for q in result.quarantine:
        log.warning("quarantined line %s: %s", q["line"], q["reason"])
    return result.accounting
