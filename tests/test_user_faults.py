"""User mistakes as users make them: each a real ``snakemake`` run that ends in one clear line.

Every case here once ended in a Python traceback, in Snakemake's own
message, or in a line that pointed at the wrong thing. Each runs the
workflow the way a user does (``--configfile`` and ``--config`` in a fresh
working directory, the project's default profile) and asserts exit status 1,
exactly one ``panelmlp error: ...`` line holding the key words (the config
key or file, and the fix), no ``Traceback``, and no output of the failed step
left behind. Faults visible in the config or the panel files are caught
before any job (dry runs, ``-n``); faults of the data stop the clean or split
job, so those cases ask for that step's outputs only (no training).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import pytest
from panelmlp.predict import read_new_samples
from test_workflow import snakemake

pytestmark = pytest.mark.workflow

GENES = ["G1", "G2", "G3", "G4"]
HEADER = [*GENES, "PATIENT_ID", "SAMPLE_ID", "SMOKING_HISTORY", "AGE"]
N = 24


def rows(n: int = N) -> list[dict[str, str]]:
    """``n`` samples S0..S(n-1); every third a smoker."""
    return [
        {
            **{g: f"{(i * 7 + j * 3) % 11 / 3:.3f}" for j, g in enumerate(GENES)},
            "PATIENT_ID": f"P{i}",
            "SAMPLE_ID": f"S{i}",
            "SMOKING_HISTORY": "Current smoker" if i % 3 == 0 else "Lifelong non-smoker",
            "AGE": str(40 + i),
        }
        for i in range(n)
    ]


def csv_text(table: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(table[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(table)
    return out.getvalue()


BASE = """raw_csv: c.csv
panels: {glial: null, microglia: null, all: null, p: [G1, G2]}
model: {epochs: 3}
split: {cv_folds: 3, cv_repeats: 1}
"""


@dataclass
class Fault:
    id: str
    config: str
    """YAML layered over BASE (a top-level key given here replaces BASE's)."""
    message: tuple[str, ...]
    files: dict[str, str | bytes | None] | None = None
    """Files to write in the working directory (None: a folder); c.csv is rows() unless given."""
    target: tuple[str, ...] = ("-n",)
    rc: int = 1
    left: tuple[str, ...] = ()
    """Files under results/ that must exist afterwards (the outputs of jobs before the failing one)."""


def layered(extra: str) -> str:
    keys = {line.split(":", 1)[0] for line in extra.splitlines() if line and not line.startswith(" ")}
    kept = [line for line in BASE.splitlines() if line.split(":", 1)[0] not in keys]
    return "\n".join(kept) + "\n" + extra


CLEAN = ("results/clean/clean.json",)
SPLIT = ("results/splits/labels.json",)
CLEAN_OUTPUTS = tuple(f"results/clean/{name}" for name in ("cohort.parquet", "quarantine.tsv", "clean.json"))
R = rows()

FAULTS = [
    # --- before any job: the config and the panel files ---------------------------------------------------
    Fault(
        "genes-regex-invalid",  # was: re.error traceback from the clean job
        "genes: {regex: '^(G'}\n",
        ("config genes.regex: '^(G' is not a valid regular expression", "escape"),
    ),
    Fault(
        "class-regex-invalid",  # was: found only by the split job, after cleaning
        "target: {column: SMOKING_HISTORY, classes: {a: '(smok', b: 'non'}, positive: null}\n",
        ("config target.classes.a: '(smok' is not a valid regular expression",),
    ),
    Fault(
        "genes-shape",  # was: "is not valid under any of the given schemas"
        "genes: {}\n",
        ("config genes: {} is none of the accepted forms: {before_column: ...}, {regex: ...} or a list",),
    ),
    Fault(
        "random-panels-text",
        "evaluate: {random_panels: many}\n",
        ("config evaluate.random_panels: 'many' is none of the accepted forms: a whole number >= 0 or auto",),
    ),
    Fault(
        "panel-file-missing",  # was: Snakemake's MissingInputException for rule fit
        "panels: {glial: null, microglia: null, all: null, q: genes.txt}\n",
        ("config panels.q: panel file genes.txt not found",),
    ),
    Fault(
        "panel-file-empty",  # was: found by the fit job after cleaning and splitting
        "panels: {glial: null, microglia: null, all: null, q: q.txt}\n",
        ("config panels.q: panel file q.txt lists no gene", "one gene per line"),
        files={"q.txt": "# my panel\n\n"},
    ),
    Fault(
        "panel-file-folder",
        "panels: {glial: null, microglia: null, all: null, q: q}\n",
        ("config panels.q: panel file q is a folder",),
        files={"q": None},
    ),
    Fault(
        "panel-file-not-utf8",  # was: UnicodeDecodeError traceback from the fit job
        "panels: {glial: null, microglia: null, all: null, q: q.txt}\n",
        ("config panels.q: panel file q.txt line 2: byte 0xe9 is not UTF-8", "save the file as UTF-8"),
        files={"q.txt": b"G1\nG\xe9NE\n"},
    ),
    Fault(
        "panel-file-repeats-a-gene",
        "panels: {glial: null, microglia: null, all: null, q: q.txt}\n",
        ("config panels.q: panel q: genes listed twice: ['G1']", "list each gene once"),
        files={"q.txt": "G1\nG2\nG1\n"},
    ),
    Fault(
        "panel-file-comma-separated",  # was: 'G1,G2' taken for one gene, missing from the cohort, in the fit job
        "panels: {glial: null, microglia: null, all: null, q: q.txt}\n",
        ("config panels.q: panel file q.txt line 2: 'G1,G2' holds several names", "write one gene per line"),
        files={"q.txt": "# panel\nG1,G2\n"},
    ),
    Fault(
        "panel-list-one-item-of-two-genes",  # was: 'G1, G2' missing from the cohort, found by the fit job
        "panels: {glial: null, microglia: null, all: null, p: ['G1, G2']}\n",
        ("config panels.p: 'G1, G2' holds several names", "its own list item"),
    ),
    Fault(
        "panel-list-repeats-a-gene",
        "panels: {glial: null, microglia: null, all: null, p: [G1, G2, G1]}\n",
        ("config panels.p: genes listed twice: ['G1']",),
    ),
    Fault(
        "top-level-key-typo",  # was: "Additional properties are not allowed" without the key meant
        "pannels: {q: [G1]}\n",
        (
            "config (top level): Additional properties are not allowed ('pannels' was unexpected)",
            "did you mean 'panels'",
        ),
    ),
    Fault(
        "section-key-at-top-level",
        "epochs: 5\n",
        ("'epochs' was unexpected", "it belongs in a section, model: {epochs: ...}"),
    ),
    Fault(
        "sample-sheet-without-matrix",  # was: the sheet silently ignored, raw_csv read
        "input: {samples: s.csv}\n",
        ("config input.samples: 's.csv' is set but input.expression is not", "set input.expression"),
        files={"s.csv": "SAMPLE_ID,SMOKING_HISTORY\nS0,smoker\n"},
    ),
    Fault(
        "config-file-key-twice",  # was: the first model section silently dropped
        "model: {epochs: 3}\nmodel: {lr: 0.1}\n",
        ("run.yaml line 5: key 'model' is given twice (first on line 4)", "merge the two into one"),
    ),
    # --- the data: the clean and split jobs ---------------------------------------------------------------
    Fault(
        "sample-id-not-unique",  # was: every row but one quarantined, then "class non-smoker matches no sample"
        "sample_id: PATIENT_ID\n",
        ("c.csv: column PATIENT_ID holds only 1 distinct sample id(s) in 24 rows", "set config sample_id"),
        files={"c.csv": csv_text([{**r, "PATIENT_ID": "P1"} for r in R])},
        target=CLEAN,
    ),
    Fault(
        "clinical-column-among-the-genes",  # was: "none of the 24 data lines gave a usable sample"
        "genes: {before_column: PATIENT_ID}\n",
        (
            "c.csv: none of the 24 data lines gave a usable sample",
            "column SMOKING_HISTORY is not a number on any line",
            "config genes selects it",
        ),
        files={"c.csv": csv_text([{"SMOKING_HISTORY": r["SMOKING_HISTORY"], **r} for r in R])},
        target=CLEAN,
    ),
    Fault(
        "classic-mac-line-ends",  # was: _csv.Error traceback from the clean job
        "genes: {before_column: PATIENT_ID}\n",
        ("c.csv line 1: lines end in a lone carriage return", "save the file with LF or CRLF line ends"),
        files={"c.csv": csv_text(R).replace("\n", "\r")},
        target=CLEAN,
    ),
    Fault(
        "genes-list-missing",
        "genes: [G1, G2, GG3]\n",
        ("config genes: 1 listed column(s) not in the CSV header: 'GG3' (closest: G3", "fix the names"),
        target=CLEAN,
    ),
    Fault(
        "numeric-column-as-classes",
        "target: {column: AGE}\n",
        ("match no sample of column AGE", "its values: '40', '41'", "set target.kind: regression"),
        target=SPLIT,
        left=CLEAN_OUTPUTS,
    ),
    Fault(
        "text-column-as-regression",
        "target: {column: SMOKING_HISTORY, kind: regression}\n",
        ("config target.column: only 0 samples have a numeric value in column 'SMOKING_HISTORY'",),
        target=SPLIT,
        left=CLEAN_OUTPUTS,
    ),
    Fault(
        "target-column-typo",
        "target: {column: SMOKING_HISTROY}\n",
        ("config target.column: 'SMOKING_HISTROY' is not a column", "(closest: SMOKING_HISTORY)"),
        target=SPLIT,
        left=CLEAN_OUTPUTS,
    ),
    Fault(
        # was: pyarrow ArrowInvalid traceback: a sheet with one clinical column and a missing value in it
        "sample-sheet-one-column-with-na",
        "input: {expression: e.csv, samples: s.csv}\n",
        (),
        files={
            "e.csv": csv_text([{k: r[k] for k in ("SAMPLE_ID", *GENES)} for r in R]),
            "s.csv": csv_text(
                [
                    {"SAMPLE_ID": r["SAMPLE_ID"], "SMOKING_HISTORY": "NA" if i == 4 else r["SMOKING_HISTORY"]}
                    for i, r in enumerate(R)
                ]
            ),
        },
        target=SPLIT,
        rc=0,
    ),
]


@pytest.mark.parametrize("fault", [pytest.param(f, id=f.id) for f in FAULTS])
def test_a_user_fault_ends_in_one_line(fault: Fault, tmp_path: Path) -> None:
    files: dict[str, str | bytes | None] = {"c.csv": csv_text(R), **(fault.files or {})}
    for name, content in files.items():
        path = tmp_path / name
        if content is None:
            path.mkdir()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    (tmp_path / "run.yaml").write_text(layered(fault.config), encoding="utf-8")
    proc = snakemake(tmp_path, *fault.target, "--cores", "1", "--configfile", str(tmp_path / "run.yaml"))
    output = proc.stdout + proc.stderr
    assert proc.returncode == fault.rc, output[-4000:]
    assert "Traceback" not in output, output[-4000:]
    messages = {line[line.index("panelmlp error:") :] for line in output.splitlines() if "panelmlp error:" in line}
    if fault.rc == 0:
        assert not messages, output[-4000:]
        return
    assert len(messages) == 1, output[-4000:]
    (message,) = messages
    for words in fault.message:
        assert words in message, f"{words!r} not in: {message}"
    made = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "results").rglob("*") if p.is_file())
    assert made == sorted(fault.left), made


def test_new_samples_with_one_extra_column_and_a_missing_value_are_read(tmp_path: Path) -> None:
    """The target column beside the genes, NA in one row: every row read (was: ArrowInvalid, 10 vs 9 rows)."""
    table = [
        {"SAMPLE_ID": f"N{i}", "G1": "1.5", "G2": "2", "SMOKING_HISTORY": "NA" if i == 3 else "smoker"}
        for i in range(6)
    ]
    path = tmp_path / "new.csv"
    path.write_text(csv_text(table), encoding="utf-8")
    read = read_new_samples(path, ["G1", "G2"], "SAMPLE_ID", workdir=tmp_path, keep=["SMOKING_HISTORY"])
    assert read.ids == [f"N{i}" for i in range(6)]
    assert read.columns["SMOKING_HISTORY"] == ["smoker", "smoker", "smoker", None, "smoker", "smoker"]
