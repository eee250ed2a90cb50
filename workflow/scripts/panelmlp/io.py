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
from collections import Counter
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
    """The cleaned cohort and the accounting of every line of the raw file.

    ``rows`` holds the parsed rows as read (good rows, then repaired ones) and
    ``keep`` the indices of the cohort's rows in file order; :attr:`table` puts
    them in order as zero-copy slices, never as a second copy of the matrix.
    """

    rows: pa.Table
    keep: list[int]
    quarantine: list[dict[str, object]]
    accounting: dict[str, object] = field(default_factory=dict)

    @property
    def table(self) -> pa.Table:
        """The cohort in file order."""
        return _take(self.rows, self.keep)


def _take(table: pa.Table, index: Sequence[int]) -> pa.Table:
    """Rows ``index`` of the table, without copying: consecutive runs become zero-copy slices."""
    if len(index) == table.num_rows and all(i == j for i, j in enumerate(index)):
        return table
    pieces = []
    start = 0
    for k in range(1, len(index) + 1):
        if k == len(index) or index[k] != index[k - 1] + 1:
            pieces.append(table.slice(index[start], k - start))
            start = k
    return pa.concat_tables(pieces) if pieces else table.slice(0, 0)


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


def block_size_for(path: Path, rows_per_block: int = 256) -> int:
    """pyarrow CSV block size holding about ``rows_per_block`` rows (1 MiB to 256 MiB).

    pyarrow's default 1 MiB block holds only a few rows of a 20,000-gene file,
    and every block makes a chunk per column: millions of tiny arrays, minutes
    and gigabytes. Sizing blocks by the line length keeps chunks few.
    """
    with open(path, "rb") as handle:
        handle.readline()
        line = len(handle.readline()) or 1
    return int(min(max(1 << 20, line * rows_per_block), 1 << 28))


def _scan_lines(path: Path, texts: Iterable[str]) -> tuple[int, set[int], dict[str, list[int]]]:
    """One pass over the file: its number of lines, the numbers of its blank lines,
    and the line numbers (1-based, in file order) of each of the given line texts."""
    wanted = {t.encode("utf-8") for t in texts}
    lengths = {len(w) for w in wanted}
    blanks: set[int] = set()
    found: dict[str, list[int]] = {}
    number = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            line = raw.rstrip(b"\r\n")
            if not line:
                blanks.add(number)
            elif len(line) in lengths and line in wanted:
                found.setdefault(line.decode("utf-8"), []).append(number)
    return number, blanks, found


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


