"""The bad-input matrix: every bad input ends in one line or in a run whose accounting shows what happened.

Each case writes a bad input into a temporary folder and runs the clean and
split steps the way their rule scripts do (``panelmlp.runner.run``). A case
either stops with exit status 1 and exactly one ``panelmlp error: ...`` line
that names the file, line, column or key and says what to do, no traceback,
and no output of the failed step left on disk; or it runs, and the files it
wrote prove the accounting:

- every input file: ``parsed_as_is + repaired + quarantined == data_lines`` and
  ``rows_in_cohort + quarantined == data_lines``, ``data_lines`` being the
  non-blank lines below the header the test wrote, and quarantine.tsv holds
  exactly the quarantined lines, each with its raw text verbatim;
- labels.json: ``labelled + missing_label + unmatched_label`` is the number
  of rows in cohort.parquet;
- splits.parquet: ``train + test == labelled`` in every split, no sample on
  both sides, and the test folds of a cross-validation repeat cover every
  labelled sample once.

Errors found before any job (a missing input path, a schema violation, ...)
are checked through Snakemake itself, at the end of the file.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import logging
import lzma
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml
from panelmlp.io import clean_step
from panelmlp.runner import run
from panelmlp.splits import split_step
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))
SAMPLE_ID = DEFAULT["sample_id"]
GENES = DEFAULT["genes"]
TARGET = DEFAULT["target"]
SPLIT = {**DEFAULT["split"], "cv_folds": 3, "cv_repeats": 1}  # a dozen samples: 3 folds

HEADER = ["G1", "G2", "G3", "PATIENT_ID", "SAMPLE_ID", "SMOKING_HISTORY"]
SMOKER = "Current smoker"
NON_SMOKER = "Lifelong non-smoker"
N = 12
CLEAN_OUTPUTS = ("cohort.parquet", "quarantine.tsv", "clean.json")
SPLIT_OUTPUTS = ("splits.parquet", "labels.json")


# --- writing inputs ------------------------------------------------------------------------------------


def rows(n: int = N) -> list[list[str]]:
    """``n`` good samples S1..Sn, smokers and non-smokers alternating (data line of Si: i + 1)."""
    return [
        [
            f"{1 + i / 10:.1f}",
            f"{2 + i / 10:.1f}",
            f"{3 + i / 10:.1f}",
            f"P{i}",
            f"S{i}",
            SMOKER if i % 2 else NON_SMOKER,
        ]
        for i in range(1, n + 1)
    ]


def table(body: list[list[str]] | None = None, header: list[str] = HEADER, sep: str = ",") -> list[str]:
    """Header and rows as text lines."""
    return [sep.join(header)] + [sep.join(r) for r in (rows() if body is None else body)]


def zstd(data: bytes) -> bytes:
    return pa.Codec("zstd").compress(data, asbytes=True)


COMPRESS: dict[str, Callable[[bytes], bytes]] = {
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": zstd,
}


@dataclass
class Work:
    """One case's inputs and config, and what the test knows about the files it wrote."""

    root: Path
    files: list[Path] = field(default_factory=list)
    input: dict = field(default_factory=dict)
    missing: str = "impute"
    genes: object = field(default_factory=lambda: dict(GENES))
    sample_id: str = SAMPLE_ID
    target: dict = field(default_factory=lambda: dict(TARGET))
    lines: dict[str, list[str]] = field(default_factory=dict)
    """Physical lines (no line ends) of each text file written, for the quarantine's raw text."""
    data_lines: dict[str, int] = field(default_factory=dict)
    """Non-blank lines below the header (rows, for parquet) of each file written."""

    def text(
        self,
        name: str,
        lines: list[str],
        *,
        encoding: str = "utf-8",
        bom: bool = False,
        compress: str | None = None,
        newline: str = "\n",
        input_file: bool = True,
    ) -> Path:
        path = self.root / name
        data = (newline.join(lines) + newline).encode(encoding)
        if bom:
            data = b"\xef\xbb\xbf" + data
        if compress:
            data = COMPRESS[compress](data)
        path.write_bytes(data)
        self.lines[str(path)] = list(lines)
        self.data_lines[str(path)] = sum(1 for line in lines[1:] if line)
        if input_file:
            self.files.append(path)
        return path

    def parquet(self, name: str, data: pa.Table) -> Path:
        path = self.root / name
        pq.write_table(data, path)
        self.data_lines[str(path)] = data.num_rows
        self.files.append(path)
        return path

    def two_files(self, expression: Path, samples: Path, **settings: str) -> None:
        self.files = [expression, samples]
        self.input.update({"expression": str(expression), "samples": str(samples), **settings})


@dataclass
class Result:
    """What a case left: the outputs read back, or the error line."""

    work: Work
    results: Path
    stage: str
    stderr: str
    error: str | None = None
    clean: dict = field(default_factory=dict)
    quarantine: list[dict] = field(default_factory=list)
    cohort: pa.Table | None = None
    labels: dict = field(default_factory=dict)
    splits: pd.DataFrame | None = None

    def column(self, name: str) -> list:
        assert self.cohort is not None
        return self.cohort.column(name).to_pylist()

    def entry(self, name: str) -> dict:
        """The clean.json entry of the input file called ``name``."""
        (found,) = [e for e in self.clean["files"] if Path(e["file"]).name == name]
        return found

    def quarantined(self, name: str) -> dict[int, dict]:
        """Quarantine rows of file ``name`` by line."""
        return {q["line"]: q for q in self.quarantine if Path(q["file"]).name == name and q["line"] is not None}


@dataclass
class Case:
    id: str
    make: Callable[[Work], Callable[[Result], None] | None]
    fails_at: str | None = None
    message: tuple[str, ...] = ()
    xfail: str | None = None


CASES: list[Case] = []


