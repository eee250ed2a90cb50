"""Reading the raw CSV: repair, quarantine, typing, accounting."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.io import clean_csv, repair_fields, resolve_gene_columns, write_clean

GENES = {"before_column": "PATIENT_ID"}

# The exact shapes of the real file's malformed free text (file lines 9, 16, 29, 50).
REAL_SHAPES = [
    (
        ["Caucasian", "Current reformed smoker", " more than 15 years ", "Exposed"],
        ["Caucasian", "Current reformed smoker, more than 15 years ", "Exposed"],
    ),
    (
        ["Right", "Parietal", " Occipital", " Temporal Lobe ", "NA"],
        ["Right", "Parietal, Occipital, Temporal Lobe ", "NA"],
    ),
    (
        [
            "FAIL",
            "3",
            "C3L-02705-71(low cellularity|low tumor nuclei)",
            " C3L-02705-72(low)",
            " C3L-02705-75(low) ",
            "FALSE",
        ],
        ["FAIL", "3", "C3L-02705-71(low cellularity|low tumor nuclei), C3L-02705-72(low), C3L-02705-75(low) ", "FALSE"],
    ),
    (["403", "Cerebral edema", " brain dislocation ", "No"], ["403", "Cerebral edema, brain dislocation ", "No"]),
]


@pytest.mark.parametrize(("fields", "expected"), REAL_SHAPES)
def test_repair_real_shapes(fields, expected):
    outcome = repair_fields(fields, len(expected))
    assert outcome.fields == expected
    assert outcome.merged == len(fields) - len(expected)


def test_repair_leaves_good_lines_alone():
    assert repair_fields(["a", " b", "c"], 3).fields == ["a", " b", "c"]


def test_repair_refuses_ambiguous_and_short_lines():
    ambiguous = repair_fields(["a", " b", " c", "d"], 3)
    assert ambiguous.fields is None and "cannot be located" in ambiguous.reason
    no_space = repair_fields(["a", "b", "c", "d"], 3)
    assert no_space.fields is None
    short = repair_fields(["a", "b"], 3)
    assert short.fields is None and "truncated" in short.reason


def test_gene_columns_by_before_regex_and_list():
    header = ["A", "B", "SAMPLE_ID", "PATIENT_ID", "AGE"]
    assert resolve_gene_columns(header, GENES, "SAMPLE_ID") == ["A", "B"]
    assert resolve_gene_columns(header, {"regex": "[AB]"}, "SAMPLE_ID") == ["A", "B"]
    assert resolve_gene_columns(header, ["B"], "SAMPLE_ID") == ["B"]
    with pytest.raises(PanelMlpError, match="not in the CSV header"):
        resolve_gene_columns(header, {"before_column": "NOPE"}, "SAMPLE_ID")


def test_synthetic_cohort_accounts_for_every_line(cohort, tmp_path):
    result = clean_csv(cohort.path, GENES, "SAMPLE_ID")
    acc = result.accounting
    assert acc["data_lines"] == cohort.n_samples
    assert acc["repaired"] == len(cohort.malformed_lines)
    assert acc["repaired_lines"] == cohort.malformed_lines
    assert acc["quarantined"] == len(cohort.broken_lines)
    assert acc["quarantined_lines"] == cohort.broken_lines
    assert acc["parsed_as_is"] + acc["repaired"] + acc["quarantined"] == acc["data_lines"]
    assert result.table.num_rows == cohort.n_samples - len(cohort.broken_lines)
    for q in result.quarantine:
        assert "expected" in q["reason"]
    assert result.table.schema.field("SIG1").type == pa.float32()
    assert result.table.schema.field("AGE").type == pa.int64()
    assert result.table.schema.field("EXCLUDED_IN_DOWNSTREAM_ANALYSIS").type == pa.bool_()
    # File order is kept, and NA reads as missing.
    ids = result.table.column("SAMPLE_ID").to_pylist()
    assert ids == sorted(ids)
    assert result.table.column("SMOKING_HISTORY").null_count == cohort.missing_history
    write_clean(result, tmp_path / "c.parquet", tmp_path / "q.tsv", tmp_path / "c.json")
    quarantine = pd.read_csv(tmp_path / "q.tsv", sep="\t")
    assert quarantine["line"].tolist() == cohort.broken_lines
    assert json.loads((tmp_path / "c.json").read_text())["rows_in_cohort"] == result.table.num_rows


def _write(tmp_path, lines):
    path = tmp_path / "raw.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bad_numbers_duplicates_and_missing_ids_are_quarantined(tmp_path):
    path = _write(
        tmp_path,
        [
            "G1,G2,PATIENT_ID,SAMPLE_ID,NOTE",
            "1.0,2.0,P1,S1,ok",
            "abc,2.0,P2,S2,ok",
            "1.5,NA,P3,S3,ok",
            "1.5,2.5,P4,S1,dup",
            "1.5,2.5,P5,NA,noid",
            "3.0,4.0,P6,S6,a, b",
        ],
    )
    result = clean_csv(path, GENES, "SAMPLE_ID")
    reasons = {q["line"]: q["reason"] for q in result.quarantine}
    assert set(reasons) == {3, 5, 6}
    assert "column G1" in reasons[3] and "'abc'" in reasons[3]
    assert "repeats line 2" in reasons[5]
    assert "missing" in reasons[6]
    assert result.table.column("SAMPLE_ID").to_pylist() == ["S1", "S3", "S6"]
    assert result.table.column("G2").to_pylist()[1] is None
    assert result.table.column("NOTE").to_pylist()[2] == "a, b"
    assert result.accounting["repaired_lines"] == [7]


def test_quoted_commas_need_no_repair(tmp_path):
    path = _write(tmp_path, ["G1,PATIENT_ID,SAMPLE_ID,NOTE", '1.0,P1,S1,"a, b"'])
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.accounting["parsed_as_is"] == 1 and result.accounting["repaired"] == 0


def test_missing_file_and_columns_say_what_to_do(tmp_path):
    with pytest.raises(PanelMlpError, match="raw_csv"):
        clean_csv(tmp_path / "nope.csv", GENES, "SAMPLE_ID")
    path = _write(tmp_path, ["G1,PATIENT_ID,ID", "1.0,P1,S1"])
    with pytest.raises(PanelMlpError, match="line 1: no column 'SAMPLE_ID'"):
        clean_csv(path, GENES, "SAMPLE_ID")


def test_real_file_recovers_every_row(real_csv):
    result = clean_csv(real_csv, GENES, "SAMPLE_ID")
    acc = result.accounting
    assert result.table.num_rows == 99
    assert acc["repaired"] == 12 and acc["quarantined"] == 0 and acc["parsed_as_is"] == 87
    assert acc["repaired_lines"] == [9, 16, 29, 36, 38, 50, 51, 64, 68, 74, 87, 100]
    assert acc["n_genes"] == 100 and result.table.num_columns == 133
    line9 = result.table.slice(7, 1).to_pylist()[0]
    assert line9["SAMPLE_ID"] == "C3L-01046"
    assert line9["SMOKING_HISTORY"] == "Current reformed smoker, more than 15 years "
    # The tutorial's reader silently loses the 12 lines.
    tutorial = pd.read_csv(real_csv, on_bad_lines="skip")
    assert tutorial.shape == (87, 133)


def test_repaired_line_with_a_bad_number_is_quarantined_with_the_column(tmp_path):
    path = _write(
        tmp_path, ["G1,G2,PATIENT_ID,SAMPLE_ID,NOTE", "1.0,2.0,P1,S1,ok", "1.0,x2,P2,S2,a, b", "3.0,4.0,P3,S3,c, d"]
    )
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert [(q["line"], q["reason"]) for q in result.quarantine] == [(3, "column G2: 'x2' is not a number")]
    assert result.table.column("SAMPLE_ID").to_pylist() == ["S1", "S3"]
    assert result.accounting["repaired"] == 1 and result.accounting["repaired_lines"] == [4]


def test_blank_lines_are_counted_and_rows_keep_their_line_numbers(tmp_path):
    path = tmp_path / "raw.csv"
    path.write_text("G1,PATIENT_ID,SAMPLE_ID,NOTE\n1.0,P1,S1,ok\n\n\n2.0,P2,S2,a, b\n\n3.0,P3,S3,ok\n1.0,P4,S3,dup\n")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    acc = result.accounting
    assert acc["blank_lines"] == 3 and acc["lines_read"] == 8 and acc["data_lines"] == 4
    assert acc["repaired_lines"] == [5] and acc["quarantined_lines"] == [8]
    assert result.quarantine[0]["reason"] == "column SAMPLE_ID: sample id 'S3' repeats line 7"
    assert result.table.column("SAMPLE_ID").to_pylist() == ["S1", "S2", "S3"]
