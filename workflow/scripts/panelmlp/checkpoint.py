"""Self-contained model checkpoints.

A checkpoint holds everything needed to score new raw expression values: the
``state_dict`` of :func:`panelmlp.model.build_mlp`, the genes in input order,
the scaler's means and scales, the class names, the hyper-parameters, the
device it was trained on and the library versions. A gene that carried no
information in the training rows (constant or never observed) has scale
infinity and is named in ``scaler["uninformative"]``: every raw value of it,
however wild, scores as 0 (see :mod:`panelmlp.scaling`). A checkpoint written
before that key existed loads as before. It holds only tensors,
numbers, strings, lists and dicts, so it loads with ``weights_only=True`` and a
checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import PanelMlpError
from .model import build_mlp
from .scaling import scale_values, uninformative
from .targets import target_kind
from .versions import library_versions

FORMAT = "panelmlp-checkpoint/1"
REQUIRED_KEYS = ("state_dict", "genes", "scaler", "classes", "hyper")


def save_checkpoint(
    path: str | Path,
    state_dict: dict[str, torch.Tensor],
    genes: Sequence[str],
    scaler_mean: Sequence[float],
    scaler_scale: Sequence[float],
    classes: Sequence[str],
    positive: str | None,
    hyper: dict,
    split_id: str,
    device: str,
    target: dict | None = None,
    extra: dict | None = None,
) -> None:
    """Write one model's checkpoint.

    ``target`` is ``{"kind": "classification"}`` (the default); for a
    regression model ``{"kind": "regression", "mean": m, "sd": s, "loss"}``
    (the network predicts the target standardised with the training rows'
    mean and sd); for a survival model ``{"kind": "survival", "median_risk":
    m, "horizons": [...]}`` (the network's one output is the risk, and ``m``
    its median over the model's own training rows, the cut of the risk
    groups). ``extra`` holds what was chosen for this model (best epoch, grid point).
    A gene with an infinite ``scaler_scale`` is uninformative (see
    :func:`panelmlp.scaling.uninformative`) and listed as such.
    """
    flagged = uninformative(np.asarray(scaler_scale, dtype=np.float64))
    torch.save(
        {
            "format": FORMAT,
            "state_dict": compact_tensors(state_dict),
            "genes": list(genes),
            "scaler": {
                "mean": [float(v) for v in scaler_mean],
                "scale": [float(v) for v in scaler_scale],
                "uninformative": [g for g, f in zip(genes, flagged, strict=True) if f],
            },
            "classes": list(classes),
            "positive": positive,
            "hyper": dict(hyper),
            "split_id": split_id,
            "device": device,
            "versions": library_versions(),
            "target": dict(target or {"kind": "classification"}),
            "extra": dict(extra or {}),
        },
        path,
    )


def compact_tensors(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state_dict`` with every tensor that is a view into a larger storage replaced by a copy of its own.

    ``torch.save`` writes a tensor's whole storage, not just the tensor: a
    model cut out of a stack of 550 (its bias a row of the stack's bias) would
    carry the biases of all 550, 290 KB instead of 6 KB per checkpoint and
    two thirds of the time it takes to write. The values, shapes and dtypes
    are unchanged; a tensor that owns its storage is kept as it is.
    """
    out = {}
    for key, tensor in state_dict.items():
        whole = tensor.untyped_storage().nbytes()
        own = tensor.numel() * tensor.element_size()
        out[key] = tensor.clone(memory_format=torch.contiguous_format) if whole != own else tensor
    return out


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``: a file that holds code is refused, never run).

    Every failure is one :class:`PanelMlpError` line that names the file, says
    what is wrong with it and how to retrain it.
    """
    file = Path(path)
    retrain = _retrain_hint(file)
    if file.is_dir():
        inside = sorted(p.name for p in file.glob("*.pt"))
        holds = f" (it holds {_some(inside)})" if inside else ""
        raise PanelMlpError(f"checkpoint {path} is a directory, not a checkpoint file{holds}; {retrain}")
    try:
        with warnings.catch_warnings():  # torch warns about odd pickle protocols; the error below says it all
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            checkpoint = torch.load(file, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        siblings = sorted(p.name for p in file.parent.glob("*.pt")) if file.parent.is_dir() else []
        there = f" (its folder holds {_some(siblings)})" if siblings else ""
        raise PanelMlpError(f"checkpoint {path} not found{there}; {retrain}") from None
    except PermissionError:
        raise PanelMlpError(f"checkpoint {path} cannot be read (permission denied); check its permissions") from None
    except pickle.UnpicklingError as exc:
        # "unsupported GLOBAL posix.system ..." / "Unsupported global: GLOBAL io.open was not an allowed global"
        code = re.search(r"\bGLOBAL ([\w.]+)", str(exc))
        if code:
            raise PanelMlpError(
                f"checkpoint {path} cannot be read (it holds Python objects ({code.group(1)}) besides tensors, numbers"
                f" and text, and such a file is never loaded because loading it could run code); {retrain}"
            ) from None
        raise PanelMlpError(f"checkpoint {path} cannot be read ({_damage(file, exc)}); {retrain}") from None
    except Exception as exc:  # torch.load raises RuntimeError, EOFError, KeyError, UnicodeDecodeError, OSError...
        raise PanelMlpError(f"checkpoint {path} cannot be read ({_damage(file, exc)}); {retrain}") from None
    if not isinstance(checkpoint, dict):
        raise PanelMlpError(
            f"checkpoint {path} is not a panelmlp checkpoint (format: it holds a {type(checkpoint).__name__},"
            f" not a dict); {retrain}"
        )
    if checkpoint.get("format") != FORMAT:
        found = "key missing" if "format" not in checkpoint else f"{checkpoint['format']!r}, expected {FORMAT!r}"
        raise PanelMlpError(f"checkpoint {path} is not a panelmlp checkpoint (format {found}); {retrain}")
    missing = [key for key in REQUIRED_KEYS if key not in checkpoint]
    if missing:
        raise PanelMlpError(
            f"checkpoint {path} is not a complete panelmlp checkpoint (missing {', '.join(missing)}); {retrain}"
        )
    return checkpoint


def _retrain_hint(file: Path) -> str:
    """How to retrain the model of a checkpoint at ``{unit}/checkpoints/{panel}/{split}.pt``."""
    parts = file.parts[:-1]
    if "checkpoints" in parts[1:]:
        unit = Path(*parts[: len(parts) - 1 - parts[::-1].index("checkpoints")])
        # --forcerun wants the output as the workflow names it: relative, from results/ on.
        inner = unit.parts
        start = len(inner) - 1 - inner[::-1].index("results") if "results" in inner else 0
        target = Path(*inner[start:], "checkpoints").as_posix()
        return f"rerun `snakemake --forcerun {target}` (or remove {unit.as_posix()} and rerun snakemake) to retrain"
    return (
        "retrain it with the workflow (`snakemake --forcerun results/panels/<panel>/checkpoints`) and load it"
        " from there"
    )


def _damage(file: Path, exc: Exception) -> str:
    """``truncated or corrupt: <short reason>`` for a file torch cannot read."""
    try:
        with open(file, "rb") as handle:
            head = handle.read(512)
    except OSError:
        head = None
    if head == b"":
        reason = "empty file"
    elif head is not None and not head.startswith((b"PK\x03\x04", b"\x80")):
        reason = "a text file, not a PyTorch file" if _looks_like_text(head) else "not a PyTorch file"
    else:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
        # torch's own advice (loading with weights_only off) is never the fix here: drop it.
        noise = ("weights_only", "weights only", "check the documentation", "please file an issue")
        lines = [line for line in lines if line and not any(n in line.lower() for n in noise)]
        reason = re.sub(r"^\[enforce fail at [^\]]*\][\s.]*", "", lines[0]) if lines else ""  # a c10 prefix
        reason = reason.split(". ")[0].rstrip(".")
        if len(reason) < 12:  # KeyError('101'), EOFError(): the type says more than the text
            reason = f"{type(exc).__name__} {reason}".strip()
        reason = reason[:160]
    return f"truncated or corrupt: {reason}"


def _looks_like_text(head: bytes) -> bool:
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isprintable() or ch in "\t\r\n" for ch in text)


def _some(names: list[str], most: int = 4) -> str:
    """``a.pt, b.pt, ... (12 files)``."""
    shown = ", ".join(names[:most])
    return shown if len(names) <= most else f"{shown}, ... ({len(names)} files)"


def uninformative_genes(checkpoint: dict) -> list[str]:
    """Genes the model ignores (constant or never observed in its training rows); none for an older checkpoint."""
    return [str(g) for g in checkpoint["scaler"].get("uninformative", [])]


def target_of(checkpoint: dict) -> dict:
    """What the model predicts: ``{"kind": "classification"}``, ``{"kind": "regression", "mean", "sd", ...}``
    or ``{"kind": "survival", "median_risk", "horizons"}`` (see :func:`save_checkpoint`)."""
    return dict(checkpoint.get("target") or {"kind": "classification"})


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Sequential:
    """The trained network, in eval mode: one output per class for class probabilities, else one (value or risk)."""
    hyper = checkpoint["hyper"]
    probabilities = target_kind(target_of(checkpoint).get("kind")).class_probabilities
    n_out = len(checkpoint["classes"]) if probabilities else 1
    model = build_mlp(len(checkpoint["genes"]), hyper["hidden"], n_out, hyper["activation"], hyper["dropout"])
    model.load_state_dict(checkpoint["state_dict"])
    return model.eval()


def predict_scaled(checkpoint: dict, scaled: np.ndarray) -> np.ndarray:
    """Class probabilities ``[n, C]`` for already standardised inputs ``[n, genes]``."""
    model = model_from_checkpoint(checkpoint)
    with torch.inference_mode():
        logits = model(torch.as_tensor(np.asarray(scaled, dtype=np.float32)))
    if logits.shape[1] == 1:
        p = torch.sigmoid(logits[:, 0]).numpy()
        return np.stack([1 - p, p], axis=1)
    return torch.softmax(logits, dim=1).numpy()


def predict_raw(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """Class probabilities for raw expression values ``[n, genes]`` in the checkpoint's gene order.

    Applies the stored training-set scaler first; a missing value becomes the
    training mean, and an uninformative gene (infinite scale) is 0 whatever its value.
    """
    return predict_scaled(checkpoint, scaled_inputs(checkpoint, expression))


def scaled_inputs(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """Raw values ``[n, genes]`` (checkpoint gene order) standardised with the checkpoint's scaler, float64."""
    scaler = checkpoint["scaler"]
    return scale_values(expression, np.asarray(scaler["mean"]), np.asarray(scaler["scale"]))


