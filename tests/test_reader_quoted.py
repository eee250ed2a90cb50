"""Quoted CSV on the fast path, and the reader-level faults of spreadsheet exports (issue 13, parts 2 and 4).

- RFC-4180 quoting (R's write.csv quotes every text field; spreadsheets quote
  text holding a comma) is read by pyarrow, not line by line in Python: only
  lines that fail both quoted and unquoted parsing go through
  :func:`panelmlp.reader.split_line`.
- A spreadsheet, Office file or zip archive given as the input stops with one
  line saying what it is and how to export CSV.
- Trailing unnamed empty columns (``,,,`` on every line, header included) are
  dropped and counted; header names that differ only by spaces are kept and
  reported; data lines with extra trailing fields say how many.
"""

from __future__ import annotations

import io
import json
import logging
import zipfile
from pathlib import Path

import pytest
from panelmlp import reader
from panelmlp.errors import PanelMlpError
from panelmlp.io import clean_csv, clean_step
from panelmlp.reader import quoted_field_count, survey
from panelmlp.runner import run

GENES = {"before_column": "PATIENT_ID"}
HEADER = ["G1", "G2", "PATIENT_ID", "SAMPLE_ID", "SMOKING_HISTORY", "NOTE"]
HISTORIES = [
    "Lifelong non-smoker: Less than 100 cigarettes smoked in lifetime",
    "Current reformed smoker, more than 15 years ",
    'said "never"',
    "",
    "Current smoker",
]


def _r_style(sep: str = ",") -> tuple[list[str], list[dict[str, object]]]:
    """A table the way R's write.csv writes it: header and every text field quoted, quotes doubled, NA bare."""
    lines = [sep.join(f'"{h}"' for h in HEADER)]
    expected = []
    for i in range(12):
        history = HISTORIES[i % len(HISTORIES)]
        note = "NA" if i % 4 == 0 else f'"site {i}, left"'
        quoted = '"' + history.replace('"', '""') + '"'
        lines.append(sep.join([f"{i + 0.5}", f"{-i}", f'"P{i}"', f'"S{i}"', quoted, note]))
        expected.append(
            {
                "SAMPLE_ID": f"S{i}",
                "G1": i + 0.5,
                "G2": float(-i),
                "SMOKING_HISTORY": history or None,
                "NOTE": None if i % 4 == 0 else f"site {i}, left",
            }
        )
    return lines, expected


def _rows(result) -> list[dict[str, object]]:
    keys = ("SAMPLE_ID", "G1", "G2", "SMOKING_HISTORY", "NOTE")
    return [{k: r[k] for k in keys} for r in result.table.to_pylist()]


@pytest.fixture
def count_split_line(monkeypatch):
    """How many lines went through the per-line path."""
    calls: list[str] = []
    original = reader.split_line

    def counting(text: str, sep: str, n_columns: int):
        calls.append(text)
        return original(text, sep, n_columns)

    monkeypatch.setattr(reader, "split_line", counting)
    return calls


@pytest.mark.parametrize(
    ("line", "count"),
    [
        ('1,"a, b",x', 3),
        ('"a","b","c"', 3),
        ('1,"say ""hi"", twice",x', 3),
        ('"",,""', 3),
        ('1,""""', 2),  # a field holding one double quote
        ('1,"a,b', None),  # never closed
        ('1,a 5" lesion,x', None),  # a quote inside an unquoted value
        ('1,"big" lesion,x', None),  # text after the closing quote
        ('1, "a",x', None),  # a space before the opening quote
        ('1;"a; b";x', 3),
    ],
)
def test_quoted_field_count_accepts_only_standard_quoting(line, count):
    sep = ";" if ";" in line else ","
    assert quoted_field_count(line, sep) == count


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_r_style_quoted_table_is_read_whole_on_the_fast_path(tmp_path, sep, count_split_line):
    lines, expected = _r_style(sep)
    path = tmp_path / "r.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = survey(path)
    assert found.quoted and found.special == {} and found.plain == 12 and not found.copied
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert count_split_line == []  # not one line parsed in Python
    assert _rows(result) == expected
    acc = result.accounting
    assert (acc["parsed_as_is"], acc["repaired"], acc["quarantined"], acc["data_lines"]) == (12, 0, 0, 12)


