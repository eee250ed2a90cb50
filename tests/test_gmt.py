"""GMT gene-set collections: reading, resolving against the cohort, safe panel names."""

from __future__ import annotations

import gzip
import hashlib
import re
from pathlib import Path

import pytest
from panelmlp.errors import PanelMlpError
from panelmlp.gmt import (
    TABLE_COLUMNS,
    GeneSet,
    kept_sizes,
    panel_dir_name,
    panel_dir_names,
    read_gmt,
    resolve_sets,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "config" / "genesets" / "example.gmt"
_COHORT_HEADER = (
    # the expression columns of the shipped config's cohort, in file order
    "SALL1 NLGN4X RPS2P5 SCML2 GRIA3 BCHE THRB TLR3 PTPLAD2 RPS2P7 GRAMD1C ACTN2 ZCCHC24 TENM4 HBG2 SYBU TDRD12 "
    "ROBO2 ADD2 GIMAP2 SYT3 LINC00937 FIGNL1 GFAP SOX2 TLE4 OLIG2 CRISPLD1 EGFEM1P FIGN SERPINE2 OLR1 BAI3 SOX21 "
    "ST8SIA1 LRRC3 PKDCC CX3CR1 MID2 TMEM119 RASL11A METTL7A AGBL4 IZUMO4 SLC1A3 NCF1 GRIK1 HTRA1 FAM181B GINS2 "
    "PROC KLF9 S100B OVCH1 CLIC5 HNF4G CCND2 TLR10 CDH10 ACSM5 SMPDL3B COL11A2 ADCYAP1R1 HEPACAM SNHG14 DTL ITIH5 "
    "CLU C1orf94 TRIM22 MPP3 AFAP1L2 PWAR1 GALNT14 OLIG1 LRRN3 EFS FOCAD MSX1 SAMD4A FAM43B ST13P15 LPCAT2 LRRC4C "
    "GSE1 SLC16A9 S100A2 GRAMD3 BLNK ANKRD24 C4B BRCA2 CYP46A1 ANKRD22 HENMT1 HRASLS TMEM52B CPED1 NOL4 MOV10L1"
)
COHORT_GENES = _COHORT_HEADER.split()


def _write(tmp_path: Path, text: str, name: str = "sets.gmt") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _error(path: Path) -> str:
    with pytest.raises(PanelMlpError) as info:
        read_gmt(path)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message
    return message


def _gs(name: str, genes: str, line: int = 1) -> GeneSet:
    return GeneSet(name, "d", genes.split(), 0, line)


# ---------------------------------------------------------------- reading


def test_comments_blank_lines_crlf_bom_and_padding(tmp_path):
    text = "\ufeff# a comment\r\n\r\nA\tdesc a\t GFAP \tSOX2\t\t\r\n   \r\n  # indented comment\r\nB\t\tOLIG2\t\tOLIG1\t\r\n"
    sets = read_gmt(_write(tmp_path, text))
    assert sets == [
        GeneSet("A", "desc a", ["GFAP", "SOX2"], 0, 3),
        GeneSet("B", "", ["OLIG2", "OLIG1"], 0, 6),
    ]
    assert sets[0].n_listed == 2


def test_bom_does_not_stick_to_the_first_set_name(tmp_path):
    (gene_set,) = read_gmt(_write(tmp_path, "\ufeffA\td\tGFAP\n"))
    assert gene_set.name == "A"
    assert gene_set.line == 1


def test_old_mac_line_ends(tmp_path):
    sets = read_gmt(_write(tmp_path, "A\td\tGFAP\rB\td\tSOX2\r"))
    assert [(s.name, s.line) for s in sets] == [("A", 1), ("B", 2)]


def test_gzip_by_suffix(tmp_path):
    path = tmp_path / "sets.gmt.gz"
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("# c\nA\td\tGFAP\tSOX2\nB\td\tOLIG2\n")
    sets = read_gmt(path)
    assert [(s.name, s.genes, s.line) for s in sets] == [("A", ["GFAP", "SOX2"], 2), ("B", ["OLIG2"], 3)]


def test_broken_gzip_and_unnamed_gzip_are_errors(tmp_path):
    broken = _write(tmp_path, "A\td\tGFAP\n", "plain.gmt.gz")
    assert re.search(r"plain\.gmt\.gz: cannot read .*; fix: ", _error(broken))
    unnamed = tmp_path / "hidden.gmt"
    unnamed.write_bytes(gzip.compress(b"A\td\tGFAP\n"))
    assert "gzip-compressed but not named .gz; fix: add the .gz suffix" in _error(unnamed)


def test_not_utf8_names_the_line(tmp_path):
    path = tmp_path / "latin1.gmt"
    path.write_bytes("A\td\tGFAP\nB\tcaf\u00e9\tSOX2\n".encode("latin-1"))
    assert _error(path).startswith(f"{path}:2: not UTF-8 text; fix:")


def test_duplicate_genes_in_a_set_kept_once_in_order(tmp_path):
    (gene_set,) = read_gmt(_write(tmp_path, "A\td\tSOX2\tGFAP\tSOX2\tOLIG2\tGFAP\tSOX2\n"))
    assert gene_set.genes == ["SOX2", "GFAP", "OLIG2"]
    assert gene_set.n_duplicates == 3


def test_gene_symbols_are_case_sensitive_when_deduplicating(tmp_path):
    (gene_set,) = read_gmt(_write(tmp_path, "A\td\tGfap\tGFAP\n"))
    assert gene_set.genes == ["Gfap", "GFAP"]
    assert gene_set.n_duplicates == 0


def test_duplicate_set_names_name_both_lines(tmp_path):
    path = _write(tmp_path, "A\td\tGFAP\n# c\nB\td\tSOX2\nA\td\tOLIG2\n")
    assert _error(path) == (f"{path}:4: set A already defined on line 1; fix: rename or remove one of the two lines")


def test_space_separated_line_is_an_error_with_its_line(tmp_path):
    path = _write(tmp_path, "A\td\tGFAP\nB desc GFAP SOX2\n")
    message = _error(path)
    assert message.startswith(f"{path}:2: only 1 tab-separated field (it has spaces but no tab)")
    assert "fix: separate the fields with tabs, not spaces" in message


def test_single_word_line_is_an_error(tmp_path):
    path = _write(tmp_path, "LONELY\n")
    assert _error(path).startswith(f"{path}:1: only 1 tab-separated field, GMT needs")


def test_set_without_genes_is_an_error(tmp_path):
    for text in ("A\tjust a description\n", "A\td\t\t \t\n", "A\t\n"):
        path = _write(tmp_path, "OK\td\tGFAP\n" + text)
        assert _error(path).startswith(f"{path}:2: set A lists no genes; fix: add its genes")


def test_genes_separated_by_spaces_inside_a_field_is_an_error(tmp_path):
    path = _write(tmp_path, "A\td\tGFAP SOX2 OLIG2\n")
    assert _error(path) == (
        f"{path}:1: set A: gene field 'GFAP SOX2 OLIG2' contains whitespace; fix: separate genes with tabs, not spaces"
    )


def test_empty_set_name_is_an_error(tmp_path):
    path = _write(tmp_path, "\td\tGFAP\n")
    assert _error(path).startswith(f"{path}:1: empty set name; fix:")


def test_missing_and_empty_files(tmp_path):
    missing = tmp_path / "nope.gmt"
    assert _error(missing).startswith(f"gmt file {missing} not found; fix:")
    assert _error(tmp_path).startswith(f"gmt file {tmp_path} is a folder; fix: give the path of the GMT file itself")
    for text in ("", "# only a comment\n\n   \n"):
        path = _write(tmp_path, text)
        assert _error(path).startswith(f"{path}: no gene sets")


# ---------------------------------------------------------------- resolving


def test_missing_genes_are_dropped_and_coverage_recorded():
    sets = [_gs("A", "GFAP NOPE1 SOX2 NOPE2", 3), _gs("B", "OLIG2", 5)]
    table = resolve_sets(sets, ["SOX2", "GFAP", "OLIG2", "OTHER"])
    assert list(table.columns) == TABLE_COLUMNS
    a, b = table.to_dict("records")
    assert a["genes_found"] == ["GFAP", "SOX2"]  # listed order, not cohort order
    assert a["genes_missing"] == ["NOPE1", "NOPE2"]
    assert (a["line"], a["n_listed"], a["n_found"], a["coverage"]) == (3, 4, 2, 0.5)
    assert (a["status"], a["reason"], a["hint"]) == ("kept", "", "")
    assert (b["n_found"], b["coverage"], b["status"]) == (1, 1.0, "kept")


def test_set_with_no_gene_in_the_cohort_is_skipped_by_default():
    table = resolve_sets([_gs("A", "X Y")], ["GFAP"])
    row = table.iloc[0]
    assert (row.status, row.coverage) == ("skipped", 0.0)
    assert row.reason == "0 genes found, below min_size 1"


def test_size_limits_apply_to_found_genes_with_reasons():
    cohort = [f"G{i}" for i in range(20)]
    sets = [
        _gs("SMALL", "G0 G1 G2 X1"),  # 3 found
        _gs("ONE", "G0"),
        _gs("BIG", " ".join(cohort) + " X1 X2"),  # 20 found of 22 listed
        _gs("FITS", "G0 G1 G2 G3 G4 X1 X2 X3"),  # 8 listed, 5 found: the size passes on found genes
    ]
    table = resolve_sets(sets, cohort, min_size=5, max_size=10).set_index("name")
    assert table.loc["SMALL", "reason"] == "3 genes found, below min_size 5"
    assert table.loc["ONE", "reason"] == "1 gene found, below min_size 5"
    assert table.loc["BIG", "reason"] == "20 genes found, above max_size 10"
    assert table.loc["FITS", "status"] == "kept"
    assert list(table["status"]) == ["skipped", "skipped", "skipped", "kept"]


def test_coverage_filter_and_every_failing_reason_joined():
    cohort = [f"G{i}" for i in range(10)]
    sets = [
        _gs("LOW", "G0 G1 G2 G3 G4 G5 G6 X1 X2 X3"),  # 7/10
        _gs("EDGE", "G0 G1 G2 G3 G4 G5 G6 G7 X1 X2"),  # 8/10 == min_coverage: kept
        _gs("BOTH", "G0 X1 X2"),  # 1/3 and too small
    ]
    table = resolve_sets(sets, cohort, min_size=2, min_coverage=0.8).set_index("name")
    assert table.loc["LOW", "reason"] == "coverage 0.70 (7/10) below min_coverage 0.80"
    assert table.loc["EDGE", "status"] == "kept"
    assert table.loc["BOTH", "reason"] == "coverage 0.33 (1/3) below min_coverage 0.80; 1 gene found, below min_size 2"


def test_exact_threshold_is_not_lost_to_float_rounding():
    cohort = [f"G{i}" for i in range(3)]
    table = resolve_sets([_gs("A", "G0 G1 G2 X0 X1 X2 X3 X4 X5 X6")], cohort, min_coverage=0.3)
    assert table.iloc[0].status == "kept"  # 3/10 is 0.3, although 0.3 * 10 > 3 in floating point


def test_min_coverage_shown_unrounded_when_two_decimals_would_hide_it():
    table = resolve_sets([_gs("A", "G0 G1 G2 X0")], ["G0", "G1", "G2"], min_coverage=0.755)
    assert table.iloc[0].reason == "coverage 0.75 (3/4) below min_coverage 0.755"


def test_case_difference_hint():
    cohort = ["GFAP", "SOX2", "OLIG2"]
    sets = [_gs("MOUSE", "Gfap Sox2 Olig2 Nope"), _gs("MIXED", "GFAP SOX2 Olig2")]
    table = resolve_sets(sets, cohort, min_coverage=0.5).set_index("name")
    hint = "case differs: Gfap vs GFAP, Sox2 vs SOX2, Olig2 vs OLIG2"
    assert table.loc["MOUSE", "hint"] == hint
    assert table.loc["MOUSE", "reason"] == (
        f"coverage 0.00 (0/4) below min_coverage 0.50; 0 genes found, below min_size 1; {hint}"
    )
    # Kept sets carry the hint too, but their reason stays empty.
    assert table.loc["MIXED", "status"] == "kept"
    assert table.loc["MIXED", "reason"] == ""
    assert table.loc["MIXED", "hint"] == "case differs: Olig2 vs OLIG2"
    assert table.loc["MIXED", "genes_missing"] == ["Olig2"]


def test_case_hint_is_capped():
    cohort = [f"GENE{i}" for i in range(8)]
    table = resolve_sets([_gs("A", " ".join(f"gene{i}" for i in range(8)))], cohort)
    assert table.iloc[0].hint.endswith("gene4 vs GENE4 and 3 more")


def test_bad_filter_settings():
    sets = [_gs("A", "GFAP")]
    for kwargs, key in [
        ({"min_size": 0}, "min_size"),
        ({"min_size": 2.5}, "min_size"),
        ({"min_size": True}, "min_size"),
        ({"min_size": 5, "max_size": 4}, "max_size"),
        ({"min_coverage": 1.5}, "min_coverage"),
        ({"min_coverage": float("nan")}, "min_coverage"),
        ({"min_coverage": "0.8"}, "min_coverage"),
    ]:
        with pytest.raises(PanelMlpError, match=f"^gene-set {key} must be"):
            resolve_sets(sets, ["GFAP"], **kwargs)


def test_panel_names_come_from_the_whole_collection():
    whole = ["GO:1", "GO 1", "B"]
    part = resolve_sets([_gs("GO:1", "GFAP")], ["GFAP"], collection_names=whole)
    assert part["panel"].tolist() == [panel_dir_names(whole)[0]]  # as in the whole collection, not this part alone
    assert resolve_sets([_gs("GO:1", "GFAP")], ["GFAP"])["panel"].tolist() == ["GO_1"]


# ---------------------------------------------------------------- panel names


def test_safe_names_keep_msigdb_names_and_replace_the_rest():
    assert panel_dir_name("HALLMARK_APOPTOSIS") == "HALLMARK_APOPTOSIS"
    assert panel_dir_name("GO:0006915") == "GO_0006915"
    assert panel_dir_name("my set/v2") == "my_set_v2"
    assert panel_dir_name("..") == "_."
    assert panel_dir_name(".hidden") == "_hidden"
    assert panel_dir_name("-rf") == "_rf"
    assert panel_dir_name("Ä") == "_"
    assert len(panel_dir_name("x" * 300)) == 100


def test_safe_names_unique_within_a_collection_and_stable():
    names = ["GO:1", "GO_1", "GO/1", "a b", "HALLMARK_X", "hallmark_x", "ok", "x" * 150, "x" * 149 + "y"]
    result = panel_dir_names(names)
    assert all(re.fullmatch(r"[A-Za-z0-9_.-]+", r) for r in result)
    assert len({r.casefold() for r in result}) == len(names)  # unique even on case-insensitive file systems
    assert result[1] == "GO_1"  # the one name that was already safe keeps its form
    assert re.fullmatch(r"GO_1_[0-9a-f]{8}", result[0]) and re.fullmatch(r"GO_1_[0-9a-f]{8}", result[2])
    assert result[3] == "a_b" and result[6] == "ok"  # no collision, no suffix
    assert result[4].startswith("HALLMARK_X_") and result[5].startswith("hallmark_x_")  # differ only by case
    # Deterministic, and independent of the order of the collection.
    assert panel_dir_names(names) == result
    assert panel_dir_names(names[::-1]) == result[::-1]
    # The suffix is a stable hash of the original name, not of its position or of a process seed.
    assert result[0] == "GO_1_" + hashlib.sha1(b"GO:1").hexdigest()[:8]


def test_safe_names_reject_repeated_names():
    with pytest.raises(PanelMlpError, match=r"repeated: \['A'\]"):
        panel_dir_names(["A", "B", "A"])


def test_colliding_names_get_panel_suffixes_in_the_table():
    table = resolve_sets([_gs("GO:1", "GFAP"), _gs("GO 1", "GFAP")], ["GFAP"])
    assert table["panel"].str.fullmatch(r"GO_1_[0-9a-f]{8}").all()
    assert table["panel"].nunique() == 2


# ---------------------------------------------------------------- the shipped example


def test_example_collection_parses_and_resolves_against_the_cohort():
    sets = read_gmt(EXAMPLE)
    assert 8 <= len(sets) <= 10
    assert all(5 <= s.n_listed <= 12 and s.n_duplicates == 0 for s in sets)
    assert all(s.description.startswith("panelmlp example: ") for s in sets)
    assert len(COHORT_GENES) == len(set(COHORT_GENES)) == 100
    table = resolve_sets(sets, COHORT_GENES, min_size=5, max_size=12, min_coverage=0.8).set_index("name")
    assert (table["status"] == "kept").sum() >= 1 and (table["status"] == "skipped").sum() >= 1
    below = table[table["coverage"] < 0.8]
    above = table[(table["coverage"] >= 0.8) & (table["coverage"] < 1)]
    assert len(below) >= 1 and (below["status"] == "skipped").all()
    assert len(above) >= 1 and (above["status"] == "kept").all()
    assert table.loc["MICROGLIA_MARKERS", "reason"] == "coverage 0.62 (5/8) below min_coverage 0.80"
    assert table.loc["ASTROCYTE_MARKERS", "genes_missing"] == ["AQP4"]
    assert (table["hint"] == "").all()
    assert (table.index == table["panel"]).all()  # MSigDB-style names need no mapping


def test_example_collection_agrees_with_the_real_cohort_header(real_csv):
    header = real_csv.open(encoding="utf-8").readline().rstrip("\r\n").split(",")
    assert header[: header.index("PATIENT_ID")] == COHORT_GENES


@pytest.mark.parametrize(
    ("min_size", "max_size", "min_coverage"), [(1, None, 0.0), (2, 3, 0.5), (3, None, 0.8), (1, 2, 1.0)]
)
def test_kept_sizes_keep_what_resolve_sets_keeps(min_size, max_size, min_coverage):
    available = ["A", "B", "C", "D", "gfap"]
    sets = [
        GeneSet("ALL_IN", "", ["A", "B", "C"], 0, 1),
        GeneSet("HALF", "", ["A", "X", "B", "Y"], 0, 2),
        GeneSet("NONE", "", ["X", "Y"], 0, 3),
        GeneSet("ONE", "", ["D"], 0, 4),
        GeneSet("CASE", "", ["GFAP", "A", "B", "C", "D"], 0, 5),
    ]
    table = resolve_sets(sets, available, min_size, max_size, min_coverage)
    expected = [len(g) if st == "kept" else None for g, st in zip(table["genes_found"], table["status"], strict=True)]
    assert kept_sizes(sets, available, min_size, max_size, min_coverage) == expected
    assert None in expected and any(n is not None for n in expected)  # each case keeps some sets and skips some