def predict_value(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """Predicted target values ``[n]`` of a regression checkpoint for raw expression values ``[n, genes]``."""
    target = target_of(checkpoint)
    if not target_kind(target.get("kind")).standardised:
        raise PanelMlpError("predict_value needs a regression checkpoint; use predict_output for its kind's output")
    return _single_output(checkpoint, expression) * float(target["sd"]) + float(target["mean"])


def predict_risk(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """Risks ``[n]`` of a survival checkpoint (higher: earlier event) for raw expression values ``[n, genes]``.

    The network's output on the inputs standardised with the stored scaler,
    as the fit step computed it for the test rows (predictions.parquet's ``risk``).
    """
    kind = target_kind(target_of(checkpoint).get("kind"))
    if kind.class_probabilities or kind.standardised:
        raise PanelMlpError(
            f"predict_risk needs a survival checkpoint, not a {kind.name} one; use predict_output for its output"
        )
    return _single_output(checkpoint, expression)


def predict_output(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """The output of the checkpoint's target kind ``[n, out]`` (float64) for raw expression values ``[n, genes]``.

    Class probabilities ``[n, C]`` (:func:`predict_raw`), a regression
    target's values ``[n, 1]`` in its units (:func:`predict_value`) or a
    survival target's risks ``[n, 1]`` (:func:`predict_risk`).
    """
    kind = target_kind(target_of(checkpoint).get("kind"))
    if kind.class_probabilities:
        return np.asarray(predict_raw(checkpoint, expression), dtype=np.float64)
    if kind.standardised:
        return predict_value(checkpoint, expression)[:, None]
    return predict_risk(checkpoint, expression)[:, None]


def _single_output(checkpoint: dict, expression: np.ndarray) -> np.ndarray:
    """The network's one output ``[n]`` (float64) on raw values standardised with the checkpoint's scaler."""
    scaled = scaled_inputs(checkpoint, expression)
    model = model_from_checkpoint(checkpoint)
    with torch.inference_mode():
        return model(torch.as_tensor(scaled, dtype=torch.float32))[:, 0].numpy().astype(np.float64)