def test_gzipped_quoted_table_reads_the_same(tmp_path, count_split_line):
    import gzip

    lines, expected = _r_style()
    path = tmp_path / "r.csv.gz"
    path.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode("utf-8")))
    assert _rows(clean_csv(path, GENES, "SAMPLE_ID")) == expected and count_split_line == []


def test_only_lines_failing_both_readings_go_line_by_line(tmp_path, count_split_line):
    lines = [
        ",".join(HEADER),
        '1,1,P1,S1,"Current smoker, daily",a',  # standard quoting: fast path
        "2,2,P2,S2,Current reformed smoker, more than 15 years ,b",  # unquoted comma: repaired
        '3,3,P3,S3,a 5" lesion,c',  # quote inside a value: kept literally
        '4,4,P4,S4,"never closed,d',  # quarantined
        '5,5,P5,S5,"x ""y""",e',  # doubled quotes: fast path; with quoting on, line 6 must not be swallowed
        "6,6,P6,S6,Lifelong non-smoker,f",
    ]
    path = tmp_path / "mixed.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    found = survey(path)
    assert sorted(found.special) == [3, 4, 5] and found.quoted and found.copied
    found.source.unlink()
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert sorted(count_split_line) == sorted(lines[2:5])
    history = dict(zip(result.table["SAMPLE_ID"].to_pylist(), result.table["SMOKING_HISTORY"].to_pylist(), strict=True))
    assert history == {
        "S1": "Current smoker, daily",
        "S2": "Current reformed smoker, more than 15 years ",
        "S3": 'a 5" lesion',
        "S5": 'x "y"',
        "S6": "Lifelong non-smoker",
    }
    assert result.table["NOTE"].to_pylist() == ["a", "b", "c", "e", "f"]
    assert [(q["line"], q["text"]) for q in result.quarantine] == [(5, lines[4])]
    acc = result.accounting
    assert (acc["parsed_as_is"], acc["repaired"], acc["quarantined"], acc["data_lines"]) == (4, 1, 1, 6)
    assert acc["repaired_lines"] == [3]


def test_quoted_numbers_and_quoted_na_in_gene_columns(tmp_path):
    path = tmp_path / "q.csv"
    path.write_text('G1,G2,PATIENT_ID,SAMPLE_ID\n"1.5","NA","P1","S1"\n"2",3,"P2","S2"\n', encoding="utf-8")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.table["G1"].to_pylist() == [1.5, 2.0] and result.table["G2"].to_pylist() == [None, 3.0]


# --- spreadsheets and archives ------------------------------------------------------------------------------


def _zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


CONTAINERS = {
    "xlsx": (
        lambda p: _zip(p, {"[Content_Types].xml": "<x/>", "xl/workbook.xml": "<w/>", "xl/worksheets/sheet1.xml": ""}),
        "an Excel workbook (.xlsx)",
    ),
    "ods": (
        lambda p: _zip(p, {"mimetype": "application/vnd.oasis.opendocument.spreadsheet", "content.xml": ""}),
        "an OpenDocument spreadsheet (.ods)",
    ),
    "docx": (lambda p: _zip(p, {"word/document.xml": ""}), "a word-processor document"),
    "zip": (lambda p: _zip(p, {"data/cohort.csv": "G1,SAMPLE_ID\n1,S1\n"}), "a zip archive holding data/cohort.csv"),
    "xls": (
        lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)) and p,
        "an old Excel workbook (.xls)",
    ),
}


@pytest.mark.parametrize("kind", sorted(CONTAINERS))
def test_spreadsheet_or_archive_input_is_one_line_naming_it(kind, tmp_path, capsys):
    make, what = CONTAINERS[kind]
    path = tmp_path / "cohort.csv"  # the name says csv: the first bytes decide
    make(path)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SystemExit) as stop:
        run(
            [str(out / "clean.log")],
            clean_step,
            exit_when_done=False,
            files=[str(path)],
            input={},
            genes=GENES,
            sample_id="SAMPLE_ID",
            missing="impute",
            cohort=str(out / "cohort.parquet"),
            quarantine=str(out / "q.tsv"),
            accounting=str(out / "clean.json"),
        )
    assert stop.value.code == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "panelmlp error" in line]
    assert len(errors) == 1 and "Traceback" not in errors[0]
    message = errors[0]
    assert f"{path} (raw_csv): {what}" in message and "point raw_csv at" in message
    assert "latin-1" not in message and "input.sep" not in message
    if kind == "zip":
        assert "unzip it" in message
    elif kind != "docx":
        assert "save the sheet as CSV" in message
    assert not (out / "cohort.parquet").exists()


