"""Formats users bring: separators, compression, encodings, byte-order marks, parquet, two files."""

from __future__ import annotations

import bz2
import gzip
import lzma

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.io import InputSpec, clean_csv, clean_inputs
from panelmlp.reader import detect_separator, split_line
from panelmlp.synthetic import split_cohort, write_cohort

GENES = {"before_column": "PATIENT_ID"}
N_GENES = 12


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """60 samples, 12 genes, 4 repairable lines and 1 broken one."""
    path = tmp_path_factory.mktemp("small") / "cohort.csv"
    return write_cohort(path, n_samples=60, n_genes=N_GENES, n_malformed=4, n_broken=1, seed=5)


@pytest.fixture(scope="module")
def reference(small):
    return clean_csv(small.path, GENES, "SAMPLE_ID")


def _same_cohort(result, reference, genes=None):
    genes = genes or [f for f in reference.table.column_names if f in _genes(reference)]
    assert result.table.column("SAMPLE_ID").to_pylist() == reference.table.column("SAMPLE_ID").to_pylist()
    for g in genes:
        assert result.table.column(g).to_pylist() == reference.table.column(g).to_pylist(), g
    assert result.table.column("SMOKING_HISTORY").to_pylist() == reference.table.column("SMOKING_HISTORY").to_pylist()


def _genes(result):
    import json

    return json.loads(result.table.schema.metadata[b"panelmlp.genes"])


def _with_sep(text: str, sep: str) -> str:
    """A comma file with another separator: free-text commas stay commas (followed by a space)."""
    out = []
    for line in text.splitlines():
        out.append(line.replace(", ", "\0").replace(",", sep).replace("\0", ", "))
    return "\n".join(out) + "\n"


COMPRESSORS = {
    "none": lambda b: b,
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda b: pa.Codec("zstd").compress(b, asbytes=True),
}


@pytest.mark.parametrize("sep", [",", "\t", ";"], ids=["comma", "tab", "semicolon"])
@pytest.mark.parametrize("compression", list(COMPRESSORS))
def test_every_separator_and_compression_reads_the_same_cohort(small, reference, tmp_path, sep, compression):
    text = _with_sep(small.path.read_text(), sep) if sep != "," else small.path.read_text()
    path = tmp_path / f"cohort.txt.{compression}"
    path.write_bytes(COMPRESSORS[compression](text.encode()))
    result = clean_csv(path, GENES, "SAMPLE_ID")
    _same_cohort(result, reference)
    assert result.accounting["quarantined_lines"] == reference.accounting["quarantined_lines"] == small.broken_lines
    # Free-text commas split fields only in comma-separated files.
    assert result.accounting["repaired_lines"] == (reference.accounting["repaired_lines"] if sep == "," else [])
    lines = text.splitlines()
    assert [q["text"] for q in result.quarantine] == [lines[n - 1] for n in small.broken_lines]
    fmt = result.accounting["format"]
    assert {",": "comma", "\t": "tab", ";": "semicolon"}[sep] in fmt
    if compression != "none":
        assert {"gz": "gzip", "bz2": "bz2", "xz": "xz", "zst": "zstd"}[compression] in fmt
    # The temporary decompressed copy is gone.
    assert not list(tmp_path.glob("panelmlp-*"))


def test_byte_order_mark_is_stripped(small, reference, tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + small.path.read_bytes())
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert _genes(result)[0] == "SIG1"
    assert "byte-order mark" in result.accounting["format"]
    _same_cohort(result, reference)