def _rows_to_table(header: Sequence[str], rows: Sequence[Sequence[str]], options: pacsv.ConvertOptions) -> pa.Table:
    """Parse already split rows with the given conversion options (via an in-memory CSV)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return pacsv.read_csv(io.BytesIO(buffer.getvalue().encode("utf-8")), convert_options=options)


def _parse_repaired(
    header: Sequence[str],
    repaired: Sequence[tuple[int | None, list[str], str]],
    options: pacsv.ConvertOptions,
    text_options: pacsv.ConvertOptions,
    gene_columns: Sequence[str],
    quarantine: list[dict[str, object]],
) -> tuple[pa.Table, list[int | None]]:
    """Typed table of the repaired rows and their line numbers; rows that still fail go to quarantine."""
    try:
        return _rows_to_table(header, [r[1] for r in repaired], options), [r[0] for r in repaired]
    except pa.ArrowInvalid:
        pass
    tables, lines = [], []
    for number, fields, text in repaired:
        try:
            tables.append(_rows_to_table(header, [fields], options))
            lines.append(number)
        except pa.ArrowInvalid as exc:
            reason = _float_reason(_rows_to_table(header, [fields], text_options), gene_columns)[0]
            quarantine.append(
                {"line": number, "sample_id": None, "reason": reason or str(exc).splitlines()[0], "text": text}
            )
    empty = _rows_to_table(header, [], options)
    return pa.concat_tables([empty, *tables]), lines


def _gene_text(column: pa.ChunkedArray) -> pa.Array:
    """An expression column read as text, trimmed, with ``NA`` and empty cells missing."""
    return pc.utf8_trim_whitespace(_null_na(column.combine_chunks()))


def _float_reason(table: pa.Table, gene_columns: Sequence[str]) -> list[str | None]:
    """Per row, the first expression cell that is not a number (or None)."""
    reasons: list[str | None] = [None] * table.num_rows
    for name in gene_columns:
        column = _gene_text(table.column(name))
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
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
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

    def options(gene_type: pa.DataType) -> pacsv.ConvertOptions:
        types = dict.fromkeys(gene_columns, gene_type)
        types.update(dict.fromkeys(clinical_columns, pa.string()))
        return pacsv.ConvertOptions(
            column_types=types, null_values=NULL_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True
        )

    invalid: list[str] = []

    def on_invalid(row: pacsv.InvalidRow) -> str:
        invalid.append(row.text)
        return "skip"

    parse = pacsv.ParseOptions(invalid_row_handler=on_invalid)
    read = pacsv.ReadOptions(block_size=block_size_for(path))
    try:
        good = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=options(pa.float32()))
        gene_type = pa.float32()
    except pa.ArrowInvalid:  # a good row holds a non-number: read genes as text, check per row below
        invalid.clear()
        gene_type = pa.string()
        good = pacsv.read_csv(path, read_options=read, parse_options=parse, convert_options=options(gene_type))
    good_rows = good.num_rows

    # Repair the malformed lines and parse them with the same options as the rest.
    total_lines, blanks, located = _scan_lines(path, invalid)
    quarantine: list[dict[str, object]] = []
    repaired: list[tuple[int | None, list[str], str]] = []
    for text in invalid:
        number = located[text].pop(0) if located.get(text) else None
        outcome = repair_fields(next(csv.reader([text])), n_columns)
        if outcome.fields is None:
            quarantine.append({"line": number, "sample_id": None, "reason": outcome.reason, "text": text})
        else:
            repaired.append((number, outcome.fields, text))
    rep_table, rep_lines = _parse_repaired(
        header, repaired, options(gene_type), options(pa.string()), gene_columns, quarantine
    )

    # File line numbers of the good rows: the data lines that are not malformed.
    blank_lines = len(blanks)
    bad_numbers = {q["line"] for q in quarantine} | {n for n, _, _ in repaired}
    ordered = total_lines - 1 - blank_lines == good_rows + len(invalid) and None not in bad_numbers
    if ordered:
        good_lines = [n for n in range(2, total_lines + 1) if n not in bad_numbers and n not in blanks]
    else:
        good_lines = [None] * good_rows

    # One table; clinical columns typed once over all rows so repaired rows agree.
    table = pa.concat_tables([good, rep_table])
    typed = _parse_clinical({name: table.column(name) for name in clinical_columns})
    for name in clinical_columns:
        table = table.set_column(header.index(name), name, typed.column(name))

    # Row-level checks: numbers in gene columns, present and unique sample ids.
    text_genes = gene_type == pa.string()
    reasons: list[str | None] = _float_reason(table, gene_columns) if text_genes else [None] * table.num_rows
    ids = table.column(sample_id).to_pylist()
    lines = good_lines + rep_lines
    seen: dict[str, int | None] = {}
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
    rows_kept = len(keep)
    repaired_kept = sum(1 for i in keep if i >= good_rows)
    repaired_lines = sorted(lines[i] for i in keep if i >= good_rows and lines[i] is not None)
    if text_genes:
        table = _take(table, keep)
        keep = list(range(table.num_rows))
        for name in gene_columns:
            column = pc.cast(_gene_text(table.column(name)), pa.float32())
            table = table.set_column(header.index(name), name, column)
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
        "rows_in_cohort": rows_kept,
        "repaired_lines": repaired_lines,
        "quarantined_lines": [q["line"] for q in quarantine],
        "n_columns": n_columns,
        "n_genes": len(gene_columns),
        "gene_columns": {"first": gene_columns[0], "last": gene_columns[-1]},
        "row_order": "file order" if ordered else "good rows, then repaired rows",
    }
    if accounting["parsed_as_is"] + accounting["repaired"] + accounting["quarantined"] != accounting["data_lines"]:
        raise AssertionError(f"row accounting does not add up: {accounting}")
    metadata = {b"panelmlp.genes": json.dumps(gene_columns).encode(), b"panelmlp.sample_id": sample_id.encode()}
    return CleanResult(table.replace_schema_metadata(metadata), keep, quarantine, accounting)


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
