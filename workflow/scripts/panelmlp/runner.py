"""Running a step from a Snakemake rule script: logging, one-line errors, a quick exit.

Besides a :class:`~panelmlp.errors.PanelMlpError`, two runtime faults end a
job with one line and exit status 1 instead of a traceback:

- a full disk (``OSError`` ENOSPC or EDQUOT anywhere in the exception chain,
  or torch's ``RuntimeError`` for a failed write of a checkpoint): the line
  names the file or folder being written and says the disk is full;
- a damaged intermediate file (truncated, empty or corrupt parquet, JSON, TSV
  or checkpoint under a ``results/`` folder): when a step fails in any other
  way, every workflow-made input of the job is checked
  (:func:`damaged_file`), and the first damaged one is named with the command
  that rebuilds it (:func:`rebuild_command`).

Either way the job's outputs written so far are removed, so nothing partial is
left. Any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import gc
import json
import logging
import os
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from .errors import PanelMlpError

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_TEXT = ("No space left on device", "Disk quota exceeded")
TORCH_WRITE_TEXT = ("unexpected pos", "file write failed", "PytorchStreamWriter failed writing")
"""What torch's ``RuntimeError`` says when ``torch.save`` could not write (it drops the OSError's errno)."""
RULE_OF_FILE = {
    ("clean", "cohort.parquet"): "clean",
    ("clean", "clean.json"): "clean",
    ("clean", "quarantine.tsv"): "clean",
    ("splits", "splits.parquet"): "split",
    ("splits", "labels.json"): "split",
    ("splits", "scalers.parquet"): "scale",
    ("metrics", "summary.tsv"): "compare",
    ("metrics", "panels.tsv"): "compare",
}
"""The rule that writes each intermediate file of a fixed name, by (folder, file name)."""


def run(
    log_files: Sequence[str],
    step: Callable[..., Any],
    exit_when_done: bool = True,
    job_inputs: Iterable[str] | None = None,
    job_outputs: Iterable[str] | None = None,
    **kwargs: Any,
) -> Any:
    """Call ``step(**kwargs)`` with logging to the rule's log file.

    A :class:`PanelMlpError` is written to the log and to stderr as one line
    starting ``panelmlp error:`` and ends the job with exit status 1. A full
    disk or a damaged input file (see the module docstring) does the same and
    first removes ``job_outputs``. ``job_inputs`` and ``job_outputs`` default
    to the rule's own (the ``snakemake`` object of the rule script), and to
    none outside a rule script. Any other exception is a bug and keeps its
    traceback.

    With ``exit_when_done`` (what a rule script wants) the process ends right
    after a successful step, with logs and streams flushed but without the
    interpreter's teardown: unloading torch alone takes about a second per job,
    for nothing, since every output file is closed by then.

    A rule script turns the garbage collector off for its imports (torch's
    alone set off collections worth ~0.3 s in the fit job, for objects that
    live to the end). Finding it off, this freezes what the imports made
    (later collections skip it) and turns collection back on for the step.
    """
    if not gc.isenabled():
        gc.freeze()
        gc.enable()
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_files:
        handlers.append(logging.FileHandler(log_files[0], mode="w", encoding="utf-8"))
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", handlers=handlers, force=True
    )
    inputs, outputs = _job_files(job_inputs, job_outputs, log_files)
    damaged = first_damaged(inputs, quick=True)  # a cut TSV can read without error: look before the step
    if damaged is not None:
        remove_outputs(outputs)
        _fail(damaged)
    try:
        result = step(**kwargs)
    except PanelMlpError as exc:
        _fail(str(exc))
    except Exception as exc:
        message = fault_message(exc, inputs, outputs)
        if message is None:
            raise
        remove_outputs(outputs)
        _fail(message)
    if not exit_when_done:
        return result
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def exit_promptly() -> None:
    """Let Snakemake's own process end as soon as the run has (its ``onsuccess``/``onerror``): ~1.5 s of a small run.

    Snakemake 9 re-arms a 1 s threading.Timer (--max-jobs-per-timespan, default 100/1s) after
    every scheduling round; no daemon thread, the interpreter waits for the last one. And at
    exit the interpreter's garbage collector walks every object Snakemake, pandas and the
    rest made (~0.4 s): gc.freeze() leaves them to the end of the process.
    """
    import threading

    for thread in threading.enumerate():
        if isinstance(thread, threading.Timer):
            thread.cancel()
    gc.freeze()


def _fail(message: str) -> None:
    logging.getLogger("panelmlp").error("panelmlp error: %s", message)
    raise SystemExit(1) from None


def _job_files(
    job_inputs: Iterable[str] | None, job_outputs: Iterable[str] | None, log_files: Sequence[str]
) -> tuple[list[str], list[str]]:
    """The job's input and output paths: as given, else the rule script's ``snakemake`` object's (logs left out)."""
    job = getattr(sys.modules.get("__main__"), "snakemake", None)
    inputs = list(job_inputs) if job_inputs is not None else _paths(getattr(job, "input", None))
    outputs = list(job_outputs) if job_outputs is not None else _paths(getattr(job, "output", None))
    logs = {os.path.normpath(p) for p in log_files or ()}
    return inputs, [p for p in outputs if os.path.normpath(p) not in logs]


