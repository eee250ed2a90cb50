"""The protocol every target kind follows, and what the kinds share.

A target kind says how a clinical column becomes ``y``, what the network
outputs and trains on, which metrics score it per epoch and at the end, what
"no signal" is (its chance value), which baselines stand beside it, which
columns its predictions carry and which figures the report draws. The fit,
compare, predict and report steps ask the kind and never test its name.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Scoring:
    """What a kind's final metrics of one model on one split may read besides the test rows' labels and outputs."""

    y_train: Any
    """Training labels (class codes, values, or ``[n, 2]`` time and event)."""
    train_output: Any = None
    """The model's outputs on its training rows, where the kind needs them (survival: risks)."""
    horizons: tuple[float, ...] = ()
    """Days of a survival target's time-dependent AUC."""


@dataclass(frozen=True)
class TargetKind:
    """What the rest of the workflow needs to know of one kind of target.

    The behaviour (labels, losses, metrics, baselines) lives in the kind's
    module; this record holds the names and numbers the tables and verdicts
    read, so a table reader or the report can be told the kind and nothing else.
    """

    name: str
    """``classification``, ``regression`` or ``survival``: the config's ``target.kind``."""
    history: tuple[str, ...]
    """Per-epoch quantities of a model, in the trainer's order: ``train_loss``, ``test_loss``, then the metrics."""
    metrics: tuple[str, ...]
    """Metric columns of metrics.tsv and summary.tsv, in order."""
    main_metric: str
    """The metric every verdict, test and ranking reads."""
    chance: float
    """The main metric's value without signal."""
    higher_is_better: bool = True
    """Whether a larger main metric is better (all three kinds: yes)."""
    tuning_score: str = "roc_auc"
    """The history quantity nested tuning ranks grid points by (``test_loss`` is minimised, the others maximised)."""
    broad_margin: float = 0.05
    """From this margin of random gene sets' median score over chance, a screen speaks of a broad program."""
    baselines: tuple[str, ...] = ()
    """Baselines always fitted beside the MLP (see :mod:`panelmlp.evaluate`)."""
    optional_baselines: tuple[str, ...] = ()
    """Baselines ``evaluate.baselines`` may add."""
    chance_levels: dict[str, float] = field(default_factory=dict)
    """Chance value of each metric that has one (figures draw it as a line)."""
    ranges: dict[str, tuple[float, float]] = field(default_factory=dict)
    """Range an interval of a metric is clipped to, where it is not [0, 1]."""
    prediction_types: tuple[tuple[str, str], ...] = ()
    """The kind's columns of predictions.parquet after the keys (collection, panel, model, split_id, kind,
    sample_id), with their logical types (``text``, ``int64``, ``float64``); :mod:`panelmlp.tables` reads them."""
    final_metrics: Callable[[Any, Any, Scoring], dict] | None = None
    """``(y_test, output [n, out], scoring) -> {metric: value}``: one model's row of metrics.tsv."""
    final_metrics_many: Callable[[Sequence[tuple[Any, Any, Scoring]]], list[dict]] | None = None
    """``[(y_test, output, scoring), ...] -> [{metric: value}, ...]``: :attr:`final_metrics` of many models at
    once, each the same numbers as alone (classification: the calibration fits run together); None: one at a time."""
    prediction_columns: Callable[..., dict] | None = None
    """``(y_rows, output [n, out], classes, cut) -> {column: array}``: the kind's columns of predictions.parquet."""
    needs_train_output: bool = False
    """Whether :attr:`final_metrics` reads the model's outputs on its training rows."""
    pad_widths: bool = True
    """Whether models of different input widths may train in one stack, the narrower zero-padded.

    Padding changes the order in which a matrix product sums, so a padded
    model's outputs differ from its own width's in the last bits. Harmless for
    most losses; the Cox partial likelihood, though, is unchanged by a shift
    of every risk, so some gradients (a hidden unit active on every row of a
    minibatch) are rounding noise, which Adam scales up to whole steps. A
    survival target therefore stacks only models of one width, and a model
    trains exactly as it would alone.
    """
    class_probabilities: bool = False
    """Outputs are class probabilities ``[n, C]`` (the trainer gives the positive class's alone for two)."""
    standardised: bool = False
    """The network learns the target standardised with each split's training rows (a regression target)."""
    in_target_units: tuple[str, ...] = ()
    """History quantities in the target's units (scaled back by the training sd when :attr:`standardised`)."""
    tuning_label: str = ""
    """What tuning.tsv's ``score`` column calls :attr:`tuning_score` (default: its name)."""

    def network_output(self, scores: Any, n_classes: int, mean: float = 0.0, sd: float = 1.0) -> Any:
        """The trainer's test scores of one model as the kind's output ``[n, out]``.

        Classes: probabilities ``[n, C]`` (two classes: the trainer gives the
        positive class's, the negative's is its complement). A standardised
        target: values mapped back to the target's units. Else: the scores.
        """
        import numpy as np

        if self.class_probabilities:
            return np.c_[1 - scores, scores] if n_classes == 2 else scores
        values = np.asarray(scores, dtype=np.float64)
        if self.standardised:
            values = values * sd + mean
        return values[:, None]

    @property
    def prediction_text(self) -> tuple[str, ...]:
        """The text columns among :attr:`prediction_types`."""
        return tuple(name for name, kind in self.prediction_types if kind == "text")

    def metric_range(self, metric: str) -> tuple[float, float]:
        """Where a metric's values can lie ([0, 1] unless the kind says otherwise)."""
        return self.ranges.get(metric, (0.0, 1.0))

    @property
    def tuning_higher_is_better(self) -> bool:
        """Nested tuning maximises its score, except a loss."""
        return self.tuning_score != "test_loss"


UNBOUNDED = (-math.inf, math.inf)
