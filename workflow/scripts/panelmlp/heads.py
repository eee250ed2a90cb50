"""The network's output head of each target kind, as the trainer needs it (torch side).

A :class:`Head` says how many outputs the last layer has, the loss and its
gradient with respect to those outputs, the per-epoch metrics, and how the
final outputs become the scores written out (class probabilities, values or
risks). The rest of a kind lives in its module of :mod:`panelmlp.targets`;
its head lives here because only the training envs carry torch (the data and
report steps import the target modules). The trainer asks :func:`head_of`
and never tests a kind's name; a new kind adds its builder to :data:`HEADS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .epoch_metrics import (
    cox_loss_and_grad,
    metrics_from_logits,
    regression_loss_and_grad,
    regression_metrics,
    survival_epoch_metrics,
)
from .model import logit_grad, loss_and_grad, output_size

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
    output_bias: bool = True
    """Whether the last layer's bias trains. The Cox partial likelihood does not change when every risk shifts by
    one constant, so that bias has no gradient: its computed gradient is rounding noise, which Adam would scale
    up to full steps in random directions. A Cox head keeps it at its initial value."""
    grad_only: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    """``(out [K, B, outputs], y, scale [K, B, 1]) -> d mean loss / d out``, the gradient of
    :attr:`loss_and_grad` alone (``scale``: ``valid / n_valid``), where the per-row losses are each a function
    of the row's own output: the chunk-by-chunk trainer then scores a whole block of epochs' training outputs at
    once. None: the head's losses come with every step's gradient."""


def squeeze(out: torch.Tensor) -> torch.Tensor:
    """One output per row as ``[K, T]``."""
    return out.squeeze(-1)


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Positive-class probability (one logit) or class probabilities (softmax)."""
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits.squeeze(-1))
    return torch.softmax(logits, dim=-1)


def classification_head(n_classes: int, loss: str = "mse") -> Head:
    """One logit on BCEWithLogitsLoss for two classes, a softmax on CrossEntropyLoss for more."""

    def loss_fn(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor):
        return loss_and_grad(out, y.to(out.dtype) if out.shape[-1] == 1 else y, valid, n_valid)

    def metrics(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return metrics_from_logits(out, y, valid, n_classes)

    return Head(
        output_size(n_classes),
        loss_fn,
        metrics,
        probabilities,
        n_classes == 2,
        n_classes,
        class_codes=True,
        grad_only=logit_grad if n_classes == 2 else None,
    )


def regression_head(n_classes: int = 1, loss: str = "mse") -> Head:
    """One linear output on MSELoss or L1Loss (the target standardised with the training rows)."""

    def loss_fn(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_valid: torch.Tensor):
        return regression_loss_and_grad(out, y, valid, n_valid, loss)

    def metrics(out: torch.Tensor, y: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        return regression_metrics(y, out.squeeze(-1), valid)

    return Head(1, loss_fn, metrics, squeeze, True, 1)


def survival_head(n_classes: int = 1, loss: str = "cox") -> Head:
    """One linear risk output on the Cox partial likelihood (Breslow ties) per minibatch; labels ``(time, event)``."""
    return Head(1, cox_loss_and_grad, survival_epoch_metrics, squeeze, True, 1, output_bias=False)


HEADS: dict[str, Callable[[int, str], Head]] = {
    "classification": classification_head,
    "regression": regression_head,
    "survival": survival_head,
}
"""The head builder of every target kind (the keys of :data:`panelmlp.targets.KINDS`)."""


def head_of(kind: str, n_classes: int = 2, loss: str = "mse") -> Head:
    """The head of target kind ``kind``."""
    return HEADS[kind](n_classes, loss)
