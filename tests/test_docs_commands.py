"""Every `snakemake ...` command in README.md and config/README.md dry-runs in a fresh copy of the workflow.

Commands come from shell code blocks (```bash, ```sh, ``` ...) and inline code
spans. Each runs with ``-n`` (and ``--cores 1`` when it gives no cores, jobs
or profile) in a temporary copy of the workflow, after the files it names are
made: a small generated cohort at every ``raw_csv=`` and ``predict_csv=`` path
(absolute paths such as /path/to/... are moved into the copy; the cohort has
the sample id and the panel genes, all new samples need) and a small config
for every ``--configfile``.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from panelmlp.synthetic import write_cohort

REPO = Path(__file__).resolve().parents[1]
DOCS = ("README.md", "config/README.md")
WORKFLOW_FILES = ("Snakefile", "workflow", "config", "profiles", "envs")
SHELL_LANGUAGES = {"", "bash", "sh", "shell", "console", "zsh"}
FENCE = re.compile(r"^(?P<fence>```+|~~~+)[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`]+)`(?!`)")
SEPARATORS = {"&&", "||", ";", "|", "&"}

# --config keys whose value is a table the command reads: the generated cohort is put there.
TABLE_KEYS = ("raw_csv", "predict_csv")

# Config files a command names get this content; the docs say what that_file.yaml holds.
CONFIGFILE_CONTENT = {"that_file.yaml": {"panels": {"example": {"gmt": "config/genesets/example.gmt"}}}}
DEFAULT_CONFIGFILE = {"model": {"epochs": 5}}

# Genes of the default panels (config/config.yaml), so the cohort looks like the real one to every panel.
PANEL_GENES = ("GFAP", "SOX2", "OLIG2", "S100B", "SLC1A3", "CX3CR1", "TMEM119", "SALL1", "OLR1", "NCF1", "TLR3")


@dataclass(frozen=True)
class DocCommand:
    source: str  # README.md:33
    argv: tuple[str, ...]  # starts with "snakemake"

    @property
    def text(self) -> str:
        return shlex.join(self.argv)


def _snakemake_commands(text: str) -> list[tuple[str, ...]]:
    """The `snakemake ...` commands of one shell line (``a && snakemake ...`` too), comments dropped."""
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: not a command
        return []
    commands, current = [], []
    for token in [*tokens, ";"]:
        if token in SEPARATORS:
            if current and current[0] == "snakemake":
                commands.append(tuple(current))
            current = []
        else:
            current.append(token)
    return commands


def doc_commands() -> list[DocCommand]:
    """Every distinct snakemake command of the docs, first occurrence first."""
    found: dict[tuple[str, ...], DocCommand] = {}
    for doc in DOCS:
        text = (REPO / doc).read_text(encoding="utf-8")

        def line_of(offset: int, text=text) -> int:
            return text.count("\n", 0, offset) + 1

        outside = text
        for block in FENCE.finditer(text):
            outside = outside.replace(block.group(0), "\n" * block.group(0).count("\n"), 1)
            if block.group("lang").lower() not in SHELL_LANGUAGES:
                continue
            body = block.group("body").replace("\\\n", " ")
            first = line_of(block.start("body"))
            for i, line in enumerate(body.splitlines()):
                line = re.sub(r"^\s*\$\s+", "", line)
                for argv in _snakemake_commands(line):
                    found.setdefault(argv, DocCommand(f"{doc}:{first + i}", argv))
        for span in INLINE.finditer(outside):
            code = " ".join(span.group(1).split())
            if re.match(r"snakemake(\s|$)", code):
                for argv in _snakemake_commands(code):
                    line = outside.count("\n", 0, span.start()) + 1  # blocks were blanked line for line
                    found.setdefault(argv, DocCommand(f"{doc}:{line}", argv))
    return list(found.values())


COMMANDS = doc_commands()


def _skip_reason(command: DocCommand) -> str | None:
    """Why a command cannot run here, or None. Only what a dry run truly cannot do."""
    argv = command.argv
    if "--report" in argv:
        return (
            "--report has no dry run: it packs a finished run's outputs "
            "(tests/test_workflow.py::test_snakemake_report_zip runs it after a real run)"
        )
    if "--sdm" in argv and "conda" in argv[argv.index("--sdm") + 1 :] and shutil.which("conda") is None:
        return "--sdm conda runs `conda info` even in a dry run, and conda is not installed here"
    return None


def _params():
    params = []
    for command in COMMANDS:
        reason = _skip_reason(command)
        marks = [pytest.mark.skip(reason=f"{command.source}: {reason}")] if reason else []
        params.append(pytest.param(command, id=command.text, marks=marks))
    return params


pytestmark = pytest.mark.workflow


@pytest.fixture(scope="module")
def cohort_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cohort in the default config's layout: genes, then PATIENT_ID, SAMPLE_ID, ..., SMOKING_HISTORY."""
    path = tmp_path_factory.mktemp("docs-cohort") / "cohort.csv"
    write_cohort(path, n_samples=40, n_genes=len(PANEL_GENES) + 4, planted=PANEL_GENES, n_malformed=2, seed=7)
    return path