def case(name: str, fails_at: str | None = None, message: tuple[str, ...] = (), xfail: str | None = None):
    """Register a case: ``make(work)`` writes the input and returns a check of the outputs (or None).

    ``fails_at`` is the step that must stop ("clean" or "split") with ``message``'s words in its one line;
    ``xfail`` the library bug that makes it fail for now.
    """

    def register(make):
        CASES.append(Case(name, make, fails_at, message, xfail))
        return make

    return register


# --- running the steps and checking what they left -----------------------------------------------------


@pytest.fixture(autouse=True)
def _release_logging():
    """The runner points the root logger at the test's stderr and log file: detach them afterwards."""
    yield
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()


def drive(work: Work, capsys: pytest.CaptureFixture[str]) -> Result:
    """The clean step, then (when it succeeds) the split step, as their rule scripts run them."""
    results, logs = work.root / "results", work.root / "logs"
    for folder in (results / "clean", results / "splits", logs):
        folder.mkdir(parents=True)
    section = {**DEFAULT["input"], **work.input}
    stage = "clean"
    try:
        run(
            [str(logs / "clean.log")],
            clean_step,
            exit_when_done=False,
            files=[str(f) for f in work.files],
            input=section,
            genes=work.genes,
            sample_id=work.sample_id,
            missing=work.missing,
            cohort=str(results / "clean" / "cohort.parquet"),
            quarantine=str(results / "clean" / "quarantine.tsv"),
            accounting=str(results / "clean" / "clean.json"),
        )
        stage = "split"
        run(
            [str(logs / "split.log")],
            split_step,
            exit_when_done=False,
            cohort=str(results / "clean" / "cohort.parquet"),
            sample_id=work.sample_id,
            target=work.target,
            split=SPLIT,
            out_splits=str(results / "splits" / "splits.parquet"),
            out_labels=str(results / "splits" / "labels.json"),
        )
        stage = "done"
    except SystemExit as exc:
        assert exc.code == 1, f"exit status {exc.code!r}"
    stderr = capsys.readouterr().err
    return Result(work, results, stage, stderr)


def error_line(text: str) -> str:
    """The one ``panelmlp error:`` line of a step's output, its message from ``panelmlp error:`` on."""
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "panelmlp error:" in line]
    assert len(lines) == 1, text
    return lines[0][lines[0].index("panelmlp error:") :]


def read_quarantine(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as handle:
        found = list(csv.DictReader(handle, delimiter="\t"))
    for q in found:
        q["line"] = int(q["line"]) if q["line"] else None
    return found


def check_clean(result: Result) -> None:
    """Read the clean outputs back and check that every data line of every file is accounted for."""
    folder = result.results / "clean"
    assert sorted(p.name for p in folder.iterdir()) == sorted(CLEAN_OUTPUTS)  # no temporary copy left
    result.clean = json.loads((folder / "clean.json").read_text(encoding="utf-8"))
    result.quarantine = read_quarantine(folder / "quarantine.tsv")
    result.cohort = pq.read_table(folder / "cohort.parquet")
    acc, n_rows, work = result.clean, result.cohort.num_rows, result.work
    assert acc["rows_in_cohort"] == n_rows > 0
    assert acc["quarantined"] == len(result.quarantine)
    assert len(acc["files"]) == len(work.files)
    for entry in acc["files"]:
        name = entry["file"]
        assert entry["data_lines"] == work.data_lines[name], entry
        assert entry["parsed_as_is"] + entry["repaired"] + entry["quarantined"] == entry["data_lines"], entry
        assert entry["rows_in_cohort"] + entry["quarantined"] == entry["data_lines"], entry
        assert len(entry["repaired_lines"]) == entry["repaired"]
        if entry.get("rows_are") != "genes":
            assert entry["rows_in_cohort"] == n_rows, entry
        lines = sorted(q["line"] for q in result.quarantine if q["file"] == name and q["line"] is not None)
        assert lines == entry["quarantined_lines"] and len(lines) == entry["quarantined"], entry
        for q in result.quarantine:
            if q["file"] == name and q["line"] is None:  # a sample is a column of a genes-in-rows matrix
                assert entry.get("rows_are") == "genes" and q["text"].startswith("(column "), q
            elif q["file"] == name and name in work.lines:
                assert q["text"] == work.lines[name][q["line"] - 1], q  # the raw line, verbatim
            assert q["reason"], q
    if len(acc["files"]) == 1:
        assert acc["rows_in_cohort"] + acc["quarantined"] == acc["data_lines"]
    ids = result.column(work.sample_id)
    assert len(set(ids)) == len(ids) and all(ids), ids
    missing = acc["missing"]
    assert missing["cells"] == sum(missing["by_gene"].values()) == sum(missing["by_sample"].values())
    if missing["policy"] == "impute":
        genes = json.loads(result.cohort.schema.metadata[b"panelmlp.genes"])
        assert missing["cells"] == sum(result.cohort.column(g).null_count for g in genes)


def check_split(result: Result) -> None:
    """Read the split outputs back and check that every cohort row and every labelled sample is accounted for."""
    folder = result.results / "splits"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SPLIT_OUTPUTS)
    labels = result.labels = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    splits = result.splits = pd.read_parquet(folder / "splits.parquet")
    assert result.cohort is not None
    assert labels["samples"] == result.cohort.num_rows
    assert labels["labelled"] + labels["missing_label"] + labels["unmatched_label"] == labels["samples"]
    assert sum(labels["class_counts"].values()) == labels["labelled"]
    assert sum(labels["unmatched_values"].values()) == labels["unmatched_label"]
    labelled = None
    for split_id, part in splits.groupby("split_id"):
        train = set(part.loc[part["role"] == "train", "sample_id"])
        test = set(part.loc[part["role"] == "test", "sample_id"])
        assert len(part) == len(train) + len(test) == labels["labelled"], split_id
        assert not train & test, split_id
        labelled = labelled or train | test
        assert train | test == labelled, split_id
    assert labelled is not None and labelled <= set(result.column(result.work.sample_id))
    cv = splits[(splits["kind"] == "cv") & (splits["role"] == "test")]
    for _, folds in cv.groupby(cv["split_id"].str.extract(r"^(cv_r\d+)_", expand=False)):
        assert sorted(folds["sample_id"]) == sorted(labelled)


