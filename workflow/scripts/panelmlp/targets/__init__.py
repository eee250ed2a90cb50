"""Target kinds: one module per kind, each a :class:`~panelmlp.targets.base.TargetKind` named ``KIND``.

Adding a kind means one new module here, its entry in :data:`KINDS`, the
schema's ``target.kind`` enum and its documentation.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..errors import PanelMlpError
from . import classification, regression, survival
from .base import TargetKind

KINDS: dict[str, TargetKind] = {m.KIND.name: m.KIND for m in (classification, regression, survival)}
"""Every target kind by name."""


def target_kind(name: str | None) -> TargetKind:
    """The kind called ``name`` (None: classification)."""
    try:
        return KINDS[name or "classification"]
    except KeyError:
        raise PanelMlpError(f"config target.kind: {name!r} is not one of {', '.join(KINDS)}") from None


def kind_of_labels(label_info: Mapping) -> TargetKind:
    """The kind a labels.json (the split step's summary) describes."""
    return target_kind(label_info.get("kind"))


def kind_of_metrics(columns: object) -> TargetKind:
    """The kind whose main metric is among a metrics or summary table's columns (or its ``metric`` values)."""
    names = set(columns)
    for kind in KINDS.values():
        if kind.main_metric in names:
            return kind
    return KINDS["classification"]


__all__ = ["KINDS", "TargetKind", "kind_of_labels", "kind_of_metrics", "target_kind"]
