"""A damaged, foreign or malicious checkpoint is one PanelMlpError line that names the file and how to retrain."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
from panelmlp.checkpoint import load_checkpoint, save_checkpoint
from panelmlp.errors import PanelMlpError
from panelmlp.model import build_mlp

RELATIVE = Path("results/panels/glial/checkpoints/glial/holdout.pt")
RETRAIN = "rerun `snakemake --forcerun results/panels/glial/checkpoints` (or remove results/panels/glial"


class WritesAFile:
    """A pickle whose loading would create ``marker`` (what a malicious checkpoint could do instead)."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A real checkpoint where the workflow writes it, the working directory being the workflow's."""
    monkeypatch.chdir(tmp_path)
    RELATIVE.parent.mkdir(parents=True)
    torch.manual_seed(0)
    model = build_mlp(3, [4], 2)
    hyper = {"hidden": [4], "activation": "relu", "dropout": 0.0, "lr": 0.001}
    save_checkpoint(
        RELATIVE,
        model.state_dict(),
        ["A", "B", "C"],
        [0.0] * 3,
        [1.0] * 3,
        ["neg", "pos"],
        "pos",
        hyper,
        "holdout",
        "cpu",
    )
    assert load_checkpoint(RELATIVE)["genes"] == ["A", "B", "C"]
    return RELATIVE


def error_of(path) -> str:
    """The message of the PanelMlpError loading ``path`` raises, checked for the common promises."""
    with pytest.raises(PanelMlpError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\n" not in message, message
    assert f"checkpoint {path} " in message, message
    assert "weights_only" not in message and "weights_only=False" not in message, message
    assert "retrain" in message, message
    return message


@pytest.mark.parametrize("keep", [0.05, 0.5, 0.9, 0.999])
def test_truncated(checkpoint, keep):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[: int(len(data) * keep)])
    message = error_of(checkpoint)
    assert "cannot be read (truncated or corrupt: " in message
    assert RETRAIN in message


def test_truncated_at_the_path_given_as_str_or_absolute(checkpoint):
    data = checkpoint.read_bytes()
    checkpoint.write_bytes(data[:100])
    assert RETRAIN in error_of(str(checkpoint))
    absolute = checkpoint.resolve()
    message = error_of(absolute)
    # --forcerun wants the path as the workflow names it; the folder to remove may stay absolute.
    assert "`snakemake --forcerun results/panels/glial/checkpoints`" in message
    assert f"remove {absolute.parents[2].as_posix()} " in message


def test_empty(checkpoint):
    checkpoint.write_bytes(b"")
    message = error_of(checkpoint)
    assert "(truncated or corrupt: empty file)" in message and RETRAIN in message


def test_a_text_file(checkpoint):
    checkpoint.write_text("version https://git-lfs.github.com/spec/v1\noid sha256:0123\nsize 1234\n")
    message = error_of(checkpoint)
    assert "(truncated or corrupt: a text file, not a PyTorch file)" in message and RETRAIN in message


def test_random_bytes_and_a_broken_zip(checkpoint):
    checkpoint.write_bytes(bytes(range(256)) * 4)
    assert "truncated or corrupt: not a PyTorch file" in error_of(checkpoint)
    with zipfile.ZipFile(checkpoint, "w") as archive:
        archive.writestr("notes.txt", "not a checkpoint")
    assert "truncated or corrupt: " in error_of(checkpoint)
    checkpoint.write_bytes(b"\x80\x02garbage")  # a pickle header, then nothing sensible
    assert "truncated or corrupt: " in error_of(checkpoint)


@pytest.mark.parametrize("container", ["torch.save", "pickle protocol 2", "pickle protocol 4"])
def test_a_pickle_that_runs_code_is_refused_and_does_not_run(checkpoint, tmp_path, container):
    marker = tmp_path / "code-ran"
    payload = {"format": "panelmlp-checkpoint/1", "state_dict": WritesAFile(marker)}
    if container == "torch.save":
        torch.save(payload, checkpoint)
    else:
        checkpoint.write_bytes(pickle.dumps(payload, protocol=int(container[-1])))
    message = error_of(checkpoint)
    assert not marker.exists()
    if container == "pickle protocol 4":  # torch stops at the protocol-4 framing, before any global
        assert "cannot be read (truncated or corrupt: " in message
    else:
        assert "cannot be read (it holds Python objects (" in message and "open) besides" in message
        assert "could run code" in message
    assert RETRAIN in message


def test_a_torch_file_that_is_not_a_panelmlp_checkpoint(checkpoint):
    torch.save({"model": {"weight": torch.zeros(2, 2)}}, checkpoint)
    assert "is not a panelmlp checkpoint (format key missing)" in error_of(checkpoint)
    torch.save({"format": "other-tool/3", "state_dict": {}}, checkpoint)
    assert "is not a panelmlp checkpoint (format 'other-tool/3', expected 'panelmlp-checkpoint/1')" in error_of(
        checkpoint
    )
    torch.save(torch.zeros(3), checkpoint)
    assert "is not a panelmlp checkpoint (format: it holds a Tensor, not a dict)" in error_of(checkpoint)
    torch.save({"format": "panelmlp-checkpoint/1", "genes": ["A"]}, checkpoint)
    message = error_of(checkpoint)
    assert "is not a complete panelmlp checkpoint (missing state_dict, scaler, classes, hyper)" in message
    assert RETRAIN in message


def test_a_directory_instead_of_a_file(checkpoint):
    folder = checkpoint.parent
    message = error_of(folder)
    assert "is a directory, not a checkpoint file (it holds holdout.pt)" in message
    checkpoint.unlink()
    checkpoint.mkdir()
    message = error_of(checkpoint)
    assert "is a directory, not a checkpoint file;" in message and RETRAIN in message


def test_missing(checkpoint):
    wrong = checkpoint.with_name("holdot.pt")
    message = error_of(wrong)
    assert "not found (its folder holds holdout.pt)" in message and RETRAIN in message
    checkpoint.unlink()
    assert RETRAIN in error_of(checkpoint)
    gone = Path("results/panels/screen/part-001/checkpoints/SET_A/cv_r1_f1.pt")
    message = error_of(gone)
    assert "`snakemake --forcerun results/panels/screen/part-001/checkpoints`" in message
    assert "remove results/panels/screen/part-001 " in message


def test_outside_the_workflow_layout(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"")
    message = error_of(path)
    assert "retrain it with the workflow (`snakemake --forcerun results/panels/<panel>/checkpoints`)" in message
