"""Time to an event with censoring: one linear risk output trained on the Cox partial likelihood, scored by C-index."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..labels import class_matcher
from .base import Scoring, TargetKind

SURVIVAL_HISTORY = ("train_loss", "test_loss", "c_index")
"""Per-epoch quantities of a survival model: the Cox loss (Breslow ties) on training and test rows, Harrell's C."""

SURVIVAL_METRICS = ("c_index", "uno_c", "td_auc", "ibs")
"""Metric columns of a survival target: Harrell's C, Uno's C (training censoring), the mean time-dependent AUC
over ``target.horizons`` and the integrated Brier score; ``td_auc_{h}`` per horizon follow in metrics.tsv."""


def horizon_column(days: float) -> str:
    """The metrics.tsv column of the time-dependent AUC at ``days`` (whole days, as the schema asks): ``td_auc_365``."""
    return f"td_auc_{round(days)}"


def final_metrics(y_test: np.ndarray, output: np.ndarray, scoring: Scoring) -> dict:
    """Harrell's C, Uno's C, the time-dependent AUC (mean and per horizon) and the integrated Brier score of risks.

    Uno's C is truncated at the last training time (``tau``), and the Brier
    score's time grid stays below it, where the training rows' censoring
    distribution is known. The mean AUC is scikit-survival's: weighted by the
    drop of the test rows' Kaplan-Meier curve over the finite horizons.

    ``y_test`` and ``scoring.y_train`` are ``[n, 2]`` (time, event). Uno's C,
    the AUC and the Brier score weight by the censoring distribution of the
    training rows; the Brier score needs survival curves, which come from the
    Breslow baseline hazard of the training rows and their risks
    (``scoring.train_output``). A quantity the test rows cannot give (no
    comparable pair, a horizon beyond their follow-up) is NaN.
    """
    from .. import survival as sv

    time, event = y_test[:, 0].astype(np.float64), y_test[:, 1].astype(bool)
    t_train, e_train = scoring.y_train[:, 0].astype(np.float64), scoring.y_train[:, 1].astype(bool)
    risk = np.asarray(output[:, 0], dtype=np.float64)
    horizons = list(scoring.horizons)
    auc = sv.td_auc(t_train, e_train, time, event, risk, horizons) if horizons else np.zeros(0)
    limit = float(t_train.max())  # beyond the training rows' last time their censoring distribution is unknown
    times = sv.ibs_times(time, event, limit=limit)
    ibs = np.nan
    if scoring.train_output is not None and len(times):
        curves = sv.breslow_survival(t_train, e_train, np.asarray(scoring.train_output[:, 0], np.float64), risk, times)
        ibs = sv.integrated_brier_score(t_train, e_train, time, event, curves, times)
    out = {
        "c_index": sv.harrell_c(time, event, risk),
        "uno_c": sv.uno_c(t_train, e_train, time, event, risk, tau=limit),
        "td_auc": sv.td_auc_mean(time, event, np.asarray(horizons, dtype=np.float64), auc) if horizons else np.nan,
        "ibs": float(ibs),
    }
    out.update({horizon_column(h): float(a) for h, a in zip(horizons, auc, strict=True)})
    return out


def prediction_columns(y: np.ndarray, output: np.ndarray, classes: Sequence[str] = (), cut: object = None) -> dict:
    """Time, event, the risk and the risk group: ``high`` above the model's training rows' median risk.

    ``cut`` is that median per row (or one number); none: every row ``low``.
    """
    risk = np.asarray(output[:, 0], dtype=np.float64)
    threshold = np.full(len(risk), np.inf) if cut is None else np.asarray(cut, dtype=np.float64)
    return {
        "time": y[:, 0].astype(np.float64),
        "event": y[:, 1].astype(np.int64),
        "risk": risk,
        "risk_group": np.where(risk > threshold, "high", "low").astype(object),
    }


KIND = TargetKind(
    name="survival",
    history=SURVIVAL_HISTORY,
    metrics=SURVIVAL_METRICS,
    main_metric="c_index",
    chance=0.5,
    tuning_score="c_index",
    broad_margin=0.05,
    baselines=("constant", "cox_ridge"),
    chance_levels={"c_index": 0.5, "uno_c": 0.5, "td_auc": 0.5},
    prediction_types=(("time", "float64"), ("event", "int64"), ("risk", "float64"), ("risk_group", "text")),
    final_metrics=final_metrics,
    prediction_columns=prediction_columns,
    needs_train_output=True,
    pad_widths=False,
)
"""Survival: C-index 0.5 is a random ranking of risks; a constant risk and a ridge Cox model stand beside it."""