def _paths(files: object) -> list[str]:
    """Flat list of the paths of a Snakemake ``Namedlist`` (a named entry may itself be a list)."""
    out: list[str] = []
    for item in files or ():  # type: ignore[union-attr]
        if isinstance(item, (list, tuple)):
            out.extend(str(p) for p in item)
        else:
            out.append(str(item))
    return out


# --- faults -----------------------------------------------------------------------------------------------


def fault_message(exc: BaseException, inputs: Sequence[str], outputs: Sequence[str]) -> str | None:
    """One line for a full disk or a damaged input of the job, or None when the failure is neither (a bug)."""
    full = disk_full_path(exc, outputs)
    if full is not None:
        where = full or "the results folder"
        return (
            f"{where}: the disk is full ({_first_line(exc)}); nothing was kept of this step's outputs. "
            "Free space there (or run in a folder on a larger disk: snakemake --directory DIR) and rerun"
        )
    return first_damaged(inputs)


def first_damaged(inputs: Sequence[str], quick: bool = False) -> str | None:
    """The line naming the first damaged input and the command that rebuilds it, or None if all read.

    ``quick`` checks only the small text files (TSV, JSON), which a step may
    read without noticing a cut; parquet and checkpoints always fail loudly
    when read, so they are checked only after a step failed.
    """
    for path in inputs:
        reason = damaged_file(path, quick=quick)
        if reason is not None:
            return f"{path} is damaged ({reason}); rebuild it: {rebuild_command(path)}"
    return None


def disk_full_path(exc: BaseException, outputs: Sequence[str] = ()) -> str | None:
    """The file being written when the disk filled up ('' if unknown), or None if ``exc`` is no full-disk error.

    Looks through the exception chain for an ``OSError`` with errno ENOSPC or
    EDQUOT (or its message), and for torch's ``RuntimeError`` from a failed
    ``torch.save``, which names no file: then the job's checkpoint folder
    stands for it. An ``OSError`` without a file name (pyarrow's) names the
    job's only output, or the folder that holds all its outputs.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current)
        if isinstance(current, OSError) and (
            current.errno in DISK_FULL_ERRNOS or any(t in text for t in DISK_FULL_TEXT)
        ):
            return str(current.filename) if current.filename else _written(outputs, checkpoints=False)
        if isinstance(current, RuntimeError) and any(t in text for t in TORCH_WRITE_TEXT + DISK_FULL_TEXT):
            return _written(outputs, checkpoints=True)
        current = current.__cause__ or current.__context__
    return None


def _written(outputs: Sequence[str], checkpoints: bool) -> str:
    folders = [p for p in outputs if Path(p).name == "checkpoints"] if checkpoints else []
    if folders or len(outputs) == 1:
        return str((folders or list(outputs))[0])
    if not outputs:
        return ""
    return os.path.commonpath([os.path.abspath(p) for p in outputs]) + os.sep


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def remove_outputs(outputs: Iterable[str]) -> list[str]:
    """Delete the job's outputs that exist (files, and folders with what is in them); returns what was removed."""
    removed = []
    for path in outputs:
        target = Path(path)
        try:
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()
            else:
                continue
        except OSError:
            continue
        removed.append(str(path))
    return removed


