"""Reading one input table, of whatever common format, without losing a line.

Formats, detected without configuration where that is unambiguous:

- delimited text separated by comma, tab or semicolon (:func:`detect_separator`,
  or ``input.sep``), optionally compressed with gzip, bzip2, xz or zstd
  (recognised by the file's first bytes, not its name);
- UTF-8 with or without a byte-order mark; other encodings with
  ``input.encoding`` (a byte that is not UTF-8 stops the run naming its line
  and this setting);
- parquet (recognised by its first bytes).

Text is read in two passes. :func:`survey` walks every physical line once: it
checks the encoding, finds blank lines, and sets aside the lines pyarrow's
fast reader cannot take as they are: lines whose number of fields does not
match the header, and lines whose double quotes are not standard CSV quoting
(RFC 4180: a quoted field is enclosed in quotes from separator to separator,
a quote inside it doubled). Everything else, nearly always the whole file, is
parsed by pyarrow, with quoting on only when some of those lines hold quoted
fields (R's ``write.csv`` quotes every text field; spreadsheets quote text
holding a comma), and never with values spanning lines, so every physical
line is one row and its file line number is known exactly. The lines set
aside are parsed here in Python: a line that is valid CSV on its own is read
with its quoting; otherwise its fields are split at every separator and
:func:`repair_fields` re-joins free text that unquoted commas cut apart. A
line that cannot be read unambiguously is quarantined with its reason and its
raw text. :class:`TableRead` carries the accounting that proves every data
line ended in the table or in quarantine.

Spreadsheet files (xlsx, ods, xls) and zip archives are recognised by their
first bytes and stop the run with one line saying how to export CSV. Trailing
columns with no name in the header and no value on any line (a spreadsheet
export's ``,,,``) are dropped and counted (``empty_columns_dropped``); header
names that differ only by spaces are kept as distinct columns and reported
(``similar_column_names``). A data line with more fields than the header says
how many; when every data line has the same surplus, the header is short of
names (or every line ends with a separator) and the run stops with one line.
"""

from __future__ import annotations

import bz2
import codecs
import csv
import difflib
import gzip
import io
import logging
import lzma
import os
import re
import sys
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from .errors import PanelMlpError

log = logging.getLogger("panelmlp")

NULL_VALUES = ["NA", ""]
"""Cell texts read as missing."""

SEPARATORS = {",": "comma", "\t": "tab", ";": "semicolon"}
"""Separators recognised without configuration, with their names for messages."""

