"""Runtime faults: a full disk and damaged intermediate files end a job with one line, and nothing partial."""

from __future__ import annotations

import errno
import json
import logging
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from panelmlp.runner import damaged_file, disk_full_path, rebuild_command, run
from panelmlp.synthetic import write_cohort
from test_workflow import snakemake


def _one_line(capsys: pytest.CaptureFixture) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "panelmlp error:" in line]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0][lines[0].index("panelmlp error:") :]


# --- full disk ------------------------------------------------------------------------------------------


def test_a_full_disk_while_writing_a_table_names_the_file_and_removes_partial_outputs(tmp_path, capsys):
    """The writer fails with ENOSPC after part of the outputs exist: exit 1, one line naming the path, all removed."""
    first, second = tmp_path / "results" / "a.tsv", tmp_path / "results" / "b.parquet"
    folder = tmp_path / "results" / "checkpoints"

    def step() -> None:
        first.parent.mkdir(parents=True)
        first.write_text("x\n")
        folder.mkdir()
        (folder / "holdout.pt").write_bytes(b"PK")
        raise OSError(errno.ENOSPC, "No space left on device", str(second))

    outputs = [str(first), str(second), str(folder)]
    with pytest.raises(SystemExit) as stopped:
        run([str(tmp_path / "step.log")], step, exit_when_done=False, job_inputs=[], job_outputs=outputs)
    assert stopped.value.code == 1
    line = _one_line(capsys)
    assert line.startswith(f"panelmlp error: {second}: the disk is full (")
    assert "No space left on device" in line
    assert not first.exists() and not second.exists() and not folder.exists()
    assert line in (tmp_path / "step.log").read_text()


def test_a_quota_error_counts_as_a_full_disk(tmp_path):
    exc = OSError(errno.EDQUOT, "Disk quota exceeded", "results/x.parquet")
    assert disk_full_path(exc) == "results/x.parquet"
    assert disk_full_path(OSError(errno.ENOENT, "No such file", "x")) is None
    assert disk_full_path(ValueError("x")) is None


def test_torch_save_failing_on_a_full_disk_names_the_checkpoint_folder(tmp_path, monkeypatch, capsys):
    """torch.save's RuntimeError ('unexpected pos') carries no errno: the job's checkpoint folder is named."""
    folder = tmp_path / "results" / "panels" / "p" / "checkpoints"
    table = tmp_path / "results" / "panels" / "p" / "metrics.tsv"

    def fake_write(self, *args, **kwargs):  # what PyTorchFileWriter raises when the disk fills up
        raise RuntimeError(
            "[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
            "data/0: file write failed"
        )

    monkeypatch.setattr(torch._C.PyTorchFileWriter, "write_record", fake_write, raising=False)

    def step() -> None:
        folder.mkdir(parents=True)
        table.write_text("a\tb\n")
        torch.save({"w": torch.zeros(3)}, folder / "holdout.pt")

    with pytest.raises(SystemExit):
        run([], step, exit_when_done=False, job_inputs=[], job_outputs=[str(table), str(folder)])
    line = _one_line(capsys)
    assert line.startswith(f"panelmlp error: {folder}: the disk is full (")
    assert not folder.exists() and not table.exists()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full (Linux)")
@pytest.mark.parametrize("writer", ["torch", "parquet", "tsv"])
def test_a_real_full_device_is_said_in_one_line(tmp_path, capsys, writer):
    """/dev/full answers every write with ENOSPC: torch's, pyarrow's and pandas' real errors, no fake."""
    folder = tmp_path / "results" / "panels" / "p" / "checkpoints"
    table = tmp_path / "results" / "panels" / "p" / "metrics.tsv"

    def step() -> None:
        folder.mkdir(parents=True)
        table.write_text("a\tb\n")
        frame = pd.DataFrame({"a": range(100_000)})
        if writer == "torch":
            torch.save({"w": torch.zeros(100_000)}, "/dev/full")
        elif writer == "parquet":
            frame.to_parquet("/dev/full")
        else:
            frame.to_csv("/dev/full", sep="\t")

    with pytest.raises(SystemExit):
        run([], step, exit_when_done=False, job_inputs=[], job_outputs=[str(table), str(folder)])
    line = _one_line(capsys)
    # pyarrow's and pandas' errors (raised by a write, not an open) name no file: the folder of the job's outputs.
    named = folder if writer == "torch" else f"{table.parent}/"
    assert line.startswith(f"panelmlp error: {named}: the disk is full ("), line
    assert not folder.exists() and not table.exists()