def damaged_file(path: str | Path, quick: bool = False) -> str | None:
    """Why a workflow-made file (under ``results/`` of the working directory) cannot be read, or None if it reads.

    Parquet must read whole; JSON must parse; a TSV must end with a newline
    and every line must have the header's number of fields; a ``.pt``
    checkpoint must be a complete zip archive. A folder's ``.pt`` files are
    checked one by one. Empty files are damaged. User inputs (paths outside
    ``results/`` of the working directory) are left to the steps' own checks,
    which quarantine what they cannot read. ``quick`` looks at TSV and JSON
    files only.
    """
    path = Path(path)
    if not _intermediate(path):
        return None
    suffix = path.suffix.lower()
    if quick and suffix not in (".tsv", ".json"):
        return None
    if path.is_dir():
        for child in sorted(path.rglob("*.pt")):
            reason = damaged_file(child)
            if reason is not None:
                return f"{child}: {reason}"
        return None
    if not path.is_file():
        return None  # Snakemake makes sure inputs exist; a step says what a missing optional file means
    if path.stat().st_size == 0:
        return "the file is empty"
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_table(path)
        elif suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".tsv":
            return _tsv_problem(path)
        elif suffix == ".pt":
            import zipfile

            with zipfile.ZipFile(path) as archive:
                bad = archive.testzip()
            if bad is not None:
                return f"entry {bad} of the checkpoint archive is corrupt"
    except Exception as exc:  # any failure to read is the finding
        kind = {".parquet": "not a readable parquet file", ".json": "not valid JSON", ".pt": "not a whole checkpoint"}
        return f"{kind.get(suffix, 'unreadable')}: {_first_line(exc)}"
    return None


def _intermediate(path: Path) -> bool:
    """Whether a path lies under ``results/`` of the working directory (the workflow's own files)."""
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            return False
    return path.parts[:1] == ("results",)


def _tsv_problem(path: Path) -> str | None:
    """A cut TSV: no final newline, or a row (quoted fields read as CSV) without the header's number of fields.

    A field may be as long as the file (panels.tsv lists all 20,000 genes of
    ``all`` in one field), so the csv module's 128 KiB field limit is lifted,
    as the reader lifts it.
    """
    import csv

    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    with open(path, "rb") as handle:
        handle.seek(-1, os.SEEK_END)
        if handle.read(1) != b"\n":
            return "it ends in the middle of a line (truncated)"
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        rows = csv.reader(handle, delimiter="\t")
        width = len(next(rows, []))
        for row in rows:
            if len(row) != width:
                return f"line {rows.line_num} has {len(row)} fields, the header {width}"
    return None


def rebuild_command(path: str | Path) -> str:
    """The command that rewrites an intermediate file: its rule by name, or the file (a fit job's output) itself.

    >>> rebuild_command("results/splits/splits.parquet")
    'snakemake --cores 4 --forcerun split'
    >>> rebuild_command("results/panels/all/checkpoints/all/holdout.pt")
    'snakemake --cores 4 --forcerun results/panels/all/checkpoints'
    """
    parts = Path(path).parts
    rule = RULE_OF_FILE.get(tuple(parts[-2:])) if len(parts) >= 2 else None
    if rule:
        return f"snakemake --cores 4 --forcerun {rule}"
    if "checkpoints" in parts:
        target = Path(*parts[: parts.index("checkpoints") + 1]).as_posix()
    elif "predictions" in parts:
        target = "predict_samples"
    else:
        target = Path(path).as_posix()
    return f"snakemake --cores 4 --forcerun {target}"