def check_failure(result: Result, spec: Case) -> None:
    """One error line with the expected words; the failed step left nothing, the steps before it their outputs."""
    assert result.stage == spec.fails_at, f"stopped at {result.stage}, expected {spec.fails_at}:\n{result.stderr}"
    result.error = error_line(result.stderr)
    for words in spec.message:
        assert words in result.error, f"{words!r} not in: {result.error}"
    log = (result.work.root / "logs" / f"{spec.fails_at}.log").read_text(encoding="utf-8")
    assert error_line(log) == result.error
    if spec.fails_at == "clean":
        assert not list((result.results / "clean").iterdir())
    else:
        check_clean(result)
    assert not list((result.results / "splits").iterdir())


def params(cases: list[Case]) -> list:
    marks = lambda c: [pytest.mark.xfail(strict=True, reason=c.xfail)] if c.xfail else []  # noqa: E731
    return [pytest.param(c, id=c.id, marks=marks(c)) for c in cases]


# --- the cases: formats ---------------------------------------------------------------------------------


@case("utf8-byte-order-mark")
def _(w: Work):
    w.text("bom.csv", table(), bom=True)

    def check(r: Result) -> None:
        assert "utf-8 with byte-order mark" in r.clean["format"]
        assert json.loads(r.cohort.schema.metadata[b"panelmlp.genes"]) == ["G1", "G2", "G3"]
        assert r.clean["rows_in_cohort"] == N and r.quarantine == []

    return check


def _compressed(kind: str, name: str):
    def make(w: Work):
        body = rows()
        body[2][5] = "Current reformed smoker, more than 15 years"  # repaired (line 4)
        del body[6][3]  # too few fields (line 8): its raw text comes back decompressed
        w.text(f"cohort.csv.{kind}", table(body), compress=kind)

        def check(r: Result) -> None:
            assert f"{name}-compressed" in r.clean["format"]
            assert r.clean["repaired_lines"] == [4] and r.clean["quarantined_lines"] == [8]
            assert r.quarantined(f"cohort.csv.{kind}")[8]["reason"] == "has 5 fields, expected 6 (line is truncated)"

        return check

    return make


for _kind, _name in (("gz", "gzip"), ("bz2", "bz2"), ("xz", "xz"), ("zst", "zstd")):
    case(f"{_name}-compressed")(_compressed(_kind, _name))


@case("tab-separated")
def _(w: Work):
    body = rows()
    body[0][5] = "Current reformed smoker, more than 15 years"  # a comma is text in a tab-separated file
    w.text("cohort.tsv", table(body, sep="\t"))

    def check(r: Result) -> None:
        assert r.clean["format"].startswith("tab-separated text")
        assert r.clean["repaired"] == 0 and r.column("SMOKING_HISTORY")[0] == body[0][5]
        assert r.labels["class_counts"] == {"non-smoker": 6, "smoker": 6}

    return check


@case("semicolon-separated")
def _(w: Work):
    w.text("cohort.csv", table(sep=";"))

    def check(r: Result) -> None:
        assert r.clean["format"].startswith("semicolon-separated text")
        assert r.column("G3")[:2] == pytest.approx([3.1, 3.2])

    return check


@case("pipe-separated-without-input.sep", "clean", ("cohort.txt line 1", "single column", "set input.sep"))
def _(w: Work):
    w.text("cohort.txt", table(sep="|"))


@case("pipe-separated-with-input.sep")
def _(w: Work):
    w.text("cohort.txt", table(sep="|"))
    w.input["sep"] = "|"

    def check(r: Result) -> None:
        assert r.clean["format"].startswith("'|'-separated text") and r.clean["rows_in_cohort"] == N

    return check


@case("crlf-line-ends")
def _(w: Work):
    body = rows()
    del body[3][4]  # line 5: too few fields
    w.text("windows.csv", table(body), newline="\r\n")

    def check(r: Result) -> None:
        assert not any(v.endswith("\r") for v in r.column("SMOKING_HISTORY"))
        assert r.quarantined("windows.csv")[5]["text"] == ",".join(body[3])  # without its \r
        assert r.labels["missing_label"] == r.labels["unmatched_label"] == 0

    return check


@case("blank-lines-in-the-middle")
def _(w: Work):
    lines = table()
    lines[4:4] = ["", ""]  # blank lines 5 and 6
    lines[10] = lines[10].replace("S8", "")  # line 11: sample id missing
    w.text("gaps.csv", [*lines, ""])

    def check(r: Result) -> None:
        acc = r.clean
        assert acc["blank_lines"] == 3 and acc["lines_read"] == 16 and acc["data_lines"] == N
        assert acc["quarantined_lines"] == [11]
        assert "sample id is missing" in r.quarantined("gaps.csv")[11]["reason"]

    return check


@case("parquet-input")
def _(w: Work):
    body = rows()
    data = pa.table(
        {
            "G1": pa.array([float(r[0]) for r in body]),
            "G2": pa.array([int(float(r[1]) * 10) for r in body]),  # integers are expression values too
            "G3": pa.array([float(r[2]) for r in body], pa.float32()),
            "PATIENT_ID": [r[3] for r in body],
            "SAMPLE_ID": [None if i == 2 else r[4] for i, r in enumerate(body)],  # row 3: no id
            "SMOKING_HISTORY": [r[5] for r in body],
        }
    )
    w.parquet("cohort.parquet", data)

    def check(r: Result) -> None:
        assert r.clean["format"] == "parquet" and r.clean["quarantined_lines"] == [3]
        q = r.quarantined("cohort.parquet")[3]
        assert q["reason"] == "column SAMPLE_ID: sample id is missing" and q["text"].endswith(",P3,NA,Current smoker")
        assert r.cohort.schema.field("G2").type == pa.float32()
        assert r.column("G2")[:2] == [21.0, 22.0]

    return check