MAGIC = {
    b"\x1f\x8b": "gzip",
    b"BZh": "bz2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}
"""First bytes of compressed files, by compression."""

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a 20,000-gene header is one field to the wrong separator

SNIFF_LINES = 20
"""Data lines looked at, beside the header, to recognise the separator."""


@dataclass
class Repair:
    """The outcome of reading one line's fields: the fields, or why it failed."""

    fields: list[str] | None
    reason: str | None = None
    merged: int = 0


def repair_fields(fields: Sequence[str], n_columns: int, sep: str = ",") -> Repair:
    """Join the pieces of free text that unquoted separators split apart.

    A field that begins with a space is taken as the continuation of the field
    before it, re-joined with the separator that split them (free text such as
    ``Current reformed smoker, more than 15 years``). The repair is applied only
    when exactly ``len(fields) - n_columns`` fields begin with a space, so every
    field that begins with a space is a continuation and there is a single way
    to read the line; otherwise the line is not repaired and the reason says why,
    starting with how many fields more than the header the line has (and, where
    the surplus fields at the end are empty, that they are).

    >>> repair_fields(["1", "smoker", " more than 15 years ", "x"], 3).fields
    ['1', 'smoker, more than 15 years ', 'x']
    """
    n_fields = len(fields)
    if n_fields == n_columns:
        return Repair(list(fields))
    if n_fields < n_columns:
        return Repair(None, f"has {n_fields} fields, expected {n_columns} (line is truncated)")
    extra = n_fields - n_columns
    more = f"has {n_fields} fields, expected {n_columns}: {extra} more field{'s' if extra > 1 else ''} than the header"
    continuations = [i for i in range(1, n_fields) if fields[i].startswith(" ")]
    if len(continuations) != extra and not any(fields[n_columns:]):
        return Repair(
            None,
            f"{more}, and the last {extra} {'are' if extra > 1 else 'is'} empty: remove the extra separator(s) "
            "at the end of the line (or name the column in the header)",
        )
    if len(continuations) != extra:
        return Repair(
            None,
            f"{more}; {len(continuations)} fields start with a space, so the {extra} unquoted separator(s) "
            "cannot be located: remove the extra field(s), or quote the free text",
        )
    out: list[str] = []
    for i, value in enumerate(fields):
        if i in continuations:
            out[-1] = out[-1] + sep + value
        else:
            out.append(value)
    return Repair(out, merged=extra)


def split_line(text: str, sep: str, n_columns: int) -> Repair:
    """The fields of one line set aside by :func:`survey`.

    A line that parses as RFC-4180 CSV on its own (strictly: a quoted field
    closes before the next separator) into the header's number of fields is read
    with its quoting. Any other line is split at every separator and repaired by
    :func:`repair_fields`, so a double quote inside unquoted free text is kept
    as written. A field that is entirely enclosed in double quotes is read as a
    quoted CSV field (its quotes removed): that is what CSV means by it. A line
    that opens a quoted field and does not close it (a value spanning lines, or
    a stray quote at the start of a value) is not read.
    """
    if '"' in text:
        try:
            fields = next(csv.reader([text], delimiter=sep, strict=True))
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                return Repair(
                    None,
                    "a double-quoted field is not closed on this line (a value spanning lines, or a stray quote "
                    "at the start of a value): keep each row on one line, or double the quote",
                )
            fields = None
        if fields is not None and len(fields) == n_columns:
            return Repair(fields)
    return repair_fields(text.split(sep), n_columns, sep)


# --- opening files -----------------------------------------------------------------------------


def sniff(path: Path) -> tuple[str, str | None]:
    """``(kind, compression)``: kind ``parquet`` or ``text``; compression by the first bytes."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(b"PAR1"):
        return "parquet", None
    for magic, name in MAGIC.items():
        if head.startswith(magic):
            return "text", name
    return "text", None


ZIP_MAGIC = b"PK\x03\x04"
"""First bytes of a zip container: a zip archive, and xlsx, ods and docx files."""
OLE2_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
"""First bytes of an OLE2 compound file: an old Excel workbook (.xls) or another old Office file."""

SAVE_AS_CSV = "open it in Excel or LibreOffice Calc and save the sheet as CSV (File > Save As > CSV UTF-8)"


def _zip_contents(path: Path) -> tuple[str, str]:
    """``(what the zip container is, how to get a CSV out of it)``."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            mimetype = archive.read("mimetype").decode("ascii", "replace").strip() if "mimetype" in names else ""
    except (zipfile.BadZipFile, OSError, KeyError):
        return "a zip archive (damaged)", "download or export it again"
    if any(n.startswith("xl/") for n in names):
        return "an Excel workbook (.xlsx)", SAVE_AS_CSV
    if "spreadsheet" in mimetype:
        return "an OpenDocument spreadsheet (.ods)", SAVE_AS_CSV
    if any(n.startswith("word/") for n in names) or "text" in mimetype:
        return "a word-processor document (.docx or .odt)", "export the table from it as CSV"
    files = [n for n in names if not n.endswith("/")]
    shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
    return (
        f"a zip archive holding {shown or 'nothing'}",
        "unzip it and point the config at the table inside (a CSV compressed with gzip, bzip2, xz or zstd "
        "is read as it is)",
    )


def check_not_container(path: Path, role: str = "raw_csv") -> None:
    """Stop with one line where ``path`` is a spreadsheet, an Office file or a zip archive rather than a table.

    Recognised by the first bytes (a zip container, or an OLE2 compound file),
    whatever the file's name.
    """
    with open(path, "rb") as handle:
        head = handle.read(8)
    if head.startswith(ZIP_MAGIC):
        what, fix = _zip_contents(path)
    elif head.startswith(OLE2_MAGIC):
        what, fix = "an old Excel workbook (.xls) or another Microsoft Office file", SAVE_AS_CSV
    else:
        return
    raise PanelMlpError(f"{path} ({role}): {what}, not a delimited text table; {fix}, and point {role} at that file")


class _NativeRaw(io.RawIOBase):
    """A pyarrow input stream as a Python raw stream (pyarrow's has no ``readline``)."""

    def __init__(self, stream: pa.NativeFile) -> None:
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._stream.close()
        super().close()


def open_binary(path: Path, compression: str | None) -> BinaryIO:
    """The file's bytes, decompressed."""
    if compression == "gzip":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    if compression == "bz2":
        return bz2.open(path, "rb")  # type: ignore[return-value]
    if compression == "xz":
        return lzma.open(path, "rb")  # type: ignore[return-value]
    if compression == "zstd":
        return io.BufferedReader(_NativeRaw(pa.input_stream(str(path), compression="zstd")), 1 << 20)  # type: ignore[return-value]
    return open(path, "rb")


DECOMPRESSION_ERRORS = (EOFError, OSError, zlib.error, lzma.LZMAError, pa.ArrowException)


def _corrupt(path: Path, compression: str | None, exc: BaseException) -> PanelMlpError:
    what = f"{compression} data" if compression else "file"
    return PanelMlpError(
        f"{path}: the {what} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'truncated'}); "
        "the file is truncated or corrupt: download or export it again"
    )


def _is_ascii_compatible(encoding: str) -> bool:
    return '\n,;\t"'.encode(encoding, errors="replace") == b'\n,;\t"'


def _decoded_lines(path: Path, compression: str | None, encoding: str) -> Iterator[tuple[int, str]]:
    """``(line number, text without its line end)`` of every physical line, decoded.

    A byte that is not valid in ``encoding`` stops with one line naming the line,
    the byte and the setting that fixes it.
    """
    ascii_compatible = _is_ascii_compatible(encoding)
    try:
        with open_binary(path, compression) as raw:
            if ascii_compatible:
                for number, line in enumerate(raw, start=1):
                    try:
                        text = line.decode(encoding)
                    except UnicodeDecodeError as exc:
                        raise _encoding_error(path, number, line, exc, encoding) from None
                    yield number, text.rstrip("\r\n")
            else:
                stream = io.TextIOWrapper(raw, encoding=encoding, newline="")
                number = 0
                try:
                    for number, text in enumerate(stream, start=1):
                        yield number, text.rstrip("\r\n")
                except UnicodeDecodeError as exc:
                    raise PanelMlpError(
                        f"{path} near line {number + 1}: the text is not valid {encoding} ({exc.reason}); "
                        "set input.encoding to the file's encoding (e.g. utf-8, latin-1, cp1252)"
                    ) from None
    except DECOMPRESSION_ERRORS as exc:
        if isinstance(exc, PanelMlpError):
            raise
        raise _corrupt(path, compression, exc) from None


def _encoding_error(path: Path, number: int, line: bytes, exc: UnicodeDecodeError, encoding: str) -> PanelMlpError:
    byte = line[exc.start : exc.start + 1].hex()
    if number == 1 and line[:2] in (b"\xff\xfe", b"\xfe\xff"):
        hint = "it starts with a UTF-16 byte-order mark: set input.encoding: utf-16, or save it as UTF-8"
    elif codecs.lookup(encoding).name == "utf-8":
        hint = "set input.encoding: latin-1 (or cp1252, the usual Windows encoding) in the config, or save the file as UTF-8"
    else:
        hint = "set input.encoding to the file's encoding"
    return PanelMlpError(
        f"{path} line {number}, character {exc.start + 1}: byte 0x{byte} is not valid {encoding}; {hint}"
    )


# --- the survey ------------------------------------------------------------------------------------


def _count_fields(line: str, sep: str) -> int:
    """Fields of one line: separators plus one, or the CSV reading where the line has quotes."""
    if '"' not in line:
        return line.count(sep) + 1
    return len(next(csv.reader([line], delimiter=sep), []))


def quoted_field_count(line: str, sep: str) -> int | None:
    """Fields of a line read as standard CSV (RFC 4180), or None where its quoting is not standard.

    Standard: every double quote opens a field (at the line start or right
    after a separator), closes it (at the line end or right before a
    separator), or is doubled inside a quoted field. Such a line is read the
    same way by pyarrow and by Python's csv module, so it can take the fast
    path. Costs one split of the line at its quotes, not a parse of its fields.

    >>> quoted_field_count('1,"a, b",x', ",")
    3
    >>> quoted_field_count('1,"say ""hi"" twice",x', ",")
    3
    >>> quoted_field_count('1,a 5" lesion,x', ",") is None
    True
    """
    parts = line.split('"')
    if len(parts) % 2 == 0:  # an odd number of quotes: one is never closed
        return None
    last = len(parts) - 1
    n = 1
    for i in range(0, len(parts), 2):  # the text outside quotes; parts[i] == "" between two is a doubled quote
        outside = parts[i]
        if outside:
            if i > 0 and not outside.startswith(sep):
                return None  # text right after a closing quote
            if i < last and not outside.endswith(sep):
                return None  # a quote in the middle of an unquoted value
            n += outside.count(sep)
    return n


def detect_separator(header: str, sample: Sequence[str], path: Path) -> str:
    """Comma, tab or semicolon: the one that splits the header into most columns that the data lines agree with.

    Each candidate is scored by how many of the first data lines split into as
    many fields as the header, then by the header's number of fields. A header
    that none of them splits stops the run: set ``input.sep``.
    """
    scores = []
    for sep in SEPARATORS:
        n = _count_fields(header, sep)
        if n < 2:
            continue
        agree = sum(1 for line in sample if _count_fields(line, sep) == n)
        scores.append((agree, n, sep))
    if not scores:
        raise PanelMlpError(
            f"{path} line 1: the header is a single column with no comma, tab or semicolon; "
            "set input.sep to the file's separator"
        )
    scores.sort(reverse=True)
    return scores[0][2]


@dataclass
class Survey:
    """What one pass over a text file found.

    ``special`` holds, by line number, the lines parsed in Python: those whose
    number of fields differs from the header's, and those whose double quotes
    are not standard CSV quoting (:func:`quoted_field_count`). ``quoted``: some
    line pyarrow reads holds quoted fields, so it reads with quoting on.
    ``source`` is what pyarrow reads: the file itself, or a UTF-8 copy
    (decompressed, transcoded, set-aside lines left out).
    """

    path: Path
    compression: str | None
    encoding: str
    sep: str
    header: list[str]
    bom: bool
    lines: int
    blanks: list[int]
    special: dict[int, str]
    plain: int
    source: Path
    copied: bool
    quoted: bool = False


def _header_fields(text: str, sep: str, path: str | Path = "the input") -> list[str]:
    """The header's column names (standard CSV quoting); a header the csv module refuses stops in one line."""
    try:
        return next(csv.reader([text], delimiter=sep))
    except csv.Error as exc:
        raise PanelMlpError(f"{path} line 1: the header cannot be read as {sep!r}-separated text ({exc})") from None


def survey(
    path: str | Path, sep: str | None = None, encoding: str | None = None, workdir: str | Path | None = None
) -> Survey:
    """Walk every line of a text table once (see the module docstring).

    A copy is written (under ``workdir``, else the system temp folder) when the
    file is compressed, not UTF-8, or has quoted lines pyarrow would misread.
    """
    path = Path(path)
    check_not_container(path, "the input")
    kind, compression = sniff(path)
    if kind != "text":
        raise PanelMlpError(f"{path}: a parquet file, not delimited text")
    if sep is not None and len(sep) != 1:
        raise PanelMlpError(f"config input.sep: {sep!r} is not one character; use ',', 'tab', ';' or auto")
    encoding = encoding or "utf-8"
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise PanelMlpError(
            f"config input.encoding: {encoding!r} is not an encoding Python knows; use e.g. latin-1"
        ) from None
    utf8 = codecs.lookup(encoding).name == "utf-8"
    lines = _decoded_lines(path, compression, encoding)
    first = next(lines, None)
    if first is None or not first[1].strip("\ufeff"):
        raise PanelMlpError(f"{path}: the file is empty (no header line); expected a table with a header line")
    header_text = first[1]
    bom = header_text.startswith("\ufeff")
    header_text = header_text.lstrip("\ufeff")
    if "\r" in header_text.rstrip("\r"):
        raise PanelMlpError(
            f"{path} line 1: lines end in a lone carriage return (CR, the line ends of classic Mac OS "
            "software), which are not read; save the file with LF or CRLF line ends (e.g. as 'CSV UTF-8')"
        )
    head: list[tuple[int, str]] = []
    for item in lines:
        head.append(item)
        if len(head) >= SNIFF_LINES:
            break
    if sep is None:
        sep = detect_separator(header_text, [t for _, t in head if t], path)
    header = _header_fields(header_text, sep, path)
    n_columns = len(header)
    n_sep = n_columns - 1
    copying = compression is not None or not utf8
    workdir_path = Path(workdir) if workdir is not None else None
    copy_handle = None
    copy_path = path
    if copying:
        copy_path = _temp_copy(workdir_path)
        copy_handle = open(copy_path, "w", encoding="utf-8", newline="\n")  # noqa: SIM115 (closed below)
        copy_handle.write(header_text + "\n")
    blanks: list[int] = []
    special: dict[int, str] = {}
    plain = 0
    quoted_plain = False  # a line pyarrow reads holds quotes: it must read with quoting on
    quoted_special = False  # a set-aside line holds quotes: pyarrow could misread it with quoting on
    literal_special = False  # a set-aside quoted line has the header's separator count: read with quoting off
    total = 1

    def take(number: int, text: str) -> None:
        nonlocal plain, quoted_plain, quoted_special, literal_special
        if not text:
            blanks.append(number)
            return
        if '"' in text:
            if quoted_field_count(text, sep) != n_columns:
                special[number] = text
                quoted_special = True
                literal_special = literal_special or text.count(sep) == n_sep
                return
            quoted_plain = True
        elif text.count(sep) != n_sep:
            special[number] = text
            return
        plain += 1
        if copy_handle is not None:
            copy_handle.write(text + "\n")

    try:
        for number, text in head:
            take(number, text)
            total = number
        for number, text in lines:
            take(number, text)
            total = number
    except BaseException:
        if copy_handle is not None:
            copy_handle.close()
            copy_path.unlink(missing_ok=True)
        raise
    if copy_handle is not None:
        copy_handle.close()
    elif quoted_special and (quoted_plain or literal_special):
        # pyarrow would read a set-aside quoted line (with quoting on, an unclosed quote even takes the next
        # line with it): copy the file without the set-aside lines.
        copying = True
        copy_path = _temp_copy(workdir_path)
        with open(copy_path, "w", encoding="utf-8", newline="\n") as out:
            out.write(header_text + "\n")
            for number, text in _decoded_lines(path, compression, encoding):
                if number > 1 and text and number not in special:
                    out.write(text + "\n")
    return Survey(
        path=path,
        compression=compression,
        encoding=encoding,
        sep=sep,
        header=header,
        bom=bom,
        lines=total,
        blanks=blanks,
        special=special,
        plain=plain,
        source=copy_path,
        copied=copying,
        quoted=quoted_plain,
    )


def _temp_copy(workdir: Path | None) -> Path:
    """A new empty file for a normalised UTF-8 copy (in ``workdir``, else the system temp folder)."""
    fd, name = tempfile.mkstemp(prefix="panelmlp-", suffix=".csv", dir=workdir)
    os.close(fd)
    return Path(name)


def line_texts(found: Survey, numbers: Sequence[int]) -> dict[int, str]:
    """The raw text (decoded, without line end) of the given lines, in one pass."""
    wanted = set(numbers)
    out = {n: found.special[n] for n in wanted if n in found.special}
    wanted -= set(out)
    if not wanted:
        return out
    last = max(wanted)
    for number, text in _decoded_lines(found.path, found.compression, found.encoding):
        if number in wanted:
            out[number] = text
        if number >= last:
            break
    return out


# --- parsing into a typed table ------------------------------------------------------------------------


@dataclass
class TableRead:
    """One input table read: typed rows in file order, quarantined lines, and the accounting.

    ``table`` has the id column as text, the value columns (``values``) as
    float32 with missing values null, and every other column typed by inference
    (integers, floats, booleans, text). ``lines`` gives each row's file line
    (for parquet, its row number). ``quarantine`` entries have ``file``,
    ``line``, ``id``, ``reason`` and ``text`` (the raw line, verbatim).
    """

    table: pa.Table
    lines: list[int]
    quarantine: list[dict[str, object]]
    accounting: dict[str, object] = field(default_factory=dict)
    id_column: str = ""
    values: list[str] = field(default_factory=list)
    survey: Survey | None = None
    raw: pa.Table | None = None

    def row_text(self, line: int) -> str:
        """The raw text of a line: from the file for text; a parquet row written as a CSV line."""
        if self.survey is not None:
            return line_texts(self.survey, [line]).get(line, "")
        if self.raw is not None and 1 <= line <= self.raw.num_rows:
            return _render_row(self.raw, line - 1, self.raw.column_names)
        return ""


def _check_id_column(path: str | Path, id_name: str, id_kind: str, ids: Sequence[object]) -> None:
    """Stop when the id column repeats most of its ids: it is not an id column (the wrong ``sample_id``).

    A few repeated ids are quarantined line by line; when more than half of at
    least four readable rows repeat an earlier id, quarantining them would
    leave a cohort of a handful of samples, so the run stops instead.
    """
    present = [str(i) for i in ids if i is not None and i != ""]
    distinct = len(set(present))
    if len(present) < 4 or len(present) - distinct <= len(present) / 2:
        return
    common = Counter(present).most_common(1)[0]
    fix = (
        "set config sample_id to the column that holds a unique id per sample"
        if id_kind == "sample id"
        else "check input.orientation (the first column must hold one id per row)"
    )
    raise PanelMlpError(
        f"{path}: column {id_name} holds only {distinct} distinct {id_kind}(s) in {len(present)} rows "
        f"({common[0]!r} {common[1]} times), so it is not a column with one id per row; {fix}, "
        "or make the ids unique in the file"
    )


def _parse_clinical(columns: dict[str, pa.Array]) -> pa.Table:
    """Type text columns the way pyarrow's CSV reader would.

    Empty lines are rows: a single column's missing value is written as one.
    """
    table = pa.table(columns)
    if table.num_columns == 0:
        return table
    buffer = io.BytesIO()
    pacsv.write_csv(table, buffer)
    return pacsv.read_csv(
        io.BytesIO(buffer.getvalue()),
        parse_options=pacsv.ParseOptions(ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(
            null_values=NULL_VALUES, strings_can_be_null=True, quoted_strings_can_be_null=True
        ),
    )


def _null_na(values: pa.Array) -> pa.Array:
    """Cells written as ``NA`` or left empty become missing."""
    return pc.if_else(pc.is_in(values, value_set=pa.array(NULL_VALUES)), pa.scalar(None, pa.string()), values)


def _value_text(column: pa.ChunkedArray) -> pa.Array:
    """A value column read as text, trimmed, with ``NA`` and empty cells missing."""
    return pc.utf8_trim_whitespace(_null_na(column.combine_chunks()))


DECIMAL_COMMA = re.compile(r"^[+-]?\d+,\d+$")


def _number_reasons(table: pa.Table, value_columns: Sequence[str], decimal: str) -> list[str | None]:
    """Per row, the first value cell that is not a number (or None)."""
    reasons: list[str | None] = [None] * table.num_rows
    for name in value_columns:
        column = _value_text(table.column(name))
        if decimal != ".":
            column = pc.replace_substring(column, decimal, ".")
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
                hint = " (a decimal comma? set input.decimal: ',')" if DECIMAL_COMMA.match(value) else ""
                reasons[i] = f"column {name}: {value!r} is not a number{hint}"
    return reasons


def _to_float(column: pa.ChunkedArray, decimal: str) -> pa.Array:
    text = _value_text(column)
    if decimal != ".":
        text = pc.replace_substring(text, decimal, ".")
    return pc.cast(text, pa.float32())


def _rows_to_table(header: Sequence[str], rows: Sequence[Sequence[str]], options: pacsv.ConvertOptions) -> pa.Table:
    """Parse already split rows with the given conversion options (via an in-memory CSV)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return pacsv.read_csv(io.BytesIO(buffer.getvalue().encode("utf-8")), convert_options=options)


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


def _check_header(path: Path, header: Sequence[str]) -> None:
    duplicated = sorted(name for name, count in Counter(header).items() if count > 1)
    if duplicated:
        raise PanelMlpError(f"{path} line 1: duplicated column names {duplicated[:10]}; rename them")
    empty = [i + 1 for i, name in enumerate(header) if not name.strip()]
    if empty:
        hint = " (R's write.csv writes row names there: write with row.names = FALSE)" if empty == [1] else ""
        raise PanelMlpError(f"{path} line 1: column(s) {empty[:10]} have no name; give every column a name{hint}")


def read_table(
    path: str | Path,
    id_column: str | Callable[[list[str]], str],
    value_columns: Callable[[list[str], str], list[str]],
    sep: str | None = None,
    encoding: str | None = None,
    decimal: str = ".",
    workdir: str | Path | None = None,
    id_kind: str = "sample id",
    role: str = "raw_csv",
) -> TableRead:
    """Read a table: typed rows, quarantined lines with reasons, and the accounting.

    ``id_column`` names the id column (or picks it from the header);
    ``value_columns(header, id)`` picks the float columns. Rows whose id is
    missing or repeats an earlier one, whose value cell is not a number, or
    whose line cannot be read are quarantined. The file may be delimited text
    or parquet (see the module docstring).
    """
    path = Path(path)
    if path.is_dir():
        raise PanelMlpError(f"{path} is a folder, not a table; point {role} in the config at the table file")
    if not path.is_file():
        raise PanelMlpError(f"{path}: file not found; set {role} in the config to its path")
    check_not_container(path, role)
    kind, _ = sniff(path)
    if kind == "parquet":
        return _read_parquet(path, id_column, value_columns, id_kind)
    found = survey(path, sep=sep, encoding=encoding, workdir=workdir)
    try:
        read = _read_text(found, id_column, value_columns, decimal, id_kind)
        read.survey = found
        return read
    finally:
        if found.copied:
            found.source.unlink(missing_ok=True)


def _pick_id(path: Path, header: list[str], id_column: str | Callable[[list[str]], str]) -> str:
    name = id_column(header) if callable(id_column) else id_column
    if name not in header:
        near = [c for c in header if c.strip().lower() == name.strip().lower()]
        near += [c for c in difflib.get_close_matches(name, header, n=3) if c not in near]
        shown = f"closest: {near}" if near else f"the header has {header[:5]}{' ...' if len(header) > 5 else ''}"
        raise PanelMlpError(
            f"{path} line 1: no column {name!r} ({shown}). "
            "Set sample_id in the config to the sample-id column, or rename it in the file (or check input.sep)"
        )
    return name


def trailing_unnamed(header: Sequence[str]) -> int:
    """How many columns at the end of the header have no name (blank), after at least one named column.

    >>> trailing_unnamed(["G1", "SAMPLE_ID", "", " ", ""])
    3
    """
    n = 0
    while n < len(header) - 1 and not header[len(header) - 1 - n].strip():
        n += 1
    return n


def similar_names(header: Sequence[str]) -> list[list[str]]:
    """Groups of column names that are the same but for spaces around them (``GFAP`` and ``GFAP ``).

    >>> similar_names(["GFAP", "SOX2", "GFAP ", " SOX2 ", "AGE"])
    [['GFAP', 'GFAP '], ['SOX2', ' SOX2 ']]
    """
    groups: dict[str, list[str]] = {}
    for name in header:
        groups.setdefault(name.strip(), []).append(name)
    return [names for names in groups.values() if len(names) > 1]


def _placeholders(header: Sequence[str], n: int) -> list[str]:
    """Names, none in ``header``, for ``n`` unnamed trailing columns while they are read."""
    taken = set(header)
    out: list[str] = []
    i = 0
    while len(out) < n:
        name = f"(unnamed column {len(header) + len(out) + 1}{'_' * i})"
        if name in taken:
            i += 1
            continue
        out.append(name)
    return out


def _check_unnamed_empty(path: Path, table: pa.Table, lines: Sequence[int], unnamed: Sequence[str], named: int) -> None:
    """Stop where a trailing column without a name holds a value on some line."""
    for k, name in enumerate(unnamed):
        text = _value_text(table.column(name))
        if text.null_count == len(text):
            continue
        filled = pc.fill_null(pc.not_equal(text, ""), False)
        if not pc.any(filled).as_py():
            continue
        rows = [i for i, f in enumerate(filled.to_pylist()) if f]
        first = min(rows, key=lambda i: lines[i])
        raise PanelMlpError(
            f"{path} line {lines[first]}: column {named + k + 1} has no name on line 1 but holds "
            f"{text[first].as_py()!r} ({len(rows)} line(s) have a value there); give every column a name"
        )


def _check_surplus(found: Survey, n_columns: int) -> None:
    """Stop where every data line has the same number of fields more than the header (two lines or more).

    That is no free text with unquoted separators (those vary from line to
    line) but a header short of names, or a separator ending every line.
    """
    numbers = sorted(found.special)
    if len(numbers) < 2:
        return
    surplus = {_count_fields(found.special[n], found.sep) - n_columns for n in numbers}
    if len(surplus) != 1 or (extra := surplus.pop()) <= 0:
        return
    raise PanelMlpError(
        f"{found.path}: every data line has {extra} more field{'s' if extra > 1 else ''} than the header "
        f"(line 1 has {n_columns} names, line {numbers[0]} has {n_columns + extra} fields): the header lacks "
        f"{extra} column name(s), or each data line ends with {extra} extra separator(s); fix the header or the lines"
    )


def _read_text(
    found: Survey,
    id_column: str | Callable[[list[str]], str],
    value_columns: Callable[[list[str], str], list[str]],
    decimal: str,
    id_kind: str,
) -> TableRead:
    path, sep = found.path, found.sep
    n_empty = trailing_unnamed(found.header)
    header = found.header[: len(found.header) - n_empty]
    _check_header(path, header)
    similar = similar_names(header)
    if similar:
        log.warning(
            "clean: %s line 1: column names that differ only by spaces are kept as distinct columns "
            "(clean.json similar_column_names): %s; a panel or sample_id naming one of them matches only the "
            "exact name: remove the spaces in the file if they are the same column",
            path,
            "; ".join(" vs ".join(repr(n) for n in group) for group in similar),
        )
    id_name = _pick_id(path, header, id_column)
    values = value_columns(header, id_name)
    value_set = set(values)
    other = [c for c in header if c not in value_set]
    unnamed = _placeholders(header, n_empty)
    columns = [*header, *unnamed]
    n_columns = len(columns)

    def options(value_type: pa.DataType) -> pacsv.ConvertOptions:
        types = dict.fromkeys(values, value_type)
        types.update(dict.fromkeys(other + unnamed, pa.string()))
        return pacsv.ConvertOptions(
            column_types=types,
            null_values=NULL_VALUES,
            strings_can_be_null=True,
            quoted_strings_can_be_null=True,
            decimal_point=decimal,
        )

    def skip(_: pacsv.InvalidRow) -> str:
        return "skip"

    read = pacsv.ReadOptions(block_size=block_size_for(found.source), column_names=columns, skip_rows=1)
    parse = pacsv.ParseOptions(
        delimiter=sep,
        quote_char='"' if found.quoted else False,
        double_quote=True,
        newlines_in_values=False,
        invalid_row_handler=skip,
    )
    try:
        good = pacsv.read_csv(
            found.source, read_options=read, parse_options=parse, convert_options=options(pa.float32())
        )
        value_type = pa.float32()
    except pa.ArrowInvalid:  # a value cell is not a number: read values as text, check per row below
        value_type = pa.string()
        good = pacsv.read_csv(found.source, read_options=read, parse_options=parse, convert_options=options(value_type))
    if good.num_rows != found.plain:
        raise AssertionError(f"{path}: pyarrow read {good.num_rows} rows, the survey found {found.plain} plain lines")

    # Lines set aside: parse in Python, then with the same options as the rest.
    quarantine: list[dict[str, object]] = []
    parsed: list[tuple[int, list[str]]] = []
    repaired_lines: list[int] = []
    for number in sorted(found.special):
        text = found.special[number]
        outcome = split_line(text, sep, n_columns)
        for short in range(n_columns - 1, len(header) - 1, -1):  # a line without the empty trailing columns
            if outcome.fields is not None:
                break
            shorter = split_line(text, sep, short)
            if shorter.fields is not None:
                outcome = Repair(shorter.fields + [""] * (n_columns - short), merged=shorter.merged)
        if outcome.fields is None:
            quarantine.append({"file": str(path), "line": number, "id": None, "reason": outcome.reason, "text": text})
            continue
        parsed.append((number, outcome.fields))
        if outcome.merged:
            repaired_lines.append(number)
    if found.plain == 0 and not parsed:
        _check_surplus(found, n_columns)
    side = _parse_rows(
        columns, parsed, options(value_type), options(pa.string()), values, decimal, path, found, quarantine
    )

    special_or_blank = set(found.special) | set(found.blanks)
    good_lines = [n for n in range(2, found.lines + 1) if n not in special_or_blank]
    table = pa.concat_tables([good, side[0]])
    lines = good_lines + side[1]
    if unnamed:
        _check_unnamed_empty(path, table, lines, unnamed, len(header))
        table = table.select(header)
        log.info(
            "clean: %s: dropped %d trailing column(s) with no name and no value (a spreadsheet export's trailing "
            "separators; clean.json empty_columns_dropped)",
            path,
            n_empty,
        )
    typed = _parse_clinical({name: table.column(name) for name in other if name != id_name})
    for name in typed.column_names:
        table = table.set_column(header.index(name), name, typed.column(name))
    return _finish(
        path,
        table,
        lines,
        header,
        id_name,
        values,
        value_type,
        decimal,
        quarantine,
        id_kind,
        accounting={
            "file": str(path),
            "format": _format_name(found),
            "lines_read": found.lines,
            "header_lines": 1,
            "blank_lines": len(found.blanks),
            "data_lines": found.lines - 1 - len(found.blanks),
            "empty_columns_dropped": n_empty,
            "similar_column_names": similar,
        },
        repaired_lines=repaired_lines,
        found=found,
    )


def _format_name(found: Survey) -> str:
    parts = [f"{SEPARATORS.get(found.sep, repr(found.sep))}-separated text"]
    if found.compression:
        parts.append(f"{found.compression}-compressed")
    parts.append(found.encoding + (" with byte-order mark" if found.bom else ""))
    return ", ".join(parts)


def _parse_rows(
    header: Sequence[str],
    rows: Sequence[tuple[int, list[str]]],
    options: pacsv.ConvertOptions,
    text_options: pacsv.ConvertOptions,
    values: Sequence[str],
    decimal: str,
    path: Path,
    found: Survey,
    quarantine: list[dict[str, object]],
) -> tuple[pa.Table, list[int]]:
    """Typed table of rows parsed in Python and their line numbers; rows that still fail go to quarantine."""
    try:
        return _rows_to_table(header, [r[1] for r in rows], options), [r[0] for r in rows]
    except pa.ArrowInvalid:
        pass
    tables, lines = [], []
    for number, fields in rows:
        try:
            tables.append(_rows_to_table(header, [fields], options))
            lines.append(number)
        except pa.ArrowInvalid as exc:
            reason = _number_reasons(_rows_to_table(header, [fields], text_options), values, decimal)[0]
            quarantine.append(
                {
                    "file": str(path),
                    "line": number,
                    "id": None,
                    "reason": reason or str(exc).splitlines()[0],
                    "text": found.special[number],
                }
            )
    empty = _rows_to_table(header, [], options)
    return pa.concat_tables([empty, *tables]), lines


def _finish(
    path: Path,
    table: pa.Table,
    lines: list[int],
    header: Sequence[str],
    id_name: str,
    values: Sequence[str],
    value_type: pa.DataType,
    decimal: str,
    quarantine: list[dict[str, object]],
    id_kind: str,
    accounting: dict[str, object],
    repaired_lines: Sequence[int] = (),
    found: Survey | None = None,
    raw: pa.Table | None = None,
) -> TableRead:
    """Row checks (numbers, present and unique ids), file order, and the accounting."""
    ids_column = table.column(id_name)
    if ids_column.type != pa.string():
        ids_column = pc.cast(ids_column, pa.string())
    ids_column = pc.utf8_trim_whitespace(ids_column.combine_chunks())
    ids = ids_column.to_pylist()
    text_values = value_type == pa.string()
    reasons = _number_reasons(table, values, decimal) if text_values else [None] * table.num_rows
    order = sorted(range(table.num_rows), key=lambda i: lines[i])
    seen: dict[str, int] = {}
    for i in order:
        if reasons[i] is not None:
            continue
        sid = ids[i]
        if sid is None or sid == "":
            reasons[i] = f"column {id_name}: {id_kind} is missing"
        elif sid in seen:
            reasons[i] = f"column {id_name}: {id_kind} {sid!r} repeats line {seen[sid]}"
        else:
            seen[sid] = lines[i]
    _check_id_column(path, id_name, id_kind, [ids[i] for i in order if reasons[i] is None or "repeats" in reasons[i]])
    keep = [i for i in order if reasons[i] is None]
    dropped = [i for i in order if reasons[i] is not None]
    if dropped:
        texts = line_texts(found, [lines[i] for i in dropped]) if found is not None else {}
        for i in dropped:
            text = (
                texts.get(lines[i], "")
                if found is not None
                else _render_row(raw if raw is not None else table, i, header)
            )
            quarantine.append({"file": str(path), "line": lines[i], "id": ids[i], "reason": reasons[i], "text": text})
    table = table.set_column(header.index(id_name), id_name, ids_column)
    table = table.take(pa.array(keep, pa.int64())) if keep != list(range(table.num_rows)) else table
    if text_values:
        for name in values:
            table = table.set_column(header.index(name), name, _to_float(table.column(name), decimal))
    quarantine.sort(key=lambda q: q["line"] if isinstance(q["line"], int) else 0)
    kept_lines = [lines[i] for i in keep]
    repaired = sorted(set(repaired_lines) & set(kept_lines))
    accounting = dict(accounting)
    accounting.update(
        {
            "parsed_as_is": len(keep) - len(repaired),
            "repaired": len(repaired),
            "quarantined": len(quarantine),
            "rows_kept": len(keep),
            "repaired_lines": repaired,
            "quarantined_lines": [q["line"] for q in quarantine],
            "n_columns": len(header),
        }
    )
    if accounting["parsed_as_is"] + accounting["repaired"] + accounting["quarantined"] != accounting["data_lines"]:
        raise AssertionError(f"row accounting of {path} does not add up: {accounting}")
    return TableRead(table, kept_lines, quarantine, accounting, id_name, list(values))


def _render_row(table: pa.Table, i: int, header: Sequence[str]) -> str:
    """A parquet row written as a CSV line (parquet has no raw text to keep)."""
    record = table.slice(i, 1).to_pylist()[0]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(["NA" if record[c] is None else record[c] for c in header])
    return buffer.getvalue()


def _read_parquet(
    path: Path,
    id_column: str | Callable[[list[str]], str],
    value_columns: Callable[[list[str], str], list[str]],
    id_kind: str,
) -> TableRead:
    """A parquet table: rows numbered from 1 in place of lines; value columns cast to float32."""
    try:
        table = original = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise PanelMlpError(
            f"{path}: not a readable parquet file ({str(exc).splitlines()[0]}); export it again"
        ) from None
    header = list(table.column_names)
    _check_header(path, header)
    id_name = _pick_id(path, header, id_column)
    values = value_columns(header, id_name)
    value_type = pa.float32()
    cast_columns = {}
    for name in values:
        column = table.column(name)
        if pa.types.is_floating(column.type) or pa.types.is_integer(column.type):
            cast_columns[name] = pc.cast(column, pa.float32())
        else:
            value_type = pa.string()
    if value_type == pa.string():
        for name in values:
            table = table.set_column(header.index(name), name, pc.cast(table.column(name), pa.string()))
    else:
        for name, column in cast_columns.items():
            table = table.set_column(header.index(name), name, column)
    lines = list(range(1, table.num_rows + 1))
    accounting = {
        "file": str(path),
        "format": "parquet",
        "lines_read": table.num_rows,
        "header_lines": 0,
        "blank_lines": 0,
        "data_lines": table.num_rows,
    }
    read = _finish(path, table, lines, header, id_name, values, value_type, ".", [], id_kind, accounting, raw=original)
    read.raw = original
    return read
