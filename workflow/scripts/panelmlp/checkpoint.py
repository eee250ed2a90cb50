"""Self-contained model checkpoints.

A checkpoint holds everything needed to score new raw expression values: the
``state_dict`` of :func:`panelmlp.model.build_mlp`, the genes in input order,
the scaler's means and scales, the class names, the hyper-parameters, the
device it was trained on and the library versions. It holds only tensors,
numbers, strings, lists and dicts, so it loads with ``weights_only=True`` and a
checkpoint from elsewhere cannot run code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .errors import PanelMlpError
from .model import build_mlp
from .versions import library_versions


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
) -> None:
    """Write one model's checkpoint."""
    torch.save(
        {
            "format": "panelmlp-checkpoint/1",
            "state_dict": state_dict,
            "genes": list(genes),
            "scaler": {"mean": [float(v) for v in scaler_mean], "scale": [float(v) for v in scaler_scale]},
            "classes": list(classes),
            "positive": positive,
            "hyper": dict(hyper),
            "split_id": split_id,
            "device": device,
            "versions": library_versions(),
        },
        path,
    )


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint safely (``weights_only=True``)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise PanelMlpError(f"checkpoint {path} not found; rerun the train step") from None
    if checkpoint.get("format") != "panelmlp-checkpoint/1":
        raise PanelMlpError(f"{path} is not a panelmlp checkpoint")
    return checkpoint


def model_from_checkpoint(checkpoint: dict) -> torch.nn.Sequential:
    """The trained network, in eval mode."""
    hyper = checkpoint["hyper"]
    model = build_mlp(
        len(checkpoint["genes"]), hyper["hidden"], len(checkpoint["classes"]), hyper["activation"], hyper["dropout"]
    )
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
    training mean.
    """
    mean = np.asarray(checkpoint["scaler"]["mean"])
    scale = np.asarray(checkpoint["scaler"]["scale"])
    scaled = np.nan_to_num((np.asarray(expression, dtype=np.float64) - mean) / scale, nan=0.0)
    return predict_scaled(checkpoint, scaled)