@case(
    "parquet-text-gene-column",
    "clean",
    ("expr.parquet: none of the 12 data lines", "line 1: column G2: 'low' is not a number", "fix the input"),
)
def _(w: Work):
    body = rows()
    data = pa.table(
        {
            "G1": [float(r[0]) for r in body],
            "G2": ["high" if i % 2 else "low" for i in range(N)],
            "PATIENT_ID": [r[3] for r in body],
            "SAMPLE_ID": [r[4] for r in body],
            "SMOKING_HISTORY": [r[5] for r in body],
        }
    )
    w.parquet("expr.parquet", data)


@case("parquet-text-gene-column-one-bad-cell")
def _(w: Work):
    body = rows()
    data = pa.table(
        {
            "G1": [r[0] for r in body],  # numbers stored as text are read as numbers
            "G2": ["n/a" if i == 2 else r[1] for i, r in enumerate(body)],
            "PATIENT_ID": [r[3] for r in body],
            "SAMPLE_ID": [r[4] for r in body],
            "SMOKING_HISTORY": [r[5] for r in body],
        }
    )
    w.parquet("expr.parquet", data)

    def check(r: Result) -> None:
        q = r.quarantined("expr.parquet")
        assert list(q) == [3] and q[3]["reason"] == "column G2: 'n/a' is not a number"
        assert q[3]["text"] == "1.3,n/a,P3,S3,Current smoker"

    return check


@case(
    "parquet-quarantined-row-text-as-stored",
)
def _(w: Work):
    body = rows()
    data = pa.table(
        {
            "G1": [float(r[0]) for r in body],
            "G2": [int(float(r[1]) * 10) for r in body],
            "PATIENT_ID": [r[3] for r in body],
            "SAMPLE_ID": [None if i == 2 else r[4] for i, r in enumerate(body)],  # row 3: no id
            "SMOKING_HISTORY": [r[5] for r in body],
        }
    )
    w.parquet("cohort.parquet", data)

    def check(r: Result) -> None:
        assert r.quarantined("cohort.parquet")[3]["text"] == "1.3,23,P3,NA,Current smoker"

    return check


# --- the cases: encodings and damaged files -------------------------------------------------------------


def _latin1_rows() -> list[list[str]]:
    body = rows()
    body[3][5] = "Lifelong non-smoker (Bogotá)"  # line 5
    body[7][5] = "Ex-fumador, más de 15 años"  # line 9: two free-text pieces, one unquoted comma -> repaired
    return body


@case(
    "latin-1-byte-without-input.encoding",
    "clean",
    ("latin.csv line 5, character 45: byte 0xe1 is not valid utf-8", "set input.encoding: latin-1"),
)
def _(w: Work):
    w.text("latin.csv", table(_latin1_rows()), encoding="latin-1")


@case("latin-1-with-input.encoding")
def _(w: Work):
    body = _latin1_rows()
    del body[9][0]  # line 11: too few fields; its raw text comes back decoded
    w.text("latin.csv", table(body), encoding="latin-1")
    w.input["encoding"] = "latin-1"

    def check(r: Result) -> None:
        assert r.clean["format"].endswith("latin-1")
        assert r.column("SMOKING_HISTORY")[3] == "Lifelong non-smoker (Bogotá)"
        assert r.clean["repaired_lines"] == [9] and r.clean["quarantined_lines"] == [11]
        assert r.labels["unmatched_values"] == {"Ex-fumador, más de 15 años": 1}

    return check


@case("unknown-input.encoding", "clean", ("config input.encoding: 'latin-9x' is not an encoding", "e.g. latin-1"))
def _(w: Work):
    w.text("cohort.csv", table())
    w.input["encoding"] = "latin-9x"


@case(
    "utf-16-without-input.encoding", "clean", ("u16.csv line 1", "UTF-16 byte-order mark: set input.encoding: utf-16")
)
def _(w: Work):
    w.text("u16.csv", table(), encoding="utf-16")


@case("utf-16-with-input.encoding")
def _(w: Work):
    body = rows()
    body[5][5] = "Current reformed smoker, more than 15 years"  # line 7, repaired
    w.text("u16.csv", table(body), encoding="utf-16")
    w.input["encoding"] = "utf-16"

    def check(r: Result) -> None:
        assert r.clean["format"].endswith("utf-16") and r.clean["repaired_lines"] == [7]
        assert r.column("G1")[:2] == pytest.approx([1.1, 1.2])

    return check