def test_sample_sheet_that_is_a_workbook_names_its_key(tmp_path):
    from panelmlp.io import InputSpec, clean_inputs

    expr = tmp_path / "expr.csv"
    expr.write_text("SAMPLE_ID,G1\nS1,1\n", encoding="utf-8")
    sheet = CONTAINERS["xlsx"][0](tmp_path / "samples.xlsx")
    spec = InputSpec(expression=str(expr), samples=str(sheet))
    with pytest.raises(PanelMlpError, match=r"samples.xlsx \(input.samples\): an Excel workbook"):
        clean_inputs(spec, GENES, "SAMPLE_ID")


# --- spreadsheet exports: empty columns, names with spaces, extra fields ------------------------------------


def test_trailing_empty_columns_are_dropped_and_counted(tmp_path, caplog):
    lines = [
        "G1,G2,PATIENT_ID,SAMPLE_ID,SMOKING_HISTORY,,,",
        "1,2,P1,S1,Current smoker,,,",
        '3,4,P2,S2,"Lifelong non-smoker, never",,,',
        "5,6,P3,S3,Current smoker",  # without the trailing separators: read too
        "7,8,P4,S4,Current reformed smoker, more than 15 years ,,,",  # repaired
        "9,10,P5,S5,NA,, ,NA",  # blank and NA cells count as empty
        "11,12,P6,S6",  # truncated: quarantined
    ]
    path = tmp_path / "export.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with caplog.at_level(logging.INFO, logger="panelmlp"):
        result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.table.column_names == ["G1", "G2", "PATIENT_ID", "SAMPLE_ID", "SMOKING_HISTORY"]
    assert result.table["SAMPLE_ID"].to_pylist() == ["S1", "S2", "S3", "S4", "S5"]
    assert result.table["SMOKING_HISTORY"][3].as_py() == "Current reformed smoker, more than 15 years "
    acc = result.accounting
    assert acc["empty_columns_dropped"] == 3 and acc["n_columns"] == 5
    assert (acc["parsed_as_is"], acc["repaired"], acc["quarantined"], acc["data_lines"]) == (4, 1, 1, 6)
    assert [q["line"] for q in result.quarantine] == [7]
    assert "dropped 3 trailing column(s) with no name and no value" in caplog.text