def test_non_utf8_byte_is_named_with_its_line_and_the_setting(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("G1,G2,PATIENT_ID,SAMPLE_ID,NOTE\n1,2,P1,S1,ok\n3,4,P2,S2,Bogot\xe1\n".encode("latin-1"))
    with pytest.raises(PanelMlpError) as info:
        clean_csv(path, GENES, "SAMPLE_ID")
    message = str(info.value)
    assert "line 3, character 16: byte 0xe1 is not valid utf-8" in message and "input.encoding: latin-1" in message
    result = clean_csv(path, GENES, "SAMPLE_ID", encoding="latin-1")
    assert result.table.column("NOTE").to_pylist() == ["ok", "Bogotá"]


def test_utf16_is_recognised_and_readable_when_configured(tmp_path):
    path = tmp_path / "u16.csv"
    path.write_bytes("G1,PATIENT_ID,SAMPLE_ID\n1.5,P1,S1\n2.5,P2,S2\n".encode("utf-16"))
    with pytest.raises(PanelMlpError, match=r"UTF-16 byte-order mark: set input\.encoding: utf-16"):
        clean_csv(path, GENES, "SAMPLE_ID")
    result = clean_csv(path, GENES, "SAMPLE_ID", encoding="utf-16")
    assert result.table.column("G1").to_pylist() == [1.5, 2.5]


def test_parquet_input_gives_the_same_cohort(reference, tmp_path):
    path = tmp_path / "cohort.parquet"
    pq.write_table(reference.table, path)
    result = clean_csv(path, GENES, "SAMPLE_ID")
    _same_cohort(result, reference)
    acc = result.accounting
    assert acc["format"] == "parquet" and acc["data_lines"] == reference.table.num_rows and acc["quarantined"] == 0


def test_parquet_rows_with_bad_ids_are_quarantined_as_rendered_rows(tmp_path):
    path = tmp_path / "bad.parquet"
    pq.write_table(
        pa.table({"G1": [1.0, 2.0, 3.0], "PATIENT_ID": ["a", "b", "c"], "SAMPLE_ID": ["S1", "S1", None]}), path
    )
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert [(q["line"], q["text"]) for q in result.quarantine] == [(2, "2.0,b,S1"), (3, "3.0,c,NA")]
    assert result.accounting["rows_in_cohort"] == 1


def test_separator_detection_prefers_what_the_data_lines_agree_with(tmp_path):
    assert detect_separator("a\tb, c\td", ["1\t2\t3"], tmp_path) == "\t"
    assert detect_separator("a;b;c", ["1,5;2;3"], tmp_path) == ";"
    with pytest.raises(PanelMlpError, match=r"set input\.sep"):
        detect_separator("just_one_column", ["x"], tmp_path)


def test_decimal_comma_hint_and_setting(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("G1;G2;PATIENT_ID;SAMPLE_ID\n1,5;2,25;P1;S1\n3,0;4,5;P2;S2\n")
    with pytest.raises(PanelMlpError, match=r"decimal comma\? set input.decimal"):
        clean_csv(path, GENES, "SAMPLE_ID")
    result = clean_csv(path, GENES, "SAMPLE_ID", decimal=",")
    assert result.table.column("G2").to_pylist() == [2.25, 4.5]


def test_quoting_is_read_where_valid_and_kept_literally_where_not(tmp_path):
    lines = [
        "G1,PATIENT_ID,SAMPLE_ID,NOTE",
        '1.0,P1,S1,"quoted, with comma"',
        '2.0,P2,S2,"say ""hi"""',
        '3.0,P3,S3,a 5" lesion',
        '4.0,P4,S4,"big" lesion, left side',
        '5.0,P5,S5,"never closed',
        "6.0,P6,S6,ok",
    ]
    path = tmp_path / "q.csv"
    path.write_text("\n".join(lines) + "\n")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    notes = dict(
        zip(result.table.column("SAMPLE_ID").to_pylist(), result.table.column("NOTE").to_pylist(), strict=True)
    )
    assert notes == {
        "S1": "quoted, with comma",
        "S2": 'say "hi"',
        "S3": 'a 5" lesion',
        "S4": '"big" lesion, left side',
        "S6": "ok",
    }
    assert [(q["line"], q["text"]) for q in result.quarantine] == [(6, lines[5])]
    assert "not closed" in result.quarantine[0]["reason"]


def test_split_line_reads_strict_csv_and_repairs_the_rest():
    assert split_line('a,"b, c",d', ",", 3).fields == ["a", "b, c", "d"]
    assert split_line('a,"b" c, e,d', ",", 3).fields == ["a", '"b" c, e', "d"]
    assert split_line('a,"b,d', ",", 3).fields is None


def test_quarantine_keeps_the_raw_line_verbatim(tmp_path):
    lines = [
        "G1,G2,PATIENT_ID,SAMPLE_ID,FLAG",
        "1.00000001,2,P1,S1,TRUE",
        "1.00000001,x,P2,S2,TRUE",
        "3,4,P3,S1,TRUE",
        "5,6,P4,,TRUE",
    ]
    path = tmp_path / "v.csv"
    path.write_text("\r\n".join(lines) + "\r\n")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert {q["line"]: q["text"] for q in result.quarantine} == {3: lines[2], 4: lines[3], 5: lines[4]}


def test_header_only_and_empty_files_stop_with_one_line(tmp_path):
    header = tmp_path / "header.csv"
    header.write_text("G1,PATIENT_ID,SAMPLE_ID\n\n")
    with pytest.raises(PanelMlpError, match="no data lines below the header"):
        clean_csv(header, GENES, "SAMPLE_ID")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(PanelMlpError, match="the file is empty"):
        clean_csv(empty, GENES, "SAMPLE_ID")


def test_corrupt_compressed_file_says_so(small, tmp_path):
    path = tmp_path / "cut.csv.gz"
    data = gzip.compress(small.path.read_bytes())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PanelMlpError, match=r"gzip data cannot be read.*truncated or corrupt"):
        clean_csv(path, GENES, "SAMPLE_ID")


NON_FINITE = ["G1,G2,PATIENT_ID,SAMPLE_ID", "1,inf,P1,S1", "2,-Inf,P2,S2", "3,nan,P3,S3", "4,NA,P4,S4", "5,6,P5,S5"]


def test_non_finite_values_are_missing_and_counted(tmp_path):
    path = tmp_path / "nf.csv"
    path.write_text("\n".join(NON_FINITE) + "\n")
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.table.column("G2").to_pylist() == [None, None, None, None, 6.0]
    missing = result.accounting["missing"]
    assert missing["cells"] == 4 and missing["non_finite_cells"] == 3 and missing["policy"] == "impute"
    assert missing["by_gene"] == {"G2": 4}
    assert missing["by_sample"] == {"S1": 1, "S2": 1, "S3": 1, "S4": 1}


def test_missing_policy_drop_quarantines_the_samples_verbatim(tmp_path):
    path = tmp_path / "nf.csv"
    path.write_text("\n".join(NON_FINITE) + "\n")
    result = clean_csv(path, GENES, "SAMPLE_ID", missing="drop")
    assert result.table.column("SAMPLE_ID").to_pylist() == ["S5"]
    assert [(q["line"], q["text"]) for q in result.quarantine] == [(i + 1, NON_FINITE[i]) for i in range(1, 5)]
    assert all("clean.missing: drop" in q["reason"] for q in result.quarantine)
    acc = result.accounting
    assert acc["rows_in_cohort"] + acc["quarantined"] == acc["data_lines"] == 5
    assert acc["missing"]["samples_dropped"] == 4


def test_missing_policy_error_names_file_line_and_column(tmp_path):
    path = tmp_path / "nf.csv"
    path.write_text("\n".join(NON_FINITE) + "\n")
    with pytest.raises(PanelMlpError) as info:
        clean_csv(path, GENES, "SAMPLE_ID", missing="error")
    assert f"{path} line 2, column G2" in str(info.value) and "clean.missing: impute" in str(info.value)


@pytest.mark.parametrize("orientation", ["samples_in_rows", "genes_in_rows"])
@pytest.mark.parametrize("sep", [",", "\t"], ids=["comma", "tab"])
def test_two_files_give_the_one_table_cohort(small, reference, tmp_path, orientation, sep):
    expression, samples = tmp_path / "expr.txt", tmp_path / "samples.csv"
    split_cohort(small.path, N_GENES, expression, samples, orientation, sep)
    spec = InputSpec(expression=str(expression), samples=str(samples), orientation=orientation)
    result = clean_inputs(spec, GENES, "SAMPLE_ID")
    assert _genes(result) == _genes(reference)
    _same_cohort(result, reference)
    acc = result.accounting
    # The broken line is quarantined in the sample sheet; its expression row has no sample to join.
    join = acc["join"]
    assert join["matched"] == reference.table.num_rows
    assert len(join["expression_only"]) == 1 and join["samples_only"] == []
    for entry in acc["files"]:
        assert entry["parsed_as_is"] + entry["repaired"] + entry["quarantined"] == entry["data_lines"]
    sheet = next(e for e in acc["files"] if e["role"] == "samples")
    assert sheet["quarantined_lines"] == small.broken_lines
    assert sheet["repaired_lines"] == reference.accounting["repaired_lines"]


def test_join_lists_samples_found_in_one_file_only(tmp_path):
    expression, samples = tmp_path / "e.csv", tmp_path / "s.csv"
    expression.write_text("SAMPLE_ID,G1,G2\nS1,1,2\nS2,3,4\nS3,5,6\n")
    samples.write_text("SAMPLE_ID,SMOKING_HISTORY\nS2,smoker\nS3,non-smoker\nS4,smoker\n")
    result = clean_inputs(InputSpec(expression=str(expression), samples=str(samples)), GENES, "SAMPLE_ID")
    assert result.table.column("SAMPLE_ID").to_pylist() == ["S2", "S3"]
    join = result.accounting["join"]
    assert join["expression_only"] == ["S1"] and join["samples_only"] == ["S4"]
    reasons = {(q["file"], q["line"]): q for q in result.quarantine}
    assert (
        reasons[(str(expression), 2)]["text"] == "S1,1,2"
        and "not in the sample sheet" in reasons[(str(expression), 2)]["reason"]
    )
    assert (
        reasons[(str(samples), 4)]["text"] == "S4,smoker"
        and "no expression values" in reasons[(str(samples), 4)]["reason"]
    )
    for entry in result.accounting["files"]:
        assert entry["rows_in_cohort"] + entry["quarantined"] == entry["data_lines"]


def test_genes_in_rows_matrix_with_a_duplicated_gene_quarantines_the_second(tmp_path):
    expression, samples = tmp_path / "e.tsv", tmp_path / "s.csv"
    expression.write_text("gene\tS1\tS2\nG1\t1\t2\nG2\t3\t4\nG1\t5\t6\n")
    samples.write_text("SAMPLE_ID,SMOKING_HISTORY\nS1,smoker\nS2,non-smoker\n")
    spec = InputSpec(expression=str(expression), samples=str(samples), orientation="genes_in_rows")
    result = clean_inputs(spec, GENES, "SAMPLE_ID")
    assert _genes(result) == ["G1", "G2"]
    assert result.table.column("G1").to_pylist() == [1.0, 2.0]
    assert [(q["line"], q["reason"]) for q in result.quarantine] == [(4, "column gene: gene id 'G1' repeats line 2")]


def test_missing_values_in_two_files_drop_quarantines_both_lines(tmp_path):
    expression, samples = tmp_path / "e.csv", tmp_path / "s.csv"
    expression.write_text("SAMPLE_ID,G1,G2\nS1,1,NA\nS2,3,4\n")
    samples.write_text("SAMPLE_ID,SMOKING_HISTORY\nS1,smoker\nS2,non-smoker\n")
    spec = InputSpec(expression=str(expression), samples=str(samples))
    result = clean_inputs(spec, GENES, "SAMPLE_ID", missing="drop")
    assert [(q["file"], q["line"]) for q in result.quarantine] == [(str(expression), 2), (str(samples), 2)]
    for entry in result.accounting["files"]:
        assert entry["rows_in_cohort"] + entry["quarantined"] == entry["data_lines"] == 2


def test_sheet_without_the_sample_id_column_names_it(tmp_path):
    expression, samples = tmp_path / "e.csv", tmp_path / "s.csv"
    expression.write_text("SAMPLE_ID,G1\nS1,1\n")
    samples.write_text("ID,SMOKING_HISTORY\nS1,smoker\n")
    with pytest.raises(PanelMlpError, match=r"s.csv line 1: no column 'SAMPLE_ID'"):
        clean_inputs(InputSpec(expression=str(expression), samples=str(samples)), GENES, "SAMPLE_ID")


def test_whole_matrix_is_float32(small, tmp_path):
    result = clean_csv(small.path, GENES, "SAMPLE_ID")
    for g in _genes(result):
        assert result.table.schema.field(g).type == pa.float32()
    assert np.isfinite(np.asarray(result.table.column("SIG1").to_numpy())).all()


@pytest.mark.parametrize("sep", [",", "\t"], ids=["comma", "tab"])
def test_a_very_wide_header_is_read(tmp_path, sep):
    """A 30,000-gene header (about 200 KB) is one field to every other separator: no csv field limit may stop it."""
    genes = [f"G{i:05d}" for i in range(30000)]
    path = tmp_path / "wide.txt"
    path.write_text(
        sep.join([*genes, "PATIENT_ID", "SAMPLE_ID"]) + "\n" + sep.join(["1.5"] * 30000 + ["P1", "S1"]) + "\n"
    )
    result = clean_csv(path, GENES, "SAMPLE_ID")
    assert result.accounting["n_genes"] == 30000 and result.table.column("G29999").to_pylist() == [1.5]