def _workflow_copy(dest: Path) -> None:
    for name in WORKFLOW_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__", ".snakemake"))
        else:
            shutil.copy2(source, dest / name)


def _inside(work: Path, path: str) -> tuple[Path, str]:
    """Where a path a command names lives in the copy, and how the command should then name it."""
    if os.path.isabs(path):  # /path/to/gbm_data.csv, /data/my_cohort.csv: moved into the copy
        local = work / path.lstrip("/")
        return local, str(local)
    return work / path, path


def prepare(command: DocCommand, work: Path, cohort: Path) -> list[str]:
    """Make the files the command names in ``work``; the arguments to run, with ``-n`` (and cores) added."""
    args = list(command.argv[1:])
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--configfile", "--configfiles"):
            j = i + 1
            while j < len(args) and not args[j].startswith("-"):
                local, args[j] = _inside(work, args[j])
                local.parent.mkdir(parents=True, exist_ok=True)
                content = CONFIGFILE_CONTENT.get(local.name, DEFAULT_CONFIGFILE)
                local.write_text(yaml.safe_dump(content), encoding="utf-8")
                j += 1
            i = j
        elif arg in ("--config", "-C"):
            j = i + 1
            while j < len(args) and not args[j].startswith("-"):
                key, _, value = args[j].partition("=")
                if key in TABLE_KEYS and value:
                    local, named = _inside(work, value)
                    local.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(cohort, local)
                    args[j] = f"{key}={named}"
                j += 1
            i = j
        else:
            i += 1
    if not any(a in ("-n", "--dry-run", "--dryrun") for a in args):
        args.append("-n")
    given = ("--cores", "-c", "--jobs", "-j", "--profile")
    if not any(a == g or (a.startswith(g) and g != "--profile") or a.startswith(g + "=") for a in args for g in given):
        args += ["--cores", "1"]
    return args


def test_the_docs_have_commands():
    texts = [c.text for c in COMMANDS]
    assert len(COMMANDS) >= 8, texts
    assert "snakemake --cores 4" in texts and "snakemake --profile profiles/slurm" in texts, texts
    assert any(c.argv[1:2] == ("predict",) and any(a.startswith("predict_csv=") for a in c.argv) for c in COMMANDS), (
        texts
    )
    print("\n".join(f"{c.source}: {c.text}" for c in COMMANDS))


@pytest.mark.parametrize("command", _params())
def test_doc_command_dry_runs(command: DocCommand, tmp_path: Path, cohort_csv: Path):
    work = tmp_path / "wf"
    work.mkdir()
    _workflow_copy(work)
    args = prepare(command, work, cohort_csv)
    proc = subprocess.run(
        [sys.executable, "-m", "snakemake", *args],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    assert proc.returncode == 0, (
        f"{command.source}: `{command.text}` ran as `snakemake {shlex.join(args)}` and exited {proc.returncode}\n"
        f"--- stdout (tail)\n{proc.stdout[-3000:]}\n--- stderr (tail)\n{proc.stderr[-6000:]}"
    )