def test_a_bug_keeps_its_traceback(tmp_path):
    """Neither a full disk nor a damaged input: the exception propagates unchanged, outputs untouched."""
    out = tmp_path / "results" / "x.tsv"
    out.parent.mkdir()
    out.write_text("a\n")

    def step() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run([], step, exit_when_done=False, job_inputs=[str(out)], job_outputs=[str(out)])
    assert out.exists()
    logging.shutdown()


# --- damaged intermediate files -------------------------------------------------------------------------


def _cut(data: bytes) -> bytes:
    """The first half of a file, cut inside a line (a TSV cut at a line end is a shorter table, not a damaged one)."""
    cut = len(data) // 2
    while data[cut - 1 : cut] == b"\n":
        cut += 1
    return data[:cut]


def _intermediates(root: Path) -> dict[str, Path]:
    """One good file of each intermediate kind under root/results."""
    clean, splits, panel = root / "results" / "clean", root / "results" / "splits", root / "results" / "panels" / "p"
    for folder in (clean, splits, panel / "checkpoints" / "p"):
        folder.mkdir(parents=True, exist_ok=True)
    files = {
        "parquet": splits / "splits.parquet",
        "json": splits / "labels.json",
        "tsv": panel / "metrics.tsv",
        "pt": panel / "checkpoints" / "p" / "holdout.pt",
    }
    pd.DataFrame({"split_id": ["holdout"] * 50, "sample_id": [f"S{i}" for i in range(50)]}).to_parquet(files["parquet"])
    files["json"].write_text(json.dumps({"kind": "classification", "classes": ["a", "b"]}))
    pd.DataFrame({"panel": ["p", "q"], "roc_auc": [0.5, 0.7]}).to_csv(files["tsv"], sep="\t", index=False)
    torch.save({"w": torch.zeros(100)}, files["pt"])
    return files


@pytest.mark.parametrize("kind", ["parquet", "json", "tsv", "pt"])
def test_intact_files_pass_and_truncated_ones_are_named(tmp_path, monkeypatch, kind):
    monkeypatch.chdir(tmp_path)
    files = _intermediates(tmp_path)
    assert damaged_file(files[kind]) is None
    data = files[kind].read_bytes()
    files[kind].write_bytes(_cut(data))
    assert damaged_file(files[kind]) is not None
    if kind == "pt":
        assert damaged_file(files[kind].parent.parent).startswith(str(files[kind]))
    files[kind].write_bytes(b"")
    assert damaged_file(files[kind]) == "the file is empty"


def test_user_inputs_are_left_to_the_steps(tmp_path, monkeypatch):
    """Only the workflow's own files (results/ of the working directory) are judged; a user's table never is."""
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cohort.csv"
    path.write_text("broken")
    assert damaged_file(path) is None
    elsewhere = tmp_path / "data" / "results" / "table.tsv"
    elsewhere.parent.mkdir(parents=True)
    elsewhere.write_text("a\tb\nc")
    assert damaged_file(elsewhere) is None
    assert damaged_file(Path("data/results/table.tsv")) is None
    mine = tmp_path / "results" / "table.tsv"
    mine.parent.mkdir()
    mine.write_text("a\tb\nc")
    assert (
        damaged_file(mine) == damaged_file(Path("results/table.tsv")) == ("it ends in the middle of a line (truncated)")
    )


def test_rebuild_commands():
    assert rebuild_command("results/clean/cohort.parquet") == "snakemake --cores 4 --forcerun clean"
    assert rebuild_command("results/splits/labels.json") == "snakemake --cores 4 --forcerun split"
    assert rebuild_command("results/splits/scalers.parquet") == "snakemake --cores 4 --forcerun scale"
    assert rebuild_command("results/metrics/summary.tsv") == "snakemake --cores 4 --forcerun compare"
    assert rebuild_command("results/panels/a/part-001/nulls.parquet") == (
        "snakemake --cores 4 --forcerun results/panels/a/part-001/nulls.parquet"
    )
    assert rebuild_command("results/panels/a/checkpoints/a/cv_r1_f1.pt") == (
        "snakemake --cores 4 --forcerun results/panels/a/checkpoints"
    )


