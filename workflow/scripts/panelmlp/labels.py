"""Class labels from a free-text clinical column."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import pandas as pd

from .errors import PanelMlpError


@dataclass
class Labels:
    """Labels per sample and the count of samples that got none.

    ``labels`` holds only labelled samples, indexed by sample id, with the class
    names in ``classes`` order (the positive class last for two classes, so that
    its integer code is 1).
    """

    labels: pd.Series
    classes: list[str]
    positive: str | None
    missing: int
    unmatched: int
    unmatched_values: dict[str, int]

    def codes(self) -> pd.Series:
        """Integer class codes (``classes.index(label)``) per sample."""
        return self.labels.map({c: i for i, c in enumerate(self.classes)}).astype("int64")

    def counts(self) -> dict[str, int]:
        """Samples per class, in class order."""
        return {c: int((self.labels == c).sum()) for c in self.classes}


def class_matcher(classes: Mapping[str, str | None]) -> Callable[[object], str | None]:
    """The class of a value: the first of ``classes`` (class: regex, case-insensitive) whose regex it matches, or None.

    A class set to None is left out. The split step and the scoring of new
    samples that carry the target (:mod:`panelmlp.validation`) label values
    with this one rule.
    """
    patterns = []
    for name, pattern in classes.items():
        if pattern is None:
            continue
        try:
            patterns.append((name, re.compile(pattern, re.IGNORECASE)))
        except re.error as exc:
            raise PanelMlpError(f"config target.classes.{name}: {pattern!r} is not a valid regex ({exc})") from None

    def label(value: object) -> str | None:
        for name, regex in patterns:
            if regex.search(str(value)):
                return name
        return None

    return label


def derive_labels(values: pd.Series, classes: Mapping[str, str], positive: str | None = None) -> Labels:
    """Map free text to a class with case-insensitive regexes; first match wins.

    ``values`` is the target column indexed by sample id. Missing values, and
    values that match no class, get no label; both are counted, never silently
    lost. For two classes ``positive`` names the class coded 1. A class set to
    None is left out (a config file merged over the default can drop one).
    Every class must get at least one sample: a class without samples leaves
    its metrics undefined, and one class alone has nothing to separate.
    """
    classes = {name: pattern for name, pattern in classes.items() if pattern is not None}
    if len(classes) < 2:
        raise PanelMlpError("config target.classes: give at least two classes")
    names = list(classes)
    if positive is not None and positive not in names:
        raise PanelMlpError(f"config target.positive: {positive!r} is not one of target.classes {names}")
    if len(names) == 2 and positive is None:
        positive = names[1]
    label = class_matcher(classes)

    present = values.dropna()
    mapped = present.map(label)
    unmatched = present[mapped.isna()]
    counts = {name: int((mapped == name).sum()) for name in names}
    if min(counts.values()) == 0:
        listing = ", ".join(f"{name}: {n}" for name, n in counts.items())
        empty = [name for name, n in counts.items() if n == 0]
        seen = list(dict.fromkeys(str(v) for v in present))
        shown = ", ".join(repr(v) for v in seen[:4]) + (" ..." if len(seen) > 4 else "") if seen else "all missing"
        numeric = bool(seen) and pd.to_numeric(present, errors="coerce").notna().all()
        hint = " (the column holds numbers: for a numeric target set target.kind: regression)" if numeric else ""
        raise PanelMlpError(
            f"config target.classes: class(es) {empty} match no sample of column {values.name or 'target'} ({listing}); "
            f"its values: {shown}{hint}; fix the regexes, or leave that class out of target.classes "
            "(the classes you give replace the default ones)"
        )
    order = names
    if len(names) == 2 and positive is not None:
        order = [n for n in names if n != positive] + [positive]
    return Labels(
        labels=mapped.dropna().astype(str),
        classes=order,
        positive=positive if len(names) == 2 else None,
        missing=int(values.isna().sum()),
        unmatched=len(unmatched),
        unmatched_values={str(k): int(v) for k, v in unmatched.value_counts().items()},
    )
