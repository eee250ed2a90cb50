"""The network's output head of each target kind, as the trainer needs it (torch side).

A :class:`Head` says how many outputs the last layer has, the loss and its
gradient with respect to those outputs, the per-epoch metrics, and how the
final outputs become the scores written out (class probabilities, values or
risks). Each target module (:mod:`panelmlp.targets`) builds its own head
with :func:`head_of`; the trainer asks for it and never tests a kind's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
MetricsFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class Head:
    """What the trainer needs of a target kind."""

    outputs: int
    """Width of the last layer."""
    loss_and_grad: LossFn
    """``(out [K, B, outputs], y, valid [K, B], n_valid [K]) -> (per-row losses [K, B], d mean loss / d out)``."""
    metrics: MetricsFn
    """``(out [K, T, outputs], y, valid [K, T]) -> [K, M]``: the per-epoch metrics after the two losses."""
    scores: Callable[[torch.Tensor], torch.Tensor]
    """Final outputs ``[K, T, outputs]`` -> the scores a model's test rows get (probabilities, values, risks)."""
    float_labels: bool
    """Labels are floats (values, 0/1 for one logit, survival times) rather than class indices."""
    build_classes: int
    """The ``n_classes`` argument of :func:`panelmlp.model.build_mlp` and :class:`~panelmlp.model.StackedMLP`."""
    class_codes: bool = False
    """Labels are class codes (scored as integers even when one logit trains on them as floats)."""


def head_of(kind: str, n_classes: int = 2, loss: str = "mse") -> Head:
    """The head of target kind ``kind`` (see :mod:`panelmlp.targets`)."""
    from .targets import target_kind

    return target_kind(kind).head(n_classes, loss)


def squeeze(out: torch.Tensor) -> torch.Tensor:
    """One output per row as ``[K, T]``."""
    return out.squeeze(-1)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Positive-class probability (one logit) or class probabilities (softmax)."""
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits.squeeze(-1))
    return torch.softmax(logits, dim=-1)