def test_a_step_failing_on_a_truncated_input_names_it_and_the_rebuild(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    files = _intermediates(tmp_path)
    data = files["parquet"].read_bytes()
    files["parquet"].write_bytes(data[:100])
    out = tmp_path / "results" / "out.tsv"

    def step() -> None:
        out.write_text("partial")
        pd.read_parquet(files["parquet"])

    with pytest.raises(SystemExit):
        run(
            [],
            step,
            exit_when_done=False,
            job_inputs=[str(files["json"]), str(files["parquet"])],
            job_outputs=[str(out)],
        )
    line = _one_line(capsys)
    assert line.startswith(f"panelmlp error: {files['parquet']} is damaged (not a readable parquet file: ")
    assert line.endswith("; rebuild it: snakemake --cores 4 --forcerun split")
    assert not out.exists()


# --- the workflow ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny finished run: one listed panel, few epochs, no nulls."""
    work = tmp_path_factory.mktemp("faults")
    cohort = write_cohort(work / "cohort.csv", n_samples=60, n_genes=6, effect=2.0, seed=5)
    extra = {
        "panels": {"glial": None, "microglia": None, "all": None, "planted": ["SIG1", "SIG2"]},
        "model": {"epochs": 5, "hidden": [4]},
        "split": {"cv_repeats": 1, "cv_folds": 3},
        "evaluate": {"permutations": 0, "random_panels": 0},
    }
    (work / "extra.yaml").write_text(yaml.safe_dump(extra))
    (work / "args").write_text(f"raw_csv={cohort.path}")
    proc = snakemake(
        work, "--cores", "1", "--configfile", str(work / "extra.yaml"), "--config", f"raw_csv={cohort.path}"
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return work


def _rerun(work: Path, tmp_path: Path) -> tuple[Path, subprocess.CompletedProcess]:
    return tmp_path, snakemake(
        tmp_path, "--cores", "1", "--configfile", str(work / "extra.yaml"), "--config", (work / "args").read_text()
    )


@pytest.mark.workflow
@pytest.mark.parametrize(
    ("damaged", "reason", "rebuild", "gone", "kept"),
    [
        (
            "results/splits/splits.parquet",
            "not a readable parquet file: Could not open Parquet input source 'results/splits/splits.parquet': "
            "Parquet magic bytes not found in footer.",
            "--forcerun split",
            "results/panels/planted/metrics.tsv",
            "results/clean/cohort.parquet",
        ),
        (
            "results/panels/planted/metrics.tsv",
            "it ends in the middle of a line (truncated)",
            "--forcerun results/panels/planted/metrics.tsv",
            "results/metrics/summary.tsv",
            "results/panels/planted/checkpoints/planted/holdout.pt",
        ),
    ],
)
def test_a_truncated_intermediate_stops_the_next_job_with_one_line(
    small_run, tmp_path, damaged, reason, rebuild, gone, kept
):
    """The file is cut in half after a run; the next `snakemake` stops with one line, the job's outputs gone."""
    work = tmp_path / "run"
    shutil.copytree(small_run, work, symlinks=True)
    data = _cut((work / damaged).read_bytes())
    (work / damaged).write_bytes(data)
    _, proc = _rerun(small_run, work)
    text = proc.stdout + proc.stderr
    assert proc.returncode == 1, text[-3000:]
    assert "Traceback" not in text
    # Snakemake echoes the failed job's log below the job's own stderr line: one message, said twice.
    lines = {line[line.index("panelmlp error:") :] for line in text.splitlines() if "panelmlp error:" in line}
    assert len(lines) == 1, text[-3000:]
    line = lines.pop()
    assert line.startswith(f"panelmlp error: {damaged} is damaged ({reason}")
    assert line.endswith(f"); rebuild it: snakemake --cores 4 {rebuild}")
    if not reason.startswith("not a readable"):  # our own words: the exact line
        assert line == f"panelmlp error: {damaged} is damaged ({reason}); rebuild it: snakemake --cores 4 {rebuild}"
    assert not (work / gone).exists()
    assert (work / kept).is_file()  # the steps before the failed one keep their outputs
    assert (work / damaged).read_bytes() == data  # the damaged file is left for the user
    # The named command, with the run's own config, repairs the run.
    fixed = snakemake(
        work, "--cores", "1", *rebuild.split(), "--configfile", str(small_run / "extra.yaml"), "--config",
        (small_run / "args").read_text(),
    )  # fmt: skip
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert (work / gone).is_file() and (work / damaged).read_bytes() != data


def test_a_tsv_with_a_field_longer_than_the_csv_modules_limit_is_not_damaged(tmp_path, monkeypatch):
    """panels.tsv of `all` at 20,000 genes holds one field of about 160 KB: whole, not damaged."""
    monkeypatch.chdir(tmp_path)
    table = tmp_path / "results" / "panels" / "all" / "panels.tsv"
    table.parent.mkdir(parents=True)
    genes = " ".join(f"G{i:05d}" for i in range(20_000))
    table.write_text(f"panel\tgenes\nall\t{genes}\n")
    assert len(genes) > 131_072
    assert damaged_file(Path("results/panels/all/panels.tsv")) is None
    table.write_text(f"panel\tgenes\nall\t{genes}\nother\n")
    assert damaged_file(Path("results/panels/all/panels.tsv")) == "line 3 has 1 fields, the header 2"