def test_trailing_unnamed_column_with_a_value_is_one_line(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("G1,PATIENT_ID,SAMPLE_ID,,\n1,P1,S1,,\n2,P2,S2,,oops\n", encoding="utf-8")
    with pytest.raises(PanelMlpError) as err:
        clean_csv(path, GENES, "SAMPLE_ID")
    message = str(err.value)
    assert message.startswith(f"{path} line 3: column 5 has no name on line 1 but holds 'oops'")
    assert "give every column a name" in message and "\n" not in message


def test_an_unnamed_column_in_the_middle_still_stops(tmp_path):
    path = tmp_path / "noname.csv"
    path.write_text("G1,,PATIENT_ID,SAMPLE_ID\n1,2,P1,S1\n", encoding="utf-8")
    with pytest.raises(PanelMlpError, match=r"line 1: column\(s\) \[2\] have no name"):
        clean_csv(path, GENES, "SAMPLE_ID")


def test_names_differing_only_by_spaces_are_kept_and_reported(tmp_path, caplog):
    path = tmp_path / "spaces.csv"
    path.write_text("GFAP,SOX2,GFAP ,PATIENT_ID,SAMPLE_ID\n1,2,3,P1,S1\n4,5,6,P2,S2\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="panelmlp"):
        result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.table["GFAP"].to_pylist() == [1.0, 4.0] and result.table["GFAP "].to_pylist() == [3.0, 6.0]
    assert result.accounting["similar_column_names"] == [["GFAP", "GFAP "]]
    assert "differ only by spaces are kept as distinct columns" in caplog.text and "'GFAP' vs 'GFAP '" in caplog.text


def test_clean_json_and_log_carry_the_export_findings(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("G1,G1 ,PATIENT_ID,SAMPLE_ID,,\n1,2,P1,S1,,\n3,4,P2,S2,,\n", encoding="utf-8")
    log = tmp_path / "clean.log"
    run(
        [str(log)],
        clean_step,
        exit_when_done=False,
        files=[str(path)],
        input={},
        genes=GENES,
        sample_id="SAMPLE_ID",
        missing="impute",
        cohort=str(tmp_path / "cohort.parquet"),
        quarantine=str(tmp_path / "q.tsv"),
        accounting=str(tmp_path / "clean.json"),
    )
    acc = json.loads((tmp_path / "clean.json").read_text())
    assert acc["empty_columns_dropped"] == 2 and acc["files"][0]["empty_columns_dropped"] == 2
    assert acc["similar_column_names"] == [["G1", "G1 "]] and acc["rows_in_cohort"] == 2
    text = log.read_text()
    assert "dropped 2 trailing column(s)" in text and "'G1' vs 'G1 '" in text


@pytest.mark.parametrize(
    ("extra", "said", "not_said"),
    [
        (",,", "2 more fields than the header, and the last 2 are empty", "quote the free text"),
        (",", "1 more field than the header, and the last 1 is empty", "quote the free text"),
        (",x,y", "2 more fields than the header; 0 fields start with a space", None),
    ],
)
def test_extra_trailing_fields_on_a_data_line_say_how_many(tmp_path, extra, said, not_said):
    lines = ["G1,PATIENT_ID,SAMPLE_ID,NOTE", "1,P1,S1,a", f"2,P2,S2,b{extra}", "3,P3,S3,c"]
    path = tmp_path / "extra.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    (q,) = result.quarantine
    assert q["line"] == 3 and q["text"] == lines[2] and said in q["reason"]
    if not_said:
        assert not_said not in q["reason"]
    assert result.accounting["parsed_as_is"] + result.accounting["quarantined"] == 3


def test_every_data_line_with_the_same_surplus_is_one_line(tmp_path):
    path = tmp_path / "shifted.csv"
    body = [f"{i},P{i},S{i},note {i}," for i in range(5)]  # a separator ends every data line, not the header
    path.write_text("\n".join(["G1,PATIENT_ID,SAMPLE_ID,NOTE", *body]) + "\n", encoding="utf-8")
    with pytest.raises(PanelMlpError) as err:
        clean_csv(path, GENES, "SAMPLE_ID")
    message = str(err.value)
    assert message.startswith(f"{path}: every data line has 1 more field than the header")
    assert "line 1 has 4 names, line 2 has 5 fields" in message and "fix the header or the lines" in message


def test_a_single_repairable_line_is_still_repaired(tmp_path):
    """The whole-file surplus check leaves free text alone: a lone line with an unquoted comma is repaired."""
    path = tmp_path / "one.csv"
    path.write_text("G1,PATIENT_ID,SAMPLE_ID,NOTE\n1,P1,S1,a, b\n2,P2,S2,c, d\n", encoding="utf-8")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.table["NOTE"].to_pylist() == ["a, b", "c, d"] and result.accounting["repaired"] == 2


def test_wide_r_style_file_takes_the_fast_path(tmp_path, count_split_line):
    """A 5,000-gene R-style file: every line quoted, one with a comma inside; none parsed line by line."""
    genes = [f"G{i}" for i in range(5000)]
    buffer = io.StringIO()
    buffer.write(",".join(f'"{g}"' for g in [*genes, "PATIENT_ID", "SAMPLE_ID", "SMOKING_HISTORY"]) + "\n")
    values = ",".join("1.25" for _ in genes)
    for i in range(20):
        history = "Current reformed smoker, more than 15 years " if i == 3 else "Lifelong non-smoker: never"
        buffer.write(f'{values},"P{i}","S{i}","{history}"\n')
    path = tmp_path / "wide.csv"
    path.write_text(buffer.getvalue(), encoding="utf-8")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert count_split_line == [] and result.table.num_rows == 20 and result.accounting["parsed_as_is"] == 20
    assert result.table["SMOKING_HISTORY"][3].as_py() == "Current reformed smoker, more than 15 years "


def test_r_row_names_column_says_how_to_write_without_it(tmp_path):
    path = tmp_path / "rownames.csv"
    path.write_text('"","G1","PATIENT_ID","SAMPLE_ID"\n"1",1.5,"P1","S1"\n', encoding="utf-8")
    with pytest.raises(PanelMlpError, match=r"line 1: column\(s\) \[1\] have no name.*row.names = FALSE"):
        clean_csv(path, GENES, "SAMPLE_ID")