@case("truncated-gzip", "clean", ("cut.csv.gz: the gzip data cannot be read", "truncated or corrupt", "again"))
def _(w: Work):
    path = w.text("cut.csv.gz", table(rows(400)), compress="gz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


@case("empty-file", "clean", ("empty.csv: the file is empty (no header line)", "expected a table with a header"))
def _(w: Work):
    (w.root / "empty.csv").write_bytes(b"")
    w.files.append(w.root / "empty.csv")


@case("header-only", "clean", ("header.csv: no data lines below the header", "the table is empty"))
def _(w: Work):
    w.text("header.csv", [",".join(HEADER), "", ""])


@case("raw-csv-not-found", "clean", ("cohort.cvs: raw CSV not found", "set raw_csv"))
def _(w: Work):
    w.text("cohort.csv", table(), input_file=False)
    w.files.append(w.root / "cohort.cvs")


@case(
    "folder-instead-of-a-file",
    "clean",
    ("data is a folder", "raw_csv"),
)
def _(w: Work):
    (w.root / "data").mkdir()
    w.text("data/cohort.csv", table(), input_file=False)
    w.files.append(w.root / "data")


# --- the cases: header and ids --------------------------------------------------------------------------


@case("duplicated-column", "clean", ("dup.csv line 1: duplicated column names ['G2']", "rename them"))
def _(w: Work):
    w.text("dup.csv", table(header=["G1", "G2", "G2", *HEADER[3:]]))


@case("empty-column-name", "clean", ("noname.csv line 1: column(s) [3] have no name", "give every column a name"))
def _(w: Work):
    w.text("noname.csv", table(header=["G1", "G2", " ", *HEADER[3:]]))


@case("no-sample-id-column", "clean", ("cohort.csv line 1: no column 'SAMPLE_ID'", "Set sample_id in the config"))
def _(w: Work):
    w.text("cohort.csv", table(header=[*HEADER[:4], "SAMPLE", HEADER[5]]))


@case(
    "sample-id-column-name-with-trailing-space",
    "clean",
    ("wide.csv line 1: no column 'SAMPLE_ID'", "'SAMPLE_ID '", "Set sample_id"),
)
def _(w: Work):
    header = ["G1", "G2", "G3", "G4", "G5", "G6", "PATIENT_ID", "SAMPLE_ID ", "SMOKING_HISTORY"]
    w.text("wide.csv", table([[*r[:3], "1", "2", "3", *r[3:]] for r in rows()], header=header))


@case(
    "genes.before_column-missing",
    "clean",
    ("config genes.before_column: column 'PATIENT_ID' is not in the CSV header", "choose one of the header's columns"),
)
def _(w: Work):
    w.text("cohort.csv", table([[*r[:3], *r[4:]] for r in rows()], header=["G1", "G2", "G3", *HEADER[4:]]))


@case("input.sep-not-one-character", "clean", ("config input.sep: '::' is not one character", "use ',', 'tab'"))
def _(w: Work):
    w.text("cohort.csv", table())
    w.input["sep"] = "::"


@case("duplicated-sample-id")
def _(w: Work):
    body = rows()
    body[6][4] = "S3"  # line 8 repeats line 4's id
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert list(q) == [8] and q[8]["reason"] == "column SAMPLE_ID: sample id 'S3' repeats line 4"
        assert q[8]["id"] == "S3" and r.column("SAMPLE_ID").count("S3") == 1

    return check


@case("missing-sample-id")
def _(w: Work):
    body = rows()
    body[1][4] = ""  # line 3
    body[8][4] = "NA"  # line 10
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert sorted(q) == [3, 10]
        assert all(x["reason"] == "column SAMPLE_ID: sample id is missing" for x in q.values())

    return check


@case("whitespace-around-ids")
def _(w: Work):
    body = rows()
    body[2][4] = "S3 "  # line 4
    body[3][4] = " S4"  # line 5
    body[9][4] = "S3\t"  # line 11: the same id once trimmed
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        assert r.column("SAMPLE_ID")[2:4] == ["S3", "S4"]
        assert r.quarantined("cohort.csv")[11]["reason"] == "column SAMPLE_ID: sample id 'S3' repeats line 4"

    return check


# --- the cases: values ----------------------------------------------------------------------------------


def _gaps(w: Work, missing: str) -> list[list[str]]:
    """NA in G2 on line 4, an empty G3 cell on line 7."""
    body = rows()
    body[2][1] = "NA"
    body[5][2] = ""
    w.text("gaps.csv", table(body))
    w.missing = missing
    return body


@case("non-finite-cells")
def _(w: Work):
    body = rows()
    body[0][0], body[4][1], body[9][2] = "inf", "-inf", "nan"
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        missing = r.clean["missing"]
        assert missing["cells"] == missing["non_finite_cells"] == 3
        assert missing["by_gene"] == {"G1": 1, "G2": 1, "G3": 1}
        assert missing["by_sample"] == {"S1": 1, "S5": 1, "S10": 1}
        assert r.column("G2")[4] is None and r.clean["rows_in_cohort"] == N and r.quarantine == []

    return check


@case("missing-cells-impute")
def _(w: Work):
    _gaps(w, "impute")

    def check(r: Result) -> None:
        missing = r.clean["missing"]
        assert missing["policy"] == "impute" and missing["cells"] == 2 and missing["non_finite_cells"] == 0
        assert missing["by_gene"] == {"G2": 1, "G3": 1} and missing["by_sample"] == {"S3": 1, "S6": 1}
        assert missing["samples_dropped"] == 0 and r.clean["rows_in_cohort"] == N
        assert r.column("G2")[2] is None and r.column("G3")[5] is None

    return check


@case("missing-cells-drop")
def _(w: Work):
    _gaps(w, "drop")

    def check(r: Result) -> None:
        q = r.quarantined("gaps.csv")
        assert sorted(q) == [4, 7] and r.clean["missing"]["samples_dropped"] == 2
        assert (
            q[4]["reason"]
            == "column G2: expression value missing or not finite (1 in this sample; clean.missing: drop)"
        )
        assert q[7]["reason"].startswith("column G3: ") and "S3" not in r.column("SAMPLE_ID")

    return check


@case(
    "missing-cells-error",
    "clean",
    ("gaps.csv line 4, column G2: expression value missing", "2 such cells", "set clean.missing: impute"),
)
def _(w: Work):
    _gaps(w, "error")


@case("non-number-cell")
def _(w: Work):
    body = rows()
    body[4][2] = "high"  # line 6
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert list(q) == [6] and q[6]["reason"] == "column G3: 'high' is not a number" and q[6]["id"] == "S5"

    return check


def _decimal_comma(w: Work) -> None:
    body = [[v.replace(".", ",") for v in r[:3]] + r[3:] for r in rows()]
    w.text("eu.csv", table(body, sep=";"))


@case(
    "decimal-comma-without-input.decimal",
    "clean",
    ("eu.csv: none of the 12 data lines", "line 2: column G1: '1,1' is not a number", "set input.decimal: ','"),
)
def _(w: Work):
    _decimal_comma(w)


@case("decimal-comma-with-input.decimal")
def _(w: Work):
    _decimal_comma(w)
    w.input["decimal"] = ","

    def check(r: Result) -> None:
        assert r.column("G1")[:3] == pytest.approx([1.1, 1.2, 1.3]) and r.quarantine == []

    return check


# --- the cases: malformed lines -------------------------------------------------------------------------


@case("too-few-fields")
def _(w: Work):
    body = rows()
    del body[2][5]  # line 4
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert list(q) == [4] and q[4]["reason"] == "has 5 fields, expected 6 (line is truncated)"

    return check


@case("unquoted-commas-repaired")
def _(w: Work):
    body = rows()
    body[1][5] = "Current reformed smoker, more than 15 years, quit"  # line 3: two unquoted commas
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        assert r.clean["repaired_lines"] == [3] and r.clean["repaired"] == 1 and r.quarantine == []
        assert r.column("SMOKING_HISTORY")[1] == body[1][5]
        assert r.labels["class_counts"] == {"non-smoker": 5, "smoker": 7}

    return check


@case("unquoted-commas-unrepairable")
def _(w: Work):
    body = rows()
    body[1][5] = "Current,smoker"  # line 3: no space after the comma, so not a continuation
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert list(q) == [3] and "has 7 fields, expected 6" in q[3]["reason"]
        assert q[3]["reason"].endswith("quote the free text") and r.clean["repaired"] == 0

    return check


@case("quoted-field-spanning-two-lines")
def _(w: Work):
    lines = table()
    lines[6:7] = [lines[6].replace(NON_SMOKER, '"Lifelong'), ' non-smoker"']  # lines 7 and 8
    lines[3] = lines[3].replace(SMOKER, '"Current smoker, daily"')  # line 4: properly quoted, read as CSV
    w.text("cohort.csv", lines)

    def check(r: Result) -> None:
        q = r.quarantined("cohort.csv")
        assert sorted(q) == [7, 8] and r.clean["data_lines"] == N + 1
        assert "a double-quoted field is not closed on this line" in q[7]["reason"]
        assert "keep each row on one line" in q[7]["reason"]
        assert "has 1 fields, expected 6" in q[8]["reason"]
        assert r.column("SMOKING_HISTORY")[2] == "Current smoker, daily" and r.clean["repaired"] == 0

    return check


@case(
    "every-line-quarantined",
    "clean",
    ("broken.csv: none of the 12 data lines gave a usable sample", "(first: ", "line 2: has 5 fields", "fix the input"),
)
def _(w: Work):
    w.text("broken.csv", table([r[:5] for r in rows()]))


# --- the cases: labels and splits -----------------------------------------------------------------------


@case("missing-and-unmatched-labels")
def _(w: Work):
    body = rows(14)
    body[0][5] = "NA"
    body[1][5] = ""
    body[2][5] = "unknown"
    w.text("cohort.csv", table(body))

    def check(r: Result) -> None:
        labels = r.labels
        assert labels["samples"] == 14 and labels["labelled"] == 11
        assert labels["missing_label"] == 2 and labels["unmatched_label"] == 1
        assert labels["unmatched_values"] == {"unknown": 1}
        assert not set(r.splits["sample_id"]) & {"S1", "S2", "S3"}

    return check


@case(
    "one-class-only",
    "split",
    (
        "config target.classes: class(es) ['non-smoker'] match no sample",
        "(non-smoker: 0, smoker: 12)",
        "fix the regexes",
    ),
)
def _(w: Work):
    body = rows()
    for r in body:
        r[5] = SMOKER
    w.text("cohort.csv", table(body))


@case(
    "class-regex-matches-nothing",
    "split",
    (
        "class(es) ['former'] match no sample of column SMOKING_HISTORY",
        "former: 0",
        "leave that class out of target.classes",
    ),
)
def _(w: Work):
    w.text("cohort.csv", table())
    w.target = {**TARGET, "classes": {**TARGET["classes"], "former": "former smoker"}}


@case("target-column-missing", "split", ("config target.column: 'SMOKING' is not a column of", "cohort.parquet"))
def _(w: Work):
    w.text("cohort.csv", table())
    w.target = {**TARGET, "column": "SMOKING"}


@case("too-few-labelled-after-quarantine", "split", ("only 3 samples have a label", "check config target"))
def _(w: Work):
    w.text("cohort.csv", table([r if i < 3 else r[:5] for i, r in enumerate(rows())]))


# --- the cases: expression matrix + sample sheet --------------------------------------------------------


def _matrix(w: Work, ids: list[str], name: str = "expr.csv") -> Path:
    """Samples in rows: SAMPLE_ID then G1..G3."""
    by_id = {r[4]: r for r in rows(20)}
    return w.text(name, ["SAMPLE_ID,G1,G2,G3"] + [",".join([s, *by_id[s.strip()][:3]]) for s in ids])


def _sheet(w: Work, ids: list[str], name: str = "samples.csv", header: str = "SAMPLE_ID,SMOKING_HISTORY") -> Path:
    by_id = {r[4]: r for r in rows(20)}
    return w.text(name, [header] + [f"{s},{by_id[s.strip()][5]}" for s in ids])


IDS = [f"S{i}" for i in range(1, N + 1)]


@case("two-files-samples-in-one-file-only")
def _(w: Work):
    expression = _matrix(w, [*IDS, "S13"])  # S13: no sample sheet row (line 14)
    samples = _sheet(w, ["S14", *IDS])  # S14: no expression values (line 2)
    w.two_files(expression, samples)

    def check(r: Result) -> None:
        join = r.clean["join"]
        assert join["matched"] == N and join["expression_only"] == ["S13"] and join["samples_only"] == ["S14"]
        assert r.clean["mode"] == "expression matrix + sample sheet"
        assert "is not in the sample sheet" in r.quarantined("expr.csv")[14]["reason"]
        assert "has no expression values" in r.quarantined("samples.csv")[2]["reason"]
        assert r.column("SAMPLE_ID") == IDS

    return check


@case("two-files-missing-cells-drop")
def _(w: Work):
    expression = _matrix(w, IDS)
    lines = w.lines[str(expression)]
    lines[5] = lines[5].replace(",2.5,", ",NA,")  # S5, line 6
    expression.write_text("\n".join(lines) + "\n")
    samples = _sheet(w, list(reversed(IDS)))  # S5 on line 9
    w.two_files(expression, samples)
    w.missing = "drop"

    def check(r: Result) -> None:
        assert list(r.quarantined("expr.csv")) == [6] and list(r.quarantined("samples.csv")) == [9]
        assert "clean.missing: drop" in r.quarantined("samples.csv")[9]["reason"]
        assert "S5" not in r.column("SAMPLE_ID")

    return check


@case("two-files-whitespace-in-sheet-ids")
def _(w: Work):
    expression = _matrix(w, IDS, "expr.tsv")
    samples = _sheet(w, [f"{s} " if i % 3 == 0 else s for i, s in enumerate(IDS)])
    w.two_files(expression, samples)

    def check(r: Result) -> None:
        assert r.clean["join"]["matched"] == N and r.quarantine == []

    return check


@case("sample-sheet-without-sample_id", "clean", ("samples.csv line 1: no column 'SAMPLE_ID'", "Set sample_id"))
def _(w: Work):
    w.two_files(_matrix(w, IDS), _sheet(w, IDS, header="ID,SMOKING_HISTORY"))


@case("sample-sheet-column-is-a-gene", "clean", ("samples.csv line 1: column(s) ['G2'] are also genes of", "rename"))
def _(w: Work):
    expression = _matrix(w, IDS)
    samples = w.text("samples.csv", ["SAMPLE_ID,G2,SMOKING_HISTORY"] + [f"{s},1,{SMOKER}" for s in IDS])
    w.two_files(expression, samples)


def _genes_in_rows(w: Work, cells: dict[tuple[int, int], str] | None = None, extra: list[str] = ()) -> Path:
    """Genes in rows (gene, S1..S12), tab-separated; ``cells`` overrides (line, sample column) cells."""
    body = rows()
    lines = ["gene\t" + "\t".join(IDS)]
    for g in range(3):
        lines.append("\t".join([f"G{g + 1}"] + [r[g] for r in body]))
    lines += list(extra)
    for (line, column), value in (cells or {}).items():
        fields = lines[line - 1].split("\t")
        fields[column] = value
        lines[line - 1] = "\t".join(fields)
    path = w.text("expr.tsv", lines)
    w.two_files(path, _sheet(w, IDS), orientation="genes_in_rows")
    return path


@case("genes-in-rows-duplicated-gene")
def _(w: Work):
    _genes_in_rows(w, extra=["G2\t" + "\t".join(["9"] * N)])  # line 5 repeats gene G2 (line 3)

    def check(r: Result) -> None:
        q = r.quarantined("expr.tsv")
        assert list(q) == [5] and q[5]["reason"] == "column gene: gene id 'G2' repeats line 3"
        assert json.loads(r.cohort.schema.metadata[b"panelmlp.genes"]) == ["G1", "G2", "G3"]
        assert 9.0 not in r.column("G2")
        assert r.entry("expr.tsv")["rows_in_cohort"] == 3

    return check


@case(
    "genes-in-rows-missing-error",
    "clean",
    ("expr.tsv line 3", "column S4", "set clean.missing: impute"),
)
def _(w: Work):
    _genes_in_rows(w, cells={(3, 4): "NA"})
    w.missing = "error"


@case("genes-in-rows-missing-drop")
def _(w: Work):
    _genes_in_rows(w, cells={(3, 4): "NA"})  # gene G2 (line 3) of sample S4
    w.missing = "drop"

    def check(r: Result) -> None:
        assert "S4" not in r.column("SAMPLE_ID") and list(r.quarantined("samples.csv")) == [5]
        column = [q for q in r.quarantine if q["line"] is None]
        assert [(q["id"], q["reason"][:10]) for q in column] == [("S4", "column G2:")]

    return check


@case(
    "genes-in-rows-sample-id-repeated-after-trimming",
)
def _(w: Work):
    body = rows()
    lines = ["gene\t" + "\t".join([*IDS, "S1 "])]
    lines += ["\t".join([f"G{g + 1}"] + [r[g] for r in body] + ["9"]) for g in range(3)]
    w.two_files(w.text("expr.tsv", lines), _sheet(w, IDS), orientation="genes_in_rows")

    def check(r: Result) -> None:
        assert r.clean["join"]["matched"] == N and r.column("SAMPLE_ID") == IDS
        (q,) = r.quarantine
        assert q["id"] == "S1" and q["line"] is None and "repeats" in q["reason"]

    return check


@case(
    "genes-in-rows-set-for-a-samples-in-rows-matrix",
    "clean",
    ("expr.csv", "no sample id is in both files", "input.orientation"),
)
def _(w: Work):
    w.two_files(_matrix(w, IDS), _sheet(w, IDS), orientation="genes_in_rows")


# --- the matrix -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec", params(CASES))
def test_bad_input(spec: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    work = Work(tmp_path)
    check = spec.make(work)
    result = drive(work, capsys)
    if spec.fails_at:
        check_failure(result, spec)
        return
    assert result.stage == "done", result.stderr
    assert "panelmlp error" not in result.stderr and "Traceback" not in result.stderr
    check_clean(result)
    check_split(result)
    if check is not None:
        check(result)


def test_case_ids_are_unique_and_the_matrix_is_large_enough():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) + len(CHECKPOINTS) + len(SNAKEMAKE) >= 35


def test_clean_csv_with_a_long_separator_is_one_line(tmp_path: Path) -> None:
    from panelmlp.errors import PanelMlpError
    from panelmlp.io import clean_csv

    path = tmp_path / "cohort.csv"
    path.write_text("\n".join(table()) + "\n", encoding="utf-8")
    with pytest.raises(PanelMlpError, match=r"input\.sep: '::' is not one character"):
        clean_csv(path, GENES, SAMPLE_ID, sep="::")


# --- a damaged checkpoint -------------------------------------------------------------------------------


def _truncated_checkpoint(path: Path) -> None:
    import torch

    torch.save({"format": "panelmlp-checkpoint/1", "state_dict": {"w": torch.zeros(64, 64)}}, path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


CHECKPOINTS = {
    "checkpoint-truncated": (_truncated_checkpoint, "truncated or corrupt"),
    "checkpoint-is-text": (lambda p: p.write_text("not a model\n"), "a text file, not a PyTorch file"),
    "checkpoint-empty": (lambda p: p.write_bytes(b""), "empty file"),
}


@pytest.mark.parametrize("name", list(CHECKPOINTS))
def test_damaged_checkpoint_is_one_line(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from panelmlp.checkpoint import load_checkpoint

    damage, words = CHECKPOINTS[name]
    path = tmp_path / "results" / "panels" / "glial" / "checkpoints" / "glial" / "holdout.pt"
    path.parent.mkdir(parents=True)
    damage(path)
    with pytest.raises(SystemExit) as stopped:
        run([], load_checkpoint, exit_when_done=False, path=str(path))
    assert stopped.value.code == 1
    line = error_line(capsys.readouterr().err)
    assert f"checkpoint {path} cannot be read (truncated or corrupt" in line and words in line, line
    assert "--forcerun results/panels/glial/checkpoints" in line and "weights_only" not in line


# --- through Snakemake: errors before any job, and job errors as the user sees them ----------------------


def _cohort(work: Path, body: list[list[str]] | None = None) -> None:
    (work / "data").mkdir()
    (work / "data" / "cohort.csv").write_text("\n".join(table(body)) + "\n", encoding="utf-8")


def _all_smokers() -> list[list[str]]:
    return [[*r[:5], SMOKER] for r in rows()]


@dataclass
class Run:
    id: str
    args: tuple[str, ...]
    body: Callable[[], list[list[str]]] | None = rows
    message: tuple[str, ...] = ()
    rc: int = 1
    left: tuple[str, ...] = ()
    """Outputs that must exist afterwards (those of the jobs before the failing one)."""


SPLIT_TARGET = ("--cores", "1", "results/splits/labels.json")
SNAKEMAKE = [
    Run(
        "snakemake-raw_csv-mistyped",
        ("-n", "--config", "raw_csv=data/cohrot.csv"),
        message=("config raw_csv: data/cohrot.csv not found (closest in data: cohort.csv)", "fix the path"),
    ),
    Run(
        "snakemake-expression-without-samples",
        ("-n", "--config", "input={expression: data/cohort.csv}"),
        message=("config input.samples: not set", "input.expression and input.samples go together"),
    ),
    Run(
        "snakemake-schema-error",
        ("-n", "--config", "raw_csv=data/cohort.csv", "clean={missing: skip}"),
        message=("config clean.missing: 'skip' is not one of ['impute', 'drop', 'error']", "config/README.md"),
    ),
    Run(
        "snakemake-nested-config-value-dry-run",
        ("-n", "--config", "raw_csv=data/cohort.csv", "model={epochs: 3}", "split={cv_folds: 3, cv_repeats: 1}"),
        rc=0,
    ),
    Run(
        "snakemake-null-model-without-cv",
        ("-n", "--config", "raw_csv=data/cohort.csv", "evaluate={permutations: 9}", "split={cv_repeats: 0}"),
        message=("config evaluate.permutations need cross-validation splits", "set split.cv_repeats to 1 or more"),
    ),
    Run(
        "snakemake-target-column-missing",
        (*SPLIT_TARGET, "--config", "raw_csv=data/cohort.csv", "target={column: SMOKING}", "split={cv_folds: 3}"),
        message=("config target.column: 'SMOKING' is not a column of results/clean/cohort.parquet",),
        left=tuple(f"results/clean/{name}" for name in CLEAN_OUTPUTS),
    ),
    Run(
        "snakemake-one-class",
        (*SPLIT_TARGET, "--config", "raw_csv=data/cohort.csv", "split={cv_folds: 3}"),
        body=_all_smokers,
        message=("class(es) ['non-smoker'] match no sample of column SMOKING_HISTORY (non-smoker: 0, smoker: 12)",),
        left=tuple(f"results/clean/{name}" for name in CLEAN_OUTPUTS),
    ),
    Run(
        "snakemake-clean-job-error",
        (*SPLIT_TARGET, "--config", "raw_csv=data/cohort.csv", "clean={missing: error}"),
        body=lambda: [[*r[:1], "NA", *r[2:]] if r[4] == "S2" else r for r in rows()],
        message=("data/cohort.csv line 3, column G2: expression value missing", "set clean.missing: impute"),
    ),
]


@pytest.mark.workflow
@pytest.mark.parametrize("spec", [pytest.param(s, id=s.id) for s in SNAKEMAKE])
def test_through_snakemake(spec: Run, tmp_path: Path) -> None:
    _cohort(tmp_path, spec.body() if spec.body else None)
    proc = snakemake(tmp_path, *spec.args)
    output = proc.stdout + proc.stderr
    assert proc.returncode == spec.rc, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    messages = {line[line.index("panelmlp error:") :] for line in output.splitlines() if "panelmlp error:" in line}
    if spec.rc == 0:
        assert not messages, output[-4000:]
        return
    # A job's error is also echoed from its log (the profile's show-failed-logs): one message, however often shown.
    assert len(messages) == 1, output[-4000:]
    (message,) = messages
    for words in spec.message:
        assert words in message, f"{words!r} not in: {message}"
    made = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert made == sorted(spec.left), made