@dataclass
class SurvivalLabels:
    """Time and event per usable sample, and the count of every sample left out, by reason.

    ``time`` (days, float64) and ``event`` (1: the event was observed, 0:
    censored) are indexed by sample id and hold only usable samples. A sample
    is left out, and counted, when its event value is missing or matches
    neither class, or when its time is missing, not a number or negative.
    """

    time: pd.Series
    event: pd.Series
    event_name: str
    censored_name: str
    missing_label: int
    unmatched_label: int
    unmatched_values: dict[str, int]
    missing_time: int
    negative_time: int
    bad_time_values: dict[str, int]
    negative_unused: dict[str, dict] = field(default_factory=dict)
    """Usable samples whose other time column (not the one read for them) is negative, by sample id:
    ``{column, value}``. Not used, but a sign of a record to check (a death after a negative last contact)."""

    def class_labels(self) -> pd.Series:
        """The event status as a class name per usable sample (what the splits stratify by)."""
        return self.event.map({0: self.censored_name, 1: self.event_name}).astype(str)


def time_columns(target: Mapping) -> list[str]:
    """The time column(s) a survival target reads: one, or the event's and the censored samples'."""
    time = target["time"]
    return [time] if isinstance(time, str) else [time["event"], time["censored"]]


def survival_labels(frame: pd.DataFrame, target: Mapping) -> SurvivalLabels:
    """Time and event from the clinical columns of ``frame`` (indexed by sample id), per ``target``.

    ``target.event``: the event column and two case-insensitive regexes, for
    the event and for censoring (tried in that order). ``target.time``: one
    column, or ``{event: column, censored: column}``, read by each sample's
    status (e.g. diagnosis to death for the deceased, to last contact for the
    living). Nothing is silently used: a missing or negative time and an event
    value matching neither class are counted and reported.
    """
    event_spec = target["event"]
    column = event_spec["column"]
    match = class_matcher({"event": event_spec["event"], "censored": event_spec["censored"]})
    values = frame[column]
    present = values.dropna()
    status = present.map(match)
    unmatched = present[status.isna()]
    status = status.dropna()
    time = target["time"]
    if isinstance(time, str):
        raw = frame.loc[status.index, time]
    else:
        raw = frame.loc[status.index, time["event"]].where(status == "event", frame.loc[status.index, time["censored"]])
    missing = raw.isna()
    number = pd.to_numeric(raw.where(~missing), errors="coerce").astype("float64")
    finite = np.isfinite(number.to_numpy(dtype=np.float64, na_value=np.nan))
    not_number = ~missing.to_numpy() & ~finite
    negative = finite & (number.to_numpy(dtype=np.float64, na_value=np.nan) < 0)
    keep = finite & ~negative
    bad = raw[not_number].astype(str).value_counts()
    negative_unused: dict[str, dict] = {}
    if not isinstance(time, str):
        kept = status[keep]
        for name, other in (("event", time["censored"]), ("censored", time["event"])):
            ids = kept.index[kept == name]
            other_values = pd.to_numeric(frame.loc[ids, other], errors="coerce")
            for sample, value in other_values[other_values < 0].items():
                negative_unused[str(sample)] = {"column": other, "value": float(value)}
    return SurvivalLabels(
        time=number[keep],
        event=(status[keep] == "event").astype("int64"),
        event_name=str(event_spec["event"]),
        censored_name=str(event_spec["censored"]),
        missing_label=int(values.isna().sum()),
        unmatched_label=len(unmatched),
        unmatched_values={str(k): int(v) for k, v in unmatched.astype(str).value_counts().items()},
        missing_time=int(missing.sum() + not_number.sum()),
        negative_time=int(negative.sum()),
        bad_time_values={str(k): int(v) for k, v in bad.items()},
        negative_unused=negative_unused,
    )


def default_horizons(time: np.ndarray, event: np.ndarray) -> list[float]:
    """The quartiles of the observed event times, in whole days (distinct, ascending): 25%, 50% and 75%."""
    observed = np.asarray(time, dtype=np.float64)[np.asarray(event, dtype=bool)]
    if len(observed) == 0:
        return []
    return sorted({float(round(q)) for q in np.percentile(observed, [25, 50, 75]) if round(q) > 0})
