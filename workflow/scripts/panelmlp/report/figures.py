"""The report's figures as plain JSON-able dicts ``{"data": [...], "layout": {...}}`` for Plotly.newPlot.

Built without plotly.graph_objects: its validation costs tens of milliseconds
per figure, and a run of 200 panels draws over a thousand. Numbers are rounded
to :data:`DIGITS` significant digits and curves thinned to at most
:data:`MAX_POINTS` points, so a panel's figures weigh kilobytes. The quiet
layout template (:data:`TEMPLATE`) is not repeated in each figure: the page
holds it once and applies it when drawing. Nothing here reads files.

This module holds what figures share (template, colours, rounding, subplot
grids) and each panel's figures (pair plot, training curves, ROC and PR
curves, confusion matrices, reliability diagram; Kaplan-Meier curves of risk
groups and risk histograms for a survival target) and the class balance; the
comparison and null figures live with their sections (:mod:`.comparison`, :mod:`.nulls`).
Chance lines come from the target kinds' records (:data:`panelmlp.targets.KINDS`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..metrics import average_precision, pr_points, reliability_bins, roc_auc, roc_points
from ..targets import KINDS
from .inputs import Rows, first_rows
from .page import esc

Figure = dict[str, Any]
"""A figure: ``{"data": [trace, ...], "layout": {...}}``."""

MODEL_ORDER = ("mlp", "sklearn_mlp", "logreg", "ridge", "cox_ridge", "majority", "mean", "constant")
"""Models of metrics.tsv, in the order the report shows them."""

MODEL_NAMES = {
    "mlp": "MLP",
    "sklearn_mlp": "scikit-learn MLP",
    "logreg": "Logistic regression",
    "majority": "Majority class",
    "ridge": "Ridge regression",
    "mean": "Training mean",
    "cox_ridge": "Ridge Cox regression",
    "constant": "Constant risk",
}
MODEL_COLOURS = {
    "mlp": "#1f5fa8",
    "sklearn_mlp": "#6a3d9a",
    "logreg": "#e08214",
    "majority": "#8c8c8c",
    "ridge": "#e08214",
    "mean": "#8c8c8c",
    "cox_ridge": "#e08214",
    "constant": "#8c8c8c",
}
CLASS_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
CV_COLOUR = "#1f5fa8"
HOLDOUT_COLOUR = "#d62728"
CHANCE_LINE = {"color": "#555555", "dash": "dash", "width": 1}

METRIC_NAMES = {
    "train_loss": "Training loss",
    "test_loss": "Test loss",
    "loss": "Loss (cross-entropy)",
    "accuracy": "Accuracy",
    "balanced_accuracy": "Balanced accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "mcc": "MCC",
    "r2": "R²",
    "rmse": "RMSE",
    "mae": "MAE",
    "pearson": "Pearson r",
    "spearman": "Spearman ρ",
    "brier": "Brier score",
    "calibration_slope": "Calibration slope",
    "calibration_intercept": "Calibration intercept",
    "c_index": "C-index (Harrell)",
    "uno_c": "Uno's C",
    "td_auc": "Time-dependent AUC (mean)",
    "ibs": "Integrated Brier score",
}

KEY_METRICS = ("roc_auc", "balanced_accuracy", "accuracy", "f1", "mcc", "pr_auc")
"""Metrics of the per-metric comparison chart and table, in order."""

CHANCE_LEVEL = {metric: value for kind in KINDS.values() for metric, value in kind.chance_levels.items()}
"""Value of a model without signal, for the metrics where it does not depend on the data: every target kind's
``chance_levels`` (their metric names do not overlap). Kept as a name for code that imports it."""

IDEAL_LEVEL = {"calibration_slope": 1.0, "calibration_intercept": 0.0}
"""Value of perfectly calibrated probabilities, for the calibration metrics."""

RELIABILITY_BINS = 10
"""Bins of the reliability diagram: tenths of the predicted probability."""

DIGITS = 4
"""Significant digits of every number in a figure."""

MAX_POINTS = 200
"""At most this many points per drawn curve (epochs, ROC and PR thresholds)."""

MIN_POINTS = 100
"""However many panels, a curve keeps at least this many points."""

POINT_BUDGET = 20000
"""Points per curve times panels: a report of many panels draws each panel's curves coarser (see :func:`points_per_curve`)."""

CURVE_DIGITS = 3
"""Significant digits of drawn curves and points: finer than a pixel at the report's figure sizes."""

BAND_COLOUR = "rgba(31,95,168,0.18)"

CURVE_CELLS = (
    ("loss", ("test_loss", "train_loss")),
    ("accuracy", ("accuracy",)),
    ("precision", ("precision",)),
    ("recall", ("recall",)),
    ("f1", ("f1",)),
    ("roc_auc", ("roc_auc",)),
    ("r2", ("r2",)),
    ("rmse", ("rmse",)),
    ("mae", ("mae",)),
    ("pearson", ("pearson",)),
    ("spearman", ("spearman",)),
    ("c_index", ("c_index",)),
)
"""Subplots of the per-epoch figure and the history columns each draws (a run's history has one kind's columns)."""

_AXIS = {
    "showgrid": True,
    "gridcolor": "#e6e6e6",
    "zeroline": False,
    "linecolor": "#999999",
    "showline": True,
    "ticks": "outside",
    "automargin": True,
}

TEMPLATE: dict[str, Any] = {
    "layout": {
        "font": {"family": "Helvetica, Arial, sans-serif", "size": 12, "color": "#222222"},
        "paper_bgcolor": "white",
        "plot_bgcolor": "white",
        "colorway": list(CLASS_COLOURS),
        "xaxis": _AXIS,
        "yaxis": _AXIS,
        "hovermode": "closest",
        "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
        "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
    }
}
"""A small, quiet layout template (plotly's default one adds kilobytes to every figure)."""


def model_name(model: str) -> str:
    """Display name of a model code of metrics.tsv."""
    return MODEL_NAMES.get(model, model)


def metric_name(metric: str) -> str:
    """Display name of a metric column (``td_auc_<h>``: the time-dependent AUC at ``h`` days)."""
    if metric not in METRIC_NAMES and metric.startswith("td_auc_") and metric[7:].isdigit():
        return f"Time-dependent AUC at {int(metric[7:])} days"
    return METRIC_NAMES.get(metric, metric)


def rounded(values: object, digits: int = DIGITS) -> np.ndarray:
    """``values`` (any shape) rounded to ``digits`` significant digits; NaN and infinities kept.

    Rounded by powers of ten, which are exact in binary up to 1e22, so each
    result is the double nearest its short decimal and JSON writes it short;
    a thousand times faster than formatting each number as text.
    """
    array = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(array)
    safe = np.where(finite, array, 0.0)
    with np.errstate(divide="ignore"):
        magnitude = np.floor(np.log10(np.abs(safe)))
    decimals = np.where(safe != 0, digits - 1 - magnitude, 0).astype(np.int64)
    exact = np.abs(decimals) <= 22
    scale = 10.0 ** np.abs(np.where(exact, decimals, 0))
    out = np.where(decimals >= 0, np.round(safe * scale) / scale, np.round(safe / scale) * scale)
    for index in zip(*np.nonzero(~exact & finite), strict=True):
        out[index] = float(f"{array[index]:.{digits}g}")
    return np.where(finite, out, np.nan)


def listed(array: np.ndarray) -> list[float | None]:
    """A rounded 1-D array as a JSON-ready list, NaN as None (JSON null)."""
    values = array.tolist()
    if np.isfinite(array).all():
        return values
    return [v if math.isfinite(v) else None for v in values]


def numbers(values: object, digits: int = DIGITS) -> list[float | None]:
    """``values`` as a flat list of floats rounded to ``digits`` significant digits, NaN as None."""
    return listed(rounded(np.asarray(values, dtype=np.float64).ravel(), digits))


def numbers_many(arrays: Sequence[object], digits: int = DIGITS) -> list[list]:
    """Several arrays rounded in one pass (numpy's per-call cost dominates for short arrays); 2-D ones as lists of rows."""
    shaped = [np.asarray(a, dtype=np.float64) for a in arrays]
    if not shaped:
        return []
    ends = np.cumsum([a.size for a in shaped])[:-1]
    parts = np.split(rounded(np.concatenate([a.ravel() for a in shaped]), digits), ends)
    return [
        listed(p) if a.ndim < 2 else [listed(r) for r in p.reshape(a.shape)] for p, a in zip(parts, shaped, strict=True)
    ]


def number(value: float, digits: int = DIGITS) -> float | None:
    """One rounded number, None when not finite."""
    return numbers([value], digits)[0]


def figure(data: list[dict], layout: dict, height: int, digits: int = DIGITS) -> Figure:
    """A figure dict with its height; numpy arrays in the traces become lists rounded to ``digits``, in one pass."""
    found: list[tuple[dict | list, str | int, np.ndarray]] = []
    _find_arrays(data, found)
    values = numbers_many([array for _, _, array in found], digits)
    for (parent, key, _), value in zip(found, values, strict=True):
        parent[key] = value  # type: ignore[index]
    layout["height"] = height
    return {"data": data, "layout": layout}


def _find_arrays(node: object, found: list) -> None:
    """Every numpy array inside nested dicts and lists of dicts, with its parent and key."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if isinstance(value, np.ndarray):
            found.append((node, key, value))
        elif isinstance(value, dict) or (
            isinstance(value, list) and value and isinstance(value[0], dict | list | np.ndarray)
        ):
            _find_arrays(value, found)


def axis_ref(i: int) -> tuple[str, str]:
    """Trace references of subplot ``i`` (0-based): ('x', 'y'), ('x2', 'y2'), ..."""
    n = "" if i == 0 else str(i + 1)
    return f"x{n}", f"y{n}"


def grid(rows: int, cols: int, titles: Sequence[str], hspace: float = 0.08, vspace: float = 0.15) -> dict:
    """Layout of a ``rows`` x ``cols`` grid of subplots, titles as annotations (what make_subplots writes)."""
    width = (1 - hspace * (cols - 1)) / cols
    height = (1 - vspace * (rows - 1)) / rows
    layout: dict[str, Any] = {}
    annotations = []
    for i in range(rows * cols):
        r, c = divmod(i, cols)
        x, y = axis_ref(i)
        left, top = c * (width + hspace), 1 - r * (height + vspace)
        layout["xaxis" + x[1:]] = {"domain": [round(left, 4), round(left + width, 4)], "anchor": y}
        layout["yaxis" + y[1:]] = {"domain": [round(max(top - height, 0), 4), round(top, 4)], "anchor": x}
        if i < len(titles):
            annotations.append(
                {
                    "text": titles[i],
                    "x": round(left + width / 2, 4),
                    "y": round(top, 4),
                    "xref": "paper",
                    "yref": "paper",
                    "xanchor": "center",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 14},
                }
            )
    layout["annotations"] = annotations
    return layout


def hline(y: float, i: int = 0, line: Mapping | None = None) -> dict:
    """A horizontal line across subplot ``i``."""
    x, yref = axis_ref(i)
    return {
        "type": "line",
        "xref": f"{x} domain",
        "x0": 0,
        "x1": 1,
        "yref": yref,
        "y0": y,
        "y1": y,
        "line": line or CHANCE_LINE,
    }


def vline(x: float, i: int = 0, line: Mapping | None = None) -> dict:
    """A vertical line across subplot ``i``."""
    xref, y = axis_ref(i)
    return {
        "type": "line",
        "yref": f"{y} domain",
        "y0": 0,
        "y1": 1,
        "xref": xref,
        "x0": x,
        "x1": x,
        "line": line or CHANCE_LINE,
    }


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """One colour per class, stable across figures."""
    return {c: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, c in enumerate(classes)}


# ---------------------------------------------------------------- data overview


def class_balance(counts: Mapping[str, int], missing: int = 0, positive: str | None = None) -> Figure:
    """Bar chart of labelled samples per class, and a grey bar for samples left out for lack of a label."""
    classes = list(counts)
    colours = class_colours(classes)
    total = sum(int(v) for v in counts.values())
    names = [esc(f"{c} (positive)" if c == positive else c) for c in classes]
    values = [int(counts[c]) for c in classes]
    text = [f"{v} ({v / total:.0%})" if total else str(v) for v in values]
    bar_colours = [colours[c] for c in classes]
    if missing:
        names.append("no label (left out)")
        values.append(int(missing))
        text.append(str(int(missing)))
        bar_colours.append("#cccccc")
    trace = {
        "type": "bar",
        "x": names,
        "y": values,
        "text": text,
        "textposition": "outside",
        "marker": {"color": bar_colours},
        "cliponaxis": False,
        "hovertemplate": "%{x}: %{y} samples<extra></extra>",
    }
    layout = {"showlegend": False, "bargap": 0.4, "yaxis": {"title": {"text": "samples"}, "rangemode": "tozero"}}
    return figure([trace], layout, 340)


def pair_plot(values: np.ndarray, labels: Sequence[str], genes: Sequence[str], classes: Sequence[str]) -> Figure:
    """Scatter matrix (lower half) of standardised ``values`` ``[samples, genes]``, one trace per class.

    Two genes make one plain scatter plot: plotly.js cannot draw a scatter
    matrix whose only cell is its lower half.
    """
    labels = np.asarray(labels, dtype=object).astype(str)
    colours = class_colours(classes)
    present = [c for c in classes if (labels == c).any()]
    if len(genes) == 2:
        data = [
            {
                "type": "scatter",
                "mode": "markers",
                "name": esc(name),
                "x": values[labels == name, 0],
                "y": values[labels == name, 1],
                "marker": {"color": colours[name], "size": 6, "opacity": 0.75},
            }
            for name in present
        ]
        layout = {
            "xaxis": {"title": {"text": esc(genes[0])}},
            "yaxis": {"title": {"text": esc(genes[1])}},
            "legend": {"title": {"text": "class"}, "orientation": "h", "y": 1.08, "x": 0},
        }
        return figure(data, layout, 420, CURVE_DIGITS)
    data = []
    for name in present:
        rows = values[labels == name]
        data.append(
            {
                "type": "splom",
                "name": esc(name),
                "dimensions": [{"label": esc(g), "values": rows[:, j]} for j, g in enumerate(genes)],
                "marker": {"color": colours[name], "size": 5, "opacity": 0.75, "line": {"width": 0}},
                "diagonal": {"visible": False},
                "showupperhalf": False,
            }
        )
    side = 150 * max(len(genes) - 1, 1) + 120
    layout = {"dragmode": "select", "legend": {"title": {"text": "class"}, "orientation": "h", "y": 1.04, "x": 0}}
    return figure(data, layout, min(side, 900), CURVE_DIGITS)


def pair_plot_values(values: np.ndarray, targets: np.ndarray, genes: Sequence[str], target: str) -> Figure:
    """The pair plot of a regression target: one trace, each sample coloured by its target value."""
    marker = {
        "color": np.asarray(targets, dtype=np.float64),
        "colorscale": "Viridis",
        "showscale": True,
        "colorbar": {"title": {"text": esc(target)}},
        "size": 6,
        "opacity": 0.8,
    }
    if len(genes) == 2:
        data = [{"type": "scatter", "mode": "markers", "x": values[:, 0], "y": values[:, 1], "marker": marker}]
        layout = {"xaxis": {"title": {"text": esc(genes[0])}}, "yaxis": {"title": {"text": esc(genes[1])}}}
        return figure(data, layout, 420, CURVE_DIGITS)
    data = [
        {
            "type": "splom",
            "dimensions": [{"label": esc(g), "values": values[:, j]} for j, g in enumerate(genes)],
            "marker": marker | {"size": 5, "line": {"width": 0}},
            "diagonal": {"visible": False},
            "showupperhalf": False,
        }
    ]
    side = 150 * max(len(genes) - 1, 1) + 120
    return figure(data, {"dragmode": "select", "showlegend": False}, min(side, 900), CURVE_DIGITS)


def target_histogram(values: np.ndarray, target: str, missing: int = 0) -> Figure:
    """The distribution of a regression target over the samples with a value."""
    trace = {
        "type": "histogram",
        "x": np.asarray(values, dtype=np.float64),
        "marker": {"color": CV_COLOUR},
        "hovertemplate": "%{x}: %{y} samples<extra></extra>",
    }
    layout = {
        "showlegend": False,
        "xaxis": {"title": {"text": esc(target)}},
        "yaxis": {"title": {"text": "samples"}, "rangemode": "tozero"},
    }
    return figure([trace], layout, 340)


def predicted_vs_true(predictions: Rows, limit: int = MAX_POINTS * 5) -> Figure:
    """A regression target's predicted against true values on the test rows: CV splits pooled and the holdout split."""
    data = []
    rows = predictions.where(model="mlp")
    truth_all = np.asarray(rows["true_value"], dtype=np.float64)
    for kind, name, colour in (
        ("cv", "CV test predictions (pooled)", CV_COLOUR),
        ("holdout", "holdout split", HOLDOUT_COLOUR),
    ):
        part = rows.where(kind=kind)
        if not len(part):
            continue
        truth = np.asarray(part["true_value"], dtype=np.float64)
        pred = np.asarray(part["predicted_value"], dtype=np.float64)
        keep = np.unique(np.linspace(0, len(truth) - 1, min(len(truth), limit)).round().astype(int))
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": truth[keep],
                "y": pred[keep],
                "marker": {"color": colour, "size": 6, "opacity": 0.6},
            }
        )
    lo, hi = (float(np.nanmin(truth_all)), float(np.nanmax(truth_all))) if len(truth_all) else (0.0, 1.0)
    layout = {
        "xaxis": {"title": {"text": "true value"}},
        "yaxis": {"title": {"text": "predicted value"}},
        "shapes": [{"type": "line", "x0": lo, "y0": lo, "x1": hi, "y1": hi, "line": CHANCE_LINE}],
        "legend": {"orientation": "h", "y": 1.08, "x": 0},
    }
    return figure(data, layout, 440, CURVE_DIGITS)


# ---------------------------------------------------------------- training curves


def points_per_curve(n_panels: int) -> int:
    """Points per drawn curve in a report of ``n_panels``: :data:`MAX_POINTS` up to 100 panels, then fewer.

    Each panel's figures travel in the page, about 1.5 bytes a number once
    compressed; spending a fixed budget keeps a report of 200 panels under
    10 MB (plotly.js alone is 5), and a panel opened there still draws its
    curves with 100 points.
    """
    return max(MIN_POINTS, min(MAX_POINTS, POINT_BUDGET // max(n_panels, 1)))


def epoch_grid(last: int, limit: int = MAX_POINTS) -> tuple[int, int]:
    """First epoch and step of at most ``limit`` evenly spaced epochs ending at ``last`` (the one scored).

    Anchored at the end so the final epoch is always drawn and the grid stays
    even: traces then carry ``x0`` and ``dx`` instead of an epoch array.
    """
    step = max(1, math.ceil(last / limit))
    return last - step * ((last - 1) // step), step


@dataclass
class Curves:
    """One panel's per-epoch curves on an even epoch grid: CV mean and sd, and the holdout split, per column."""

    first: int
    step: int
    n_cv: int
    mean: dict[str, np.ndarray]
    sd: dict[str, np.ndarray]
    holdout: dict[str, np.ndarray]


def _grouped_mean_sd(index: np.ndarray, values: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sd (ddof 1; 0 for a single value) of ``values`` per group ``index`` in ``0..n-1``, NaN values left out."""
    ok = np.isfinite(values)
    count = np.bincount(index[ok], minlength=n).astype(np.float64)
    total = np.bincount(index[ok], weights=values[ok], minlength=n)
    squares = np.bincount(index[ok], weights=values[ok] ** 2, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / count
        var = np.clip(squares - count * mean**2, 0, None) / (count - 1)
    return mean, np.where(count > 1, np.sqrt(var), 0.0)


def curves_of(history: Rows, limit: int = MAX_POINTS) -> Curves:
    """Thin one panel's history (split_id, kind, epoch and per-epoch columns) to an epoch grid and average the CV splits."""
    epoch = history["epoch"].astype(np.int64)
    last = int(epoch.max())
    first, step = epoch_grid(last, limit)
    n = (last - first) // step + 1
    keep = (last - epoch) % step == 0
    index = (epoch[keep] - first) // step
    kind = history["kind"][keep]
    cv, hold = kind == "cv", kind == "holdout"
    n_cv = len(first_rows(history["split_id"][history["kind"] == "cv"]))
    columns = [c for _, cols in CURVE_CELLS for c in cols if c in history]
    out = Curves(first, step, n_cv, {}, {}, {})
    for column in columns:
        values = history[column][keep].astype(np.float64)
        out.mean[column], out.sd[column] = _grouped_mean_sd(index[cv], values[cv], n)
        out.holdout[column] = _grouped_mean_sd(index[hold], values[hold], n)[0]
    return out


class _Lines:
    """The per-epoch figure's traces on one even epoch grid, one legend entry per name across subplots."""

    def __init__(self, first: int, step: int) -> None:
        self.grid = {"x0": first, "dx": step}
        self.data: list[dict] = []
        self.named: set[str] = set()

    def add(self, i: int, y: object, name: str, line: dict, **extra: object) -> dict:
        """A line in subplot ``i`` (0-based); a name seen before gets no second legend entry."""
        trace = {"mode": "lines", **self.grid, "y": np.asarray(y, dtype=np.float64), "name": name, "legendgroup": name}
        trace["line"] = line
        if i:
            trace["xaxis"], trace["yaxis"] = axis_ref(i)
        if name in self.named:
            trace["showlegend"] = False
        self.named.add(name)
        trace.update(extra)
        self.data.append(trace)
        return trace

    def band(self, i: int, mean: np.ndarray, sd: np.ndarray, n_cv: int) -> None:
        """The CV mean ± 1 sd band: an invisible upper line, and the lower line filled up to it."""
        name = f"CV mean ± 1 sd ({n_cv} splits)"
        seen = name in self.named
        self.add(i, mean + sd, name, {"width": 0}, hoverinfo="skip", showlegend=False)
        lower = self.add(i, mean - sd, name, {"width": 0}, hoverinfo="skip", fill="tonexty", fillcolor=BAND_COLOUR)
        if not seen:
            lower.pop("showlegend", None)


def epoch_curves(history: Rows, limit: int = MAX_POINTS, loss_name: str | None = None) -> Figure:
    """Per-epoch loss and test metrics: CV mean with a mean ± 1 sd band, and the holdout split as its own line.

    ``history`` is one panel's rows of history.parquet (split_id, kind, epoch and
    the per-epoch quantities); ``loss_name`` titles the loss subplot (default
    :data:`METRIC_NAMES`' ``loss``). The subplots fill rows of three.
    """
    curves = curves_of(history, limit)
    cells = [(name, cols) for name, cols in CURVE_CELLS if all(c in curves.mean for c in cols)]
    n_cols = min(3, max(len(cells), 1))
    n_rows = max(1, math.ceil(len(cells) / n_cols))
    titles = [loss_name if name == "loss" and loss_name else metric_name(name) for name, _ in cells]
    layout = grid(n_rows, n_cols, titles, hspace=0.07, vspace=0.14)
    lines = _Lines(curves.first, curves.step)
    for i, (name, cols) in enumerate(cells):
        for column in cols:
            dash = "dot" if column == "train_loss" else "solid"
            which = "training loss (dotted)" if column == "train_loss" else "test"
            if curves.n_cv:
                mean = curves.mean[column]
                lines.band(i, mean, curves.sd[column], curves.n_cv)
                lines.add(i, mean, f"CV mean, {which}", {"color": CV_COLOUR, "width": 2, "dash": dash})
            if np.isfinite(curves.holdout[column]).any():
                style = {"color": HOLDOUT_COLOUR, "width": 1.5, "dash": dash}
                lines.add(i, curves.holdout[column], f"Holdout split, {which}", style)
        if name in CHANCE_LEVEL and name != "balanced_accuracy":
            layout.setdefault("shapes", []).append(hline(CHANCE_LEVEL[name], i))
    for i in range((n_rows - 1) * n_cols, n_rows * n_cols):
        layout["xaxis" + axis_ref(i)[0][1:]]["title"] = {"text": "epoch"}
    layout["legend"] = {"orientation": "h", "y": -0.14 if n_rows > 1 else -0.3, "x": 0}
    return figure(lines.data, layout, 620 if n_rows > 1 else 380, CURVE_DIGITS)


def tuning_choices(tuning: Rows) -> Figure:
    """How often each grid point was chosen over the splits, with its mean inner-fold validation ROC-AUC.

    ``tuning`` is one panel's rows of tuning.tsv (split_id, point, grid_point,
    score, inner_score, chosen).
    """
    points = np.asarray(tuning["point"]).astype(np.int64)
    order = np.unique(points)
    labels = [str(tuning["grid_point"][np.flatnonzero(points == q)[0]]) for q in order]
    chosen = np.asarray(tuning["chosen"], dtype=bool)
    wins = [int(((points == q) & chosen).sum()) for q in order]
    inner = np.asarray(tuning["inner_score"]).astype(np.float64)
    score = str(tuning["score"][0]) if "score" in tuning and len(tuning) else "roc_auc"
    score_name = {"roc_auc": "inner ROC-AUC", "c_index": "inner C-index"}.get(score, f"inner validation {score}")
    means = [
        float(np.nanmean(inner[points == q])) if np.isfinite(inner[points == q]).any() else math.nan for q in order
    ]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": labels,
            "x": wins,
            "name": "times chosen",
            "marker": {"color": CV_COLOUR},
            "text": [f"{score_name} {m:.3f}" if np.isfinite(m) else "" for m in means],
            "textposition": "outside",
            "cliponaxis": False,
        }
    ]
    layout = {
        "xaxis": {"title": {"text": f"splits where the point was chosen (of {len(np.unique(tuning['split_id']))})"}},
        "yaxis": {"automargin": True, "autorange": "reversed"},
        "margin": {"l": 60, "r": 120, "t": 30, "b": 50},
        "showlegend": False,
    }
    return figure(data, layout, max(260, 26 * len(labels) + 90))


# ---------------------------------------------------------------- ROC, PR and confusion


def corners(x: np.ndarray, y: np.ndarray) -> list[np.ndarray]:
    """The points of a staircase where it turns: dropping the others changes nothing drawn."""
    if len(x) < 3:
        return [x, y]
    inner_x = (x[1:-1] == x[:-2]) & (x[1:-1] == x[2:])
    inner_y = (y[1:-1] == y[:-2]) & (y[1:-1] == y[2:])
    keep = np.r_[True, ~(inner_x | inner_y), True]
    return [x[keep], y[keep]]


def thin(points: Sequence[np.ndarray], limit: int = MAX_POINTS) -> list[np.ndarray]:
    """At most ``limit`` evenly chosen points of parallel arrays, the first and last always kept."""
    n = len(points[0])
    if n <= limit:
        return list(points)
    keep = np.unique(np.linspace(0, n - 1, limit).round().astype(int))
    return [p[keep] for p in points]


def binary_curves(predictions: Rows, positive: str, kind: str, limit: int = MAX_POINTS) -> list[dict]:
    """ROC and PR points of each model but the majority baseline on the rows of ``kind`` (``holdout`` or ``cv`` pooled).

    The majority baseline gives every test sample of a split the same score, so
    its curves are the chance lines; pooled over folds its slightly different
    per-fold scores would draw a meaningless staircase instead.
    """
    out = []
    part = predictions.where(kind=kind)
    present = set(part["model"].tolist()) - {"majority"}
    for model in [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER)):
        rows = part.where(model=model)
        y = (rows["true_label"] == positive).astype(int)
        score = rows["probability"].astype(np.float64)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr = roc_points(y, score)
        precision, recall = pr_points(y, score)
        # drop the conventional (recall 0, precision 1) end point
        out.append(
            {
                "model": model,
                "roc": thin(corners(fpr, tpr), limit),
                "pr": thin([recall[:-1], precision[:-1]], limit),
                "auc": roc_auc(y, score),
                "ap": average_precision(y, score),
            }
        )
    return out


def _xy_trace(points: Sequence[np.ndarray], name: str, line: dict, group: str) -> dict:
    """A line through ``points`` (x and y arrays)."""
    x, y = np.asarray(points[0], dtype=np.float64), np.asarray(points[1], dtype=np.float64)
    return {"mode": "lines", "x": x, "y": y, "name": name, "legendgroup": group, "line": line}


def roc_pr_curves(predictions: Rows, positive: str, limit: int = MAX_POINTS) -> Figure:
    """ROC (left) and precision-recall (right) curves of the MLP and logistic regression, two classes only.

    Solid lines pool the test predictions of all CV folds (each sample appears
    once per CV repeat); dotted lines are the holdout split's test samples.
    """
    layout = grid(1, 2, ["ROC curve", "Precision-recall curve"], hspace=0.1)
    data = []
    for kind, dash, label in (("cv", "solid", "CV folds pooled"), ("holdout", "dot", "holdout")):
        for c in binary_curves(predictions, positive, kind, limit):
            name = f"{model_name(c['model'])}, {label}"
            line = {
                "color": MODEL_COLOURS.get(c["model"], "#333333"),
                "dash": dash,
                "width": 2 if kind == "cv" else 1.5,
            }
            group = f"{c['model']}-{kind}"
            roc = _xy_trace(c["roc"], f"{name} (AUC {c['auc']:.2f})", line, group)
            roc["hovertemplate"] = (
                f"false positive rate %{{x:.2f}}<br>true positive rate %{{y:.2f}}<extra>{name}</extra>"
            )
            pr = _xy_trace(c["pr"], f"{name} (AP {c['ap']:.2f})", line | {"shape": "hv"}, group)
            pr |= {"xaxis": "x2", "yaxis": "y2", "showlegend": False}
            pr["hovertemplate"] = f"recall %{{x:.2f}}<br>precision %{{y:.2f}}<extra>{name}, AP {c['ap']:.2f}</extra>"
            data += [roc, pr]
    shapes = [{"type": "line", "xref": "x", "yref": "y", "x0": 0, "y0": 0, "x1": 1, "y1": 1, "line": CHANCE_LINE}]
    first = predictions.where(kind="cv", model="mlp")
    if len(first):
        shapes.append(hline(number(float(np.mean(first["true_label"] == positive))), 1))
    layout["shapes"] = shapes
    layout["xaxis"] |= {"title": {"text": "false positive rate"}, "range": [-0.01, 1.01]}
    layout["yaxis"] |= {"title": {"text": "true positive rate (recall)"}, "range": [-0.01, 1.01]}
    layout["xaxis2"] |= {"title": {"text": f"recall (share of '{esc(positive)}' found)"}, "range": [-0.01, 1.01]}
    layout["yaxis2"] |= {"title": {"text": "precision"}, "range": [-0.01, 1.05]}
    layout["legend"] = {"orientation": "h", "y": -0.22, "x": 0}
    return figure(data, layout, 500, CURVE_DIGITS)


def confusion_table(predictions: Rows, classes: Sequence[str]) -> np.ndarray:
    """Counts of true (rows) by predicted (columns) class, every class present, in ``classes`` order."""
    true, pred = predictions["true_label"], predictions["predicted_label"]
    return np.array([[int(np.sum((true == a) & (pred == b))) for b in classes] for a in classes], dtype=np.int64)


def confusion_matrices(predictions: Rows, classes: Sequence[str], model: str = "mlp") -> Figure:
    """Confusion matrices of ``model``: the holdout split (left) and summed over all CV folds (right)."""
    part = predictions.where(model=model)
    blocks = [("holdout", "Holdout split"), ("cv", "CV folds, summed")]
    titles = [f"{title} (n = {int((part['kind'] == kind).sum())})" for kind, title in blocks]
    layout = grid(1, 2, titles, hspace=0.2)
    data = []
    for i, (kind, _) in enumerate(blocks):
        z = confusion_table(part.where(kind=kind), classes)
        totals = z.sum(axis=1, keepdims=True)
        share = np.divide(z, totals, out=np.zeros_like(z, dtype=float), where=totals > 0)
        text = [[f"{z[r, c]}<br>({share[r, c]:.0%} of row)" for c in range(z.shape[1])] for r in range(z.shape[0])]
        x, y = axis_ref(i)
        data.append(
            {
                "type": "heatmap",
                "z": share,
                "x": [esc(f"predicted {c}") for c in classes],
                "y": [esc(f"true {c}") for c in classes],
                "text": text,
                "texttemplate": "%{text}",
                "xaxis": x,
                "yaxis": y,
                "colorscale": [[0, "#f7fbff"], [1, "#2171b5"]],
                "zmin": 0,
                "zmax": 1,
                "showscale": False,
                "hovertemplate": "%{y}, %{x}: %{text}<extra></extra>",
            }
        )
        layout["yaxis" + y[1:]] |= {"autorange": "reversed", "showgrid": False}
        layout["xaxis" + x[1:]] |= {"showgrid": False}
    return figure(data, layout, 130 + 70 * max(len(classes), 2))


def reliability_diagram(
    predictions: Rows, classes: Sequence[str], positive: str, bins: int = RELIABILITY_BINS
) -> Figure | None:
    """Reliability diagram of the CV splits' test predictions pooled: observed share against mean predicted probability.

    Two classes: one line per model (the majority baseline left out: it gives
    every sample of a split one probability), of the positive class. More
    classes: one line per class, the MLP's one-vs-rest probabilities. Bins of
    fixed width (tenths); below, the samples in each bin. None without CV
    predictions.
    """
    cv = predictions.where(kind="cv")
    if not len(cv):
        return None
    curves: list[tuple[str, str, np.ndarray, np.ndarray, str]] = []  # name, group, y, p, colour
    if len(classes) == 2:
        present = set(cv["model"].tolist()) - {"majority"}
        for model in [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER)):
            rows = cv.where(model=model)
            y = (rows["true_label"] == positive).astype(np.float64)
            curves.append((model_name(model), model, y, rows["probability"], MODEL_COLOURS.get(model, "#333333")))
    else:
        rows = cv.where(model="mlp")
        colours = class_colours(classes)
        for c in classes:
            if f"prob_{c}" in rows:
                y = (rows["true_label"] == c).astype(np.float64)
                curves.append((f"MLP, class {c}", f"class-{c}", y, rows[f"prob_{c}"], colours[c]))
    if not curves:
        return None
    data = []
    for name, group, y, p, colour in curves:
        b = reliability_bins(y, np.asarray(p, dtype=np.float64), bins)
        ranges = np.column_stack([b["low"], b["high"], b["count"]])
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": b["predicted"],
                "y": b["observed"],
                "name": esc(name),
                "legendgroup": group,
                "line": {"color": colour, "width": 2},
                "marker": {"color": colour, "size": 7},
                "customdata": ranges,
                "hovertemplate": "predicted %{customdata[0]:.1f} to %{customdata[1]:.1f}: mean %{x:.2f}, "
                f"observed %{{y:.2f}} (%{{customdata[2]}} samples)<extra>{esc(name)}</extra>",
            }
        )
        data.append(
            {
                "type": "bar",
                "x": (b["low"] + b["high"]) / 2,
                "y": b["count"].astype(np.float64),
                "name": esc(name),
                "legendgroup": group,
                "showlegend": False,
                "marker": {"color": colour},
                "xaxis": "x2",
                "yaxis": "y2",
                "hovertemplate": f"predicted %{{x:.2f}} ± {0.5 / bins:.2f}: %{{y}} samples<extra>{esc(name)}</extra>",
            }
        )
    what = f"'{esc(positive)}'" if len(classes) == 2 else "each class"
    layout = {
        "xaxis": {"domain": [0, 1], "anchor": "y", "range": [-0.02, 1.02], "matches": "x2", "showticklabels": False},
        "yaxis": {"domain": [0.34, 1], "anchor": "x", "range": [-0.02, 1.02], "title": {"text": "observed share"}},
        "xaxis2": {
            "domain": [0, 1],
            "anchor": "y2",
            "range": [-0.02, 1.02],
            "title": {"text": f"predicted probability of {what}"},
        },
        "yaxis2": {"domain": [0, 0.24], "anchor": "x2", "title": {"text": "samples"}, "rangemode": "tozero"},
        "barmode": "group",
        "bargap": 0.15,
        "shapes": [{"type": "line", "xref": "x", "yref": "y", "x0": 0, "y0": 0, "x1": 1, "y1": 1, "line": CHANCE_LINE}],
        "legend": {"orientation": "h", "y": 1.08, "x": 0},
    }
    return figure(data, layout, 520, CURVE_DIGITS)


# ---------------------------------------------------------------- survival

RISK_GROUP_COLOURS = {"high": "#d62728", "low": "#1f5fa8"}
"""Colour of each predicted risk group in the Kaplan-Meier figure."""

AT_RISK_TICKS = 6
"""About this many times in the number-at-risk table under the Kaplan-Meier curves."""


def first_repeat(rows: Rows) -> tuple[Rows, int, int]:
    """The CV rows of the first CV repeat (split ids ``cv_r1_f<k>``), the folds in it and the repeats in all.

    Split ids of another form count as one repeat holding every CV split.
    """
    cv = rows.where(kind="cv")
    ids = np.asarray(cv["split_id"], dtype=object).astype(str)
    repeat = np.array([s.split("_f")[0] if s.startswith("cv_r") and "_f" in s else "" for s in ids], dtype=object)
    names = sorted(set(repeat.tolist()), key=lambda r: (len(r), r))
    if not names or names == [""]:
        return cv, len(set(ids.tolist())), 1
    first = cv.take(repeat == names[0])
    return first, len(set(first["split_id"].tolist())), len(names)


@dataclass
class RiskGroups:
    """Kaplan-Meier curves of the predicted risk groups and their log-rank test, from one CV repeat's predictions."""

    groups: dict[str, dict[str, np.ndarray]]
    """Per group (``high``, ``low``): ``time`` and ``event`` of its test predictions, ``km_time`` and ``km_survival``."""
    chi2: float
    p: float
    folds: int
    repeats: int


def risk_groups(predictions: Rows, model: str = "mlp") -> RiskGroups | None:
    """The first CV repeat's test predictions of ``model`` split by ``risk_group``, each group's Kaplan-Meier curve
    and the log-rank test of high against low; None without CV predictions of that model.

    Each test split's groups were cut at its own model's training median risk
    (the fit step's ``risk_group``), so no test row chose a threshold. One
    repeat holds each patient once: pooling all repeats would count each
    patient once per repeat and make the log-rank p optimistic.
    """
    from ..survival import kaplan_meier, logrank  # the report needs them for survival targets only

    rows, folds, repeats = first_repeat(predictions.where(model=model))
    if not len(rows):
        return None
    time = np.asarray(rows["time"], dtype=np.float64)
    event = np.asarray(rows["event"], dtype=np.int64)
    group = np.asarray(rows["risk_group"], dtype=object).astype(str)
    groups = {}
    for name in ("high", "low"):
        mine = group == name
        if mine.any():
            km_time, km_survival = kaplan_meier(time[mine], event[mine])
            groups[name] = {
                "time": time[mine],
                "event": event[mine],
                "km_time": np.asarray(km_time, dtype=np.float64),
                "km_survival": np.asarray(km_survival, dtype=np.float64),
            }
    chi2, p = math.nan, math.nan
    if len(groups) == 2 and event.any():
        chi2, p = (float(v) for v in logrank(time, event, (group == "high").astype(np.int64)))
    return RiskGroups(groups, chi2, p, folds, repeats)


def nice_ticks(last: float, n: int = AT_RISK_TICKS) -> np.ndarray:
    """About ``n`` round times from 0 to ``last`` (steps of 1, 2 or 5 times a power of ten)."""
    if not math.isfinite(last) or last <= 0:
        return np.array([0.0])
    power = 10.0 ** math.floor(math.log10(last / max(n - 1, 1)))
    step = min((m * power for m in (1, 2, 5, 10)), key=lambda s: (abs(math.floor(last / s) + 1 - n), s))
    return np.arange(0.0, last + step * 1e-9, step)


def at_risk(time: np.ndarray, ticks: np.ndarray) -> np.ndarray:
    """Samples still followed (time at least ``t``) at each tick ``t``."""
    ordered = np.sort(np.asarray(time, dtype=np.float64))
    return len(ordered) - np.searchsorted(ordered, ticks, side="left")


def _step(km_time: np.ndarray, km_survival: np.ndarray, last: float) -> tuple[np.ndarray, np.ndarray]:
    """A Kaplan-Meier curve as drawn: from (0, 1) through each step, held to the group's last follow-up."""
    x = np.r_[0.0, km_time, last] if last > (km_time[-1] if len(km_time) else 0.0) else np.r_[0.0, km_time]
    y = np.r_[1.0, km_survival, km_survival[-1] if len(km_survival) else 1.0][: len(x)]
    return x, y


def km_figure(groups: RiskGroups, event_name: str = "event") -> Figure:
    """Kaplan-Meier curves of the high and low predicted risk groups, with the number at risk below them.

    Censored samples are marked with ticks on their group's curve.
    """
    last = max((float(g["time"].max()) for g in groups.groups.values()), default=0.0)
    ticks = nice_ticks(last)
    data: list[dict] = []
    table_y = {"high": 1, "low": 0}
    for name, g in groups.groups.items():
        colour = RISK_GROUP_COLOURS[name]
        label = f"{name} risk (n = {len(g['time'])}, {int(g['event'].sum())} {esc(event_name)})"
        x, y = _step(g["km_time"], g["km_survival"], float(g["time"].max()))
        data.append(
            {
                "mode": "lines",
                "x": x,
                "y": y,
                "name": label,
                "legendgroup": name,
                "line": {"color": colour, "width": 2, "shape": "hv"},
                "hovertemplate": f"day %{{x:.0f}}: survival %{{y:.2f}}<extra>{name} risk</extra>",
            }
        )
        censored = g["time"][g["event"] == 0]
        if len(censored):
            at = np.searchsorted(g["km_time"], censored, side="right") - 1
            level = np.where(at >= 0, g["km_survival"][np.clip(at, 0, None)], 1.0) if len(g["km_time"]) else 1.0
            data.append(
                {
                    "mode": "markers",
                    "x": censored,
                    "y": np.broadcast_to(level, censored.shape).astype(np.float64),
                    "name": f"{name} risk, censored",
                    "legendgroup": name,
                    "showlegend": False,
                    "marker": {"symbol": "line-ns-open", "size": 7, "color": colour},
                    "hovertemplate": f"censored at day %{{x:.0f}}<extra>{name} risk</extra>",
                }
            )
        data.append(
            {
                "mode": "text",
                "x": ticks,
                "y": [table_y[name]] * len(ticks),
                "text": [str(int(v)) for v in at_risk(g["time"], ticks)],
                "textfont": {"color": colour},
                "xaxis": "x2",
                "yaxis": "y2",
                "showlegend": False,
                "legendgroup": name,
                "hoverinfo": "skip",
            }
        )
    p_text = "" if math.isnan(groups.p) else f"log-rank p = {groups.p:.2g}"
    span = [-0.02 * max(last, 1.0), last * 1.02 if last > 0 else 1.0]
    layout = {
        "xaxis": {"domain": [0, 1], "anchor": "y", "range": span, "matches": "x2", "showticklabels": False},
        "yaxis": {"domain": [0.3, 1], "anchor": "x", "range": [-0.02, 1.05], "title": {"text": "share without event"}},
        "xaxis2": {
            "domain": [0, 1],
            "anchor": "y2",
            "range": span,
            "tickvals": numbers(ticks),
            "title": {"text": "days"},
        },
        "yaxis2": {
            "domain": [0, 0.16],
            "anchor": "x2",
            "range": [-0.6, 1.6],
            "tickvals": [0, 1],
            "ticktext": ["low", "high"],
            "showgrid": False,
            "zeroline": False,
            "title": {"text": "at risk"},
        },
        "annotations": [
            {
                "text": p_text,
                "x": 1,
                "y": 1,
                "xref": "paper",
                "yref": "paper",
                "xanchor": "right",
                "yanchor": "top",
                "showarrow": False,
            }
        ],
        "legend": {"orientation": "h", "y": 1.1, "x": 0},
    }
    return figure(data, layout, 500, CURVE_DIGITS)


def centred_risks(rows: Rows) -> np.ndarray:
    """Each row's risk minus the median risk of its split's test rows.

    A Cox model's risk is defined up to an added constant, which differs
    between the splits' models; centring each split puts them on one axis
    (a display choice only: nothing is fitted or chosen from it).
    """
    risk = np.asarray(rows["risk"], dtype=np.float64)
    splits = np.asarray(rows["split_id"], dtype=object).astype(str)
    out = np.empty_like(risk)
    for split in np.unique(splits):
        mine = splits == split
        out[mine] = risk[mine] - np.nanmedian(risk[mine])
    return out


def risk_histogram(predictions: Rows, event_name: str = "event", censored_name: str = "censored") -> Figure | None:
    """Histograms of the MLP's CV test risks (each split centred at its median) of samples with the event and censored ones.

    All CV splits pooled (each sample once per CV repeat); None without CV predictions of the MLP.
    """
    rows = predictions.where(model="mlp", kind="cv")
    if not len(rows):
        return None
    risk = centred_risks(rows)
    event = np.asarray(rows["event"], dtype=np.int64) == 1
    finite = risk[np.isfinite(risk)]
    low, high = (float(finite.min()), float(finite.max())) if len(finite) else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, 31)
    centres, width = (edges[:-1] + edges[1:]) / 2, float(edges[1] - edges[0])
    data = []
    for mine, name, colour in (
        (event, f"{esc(event_name)} (event)", RISK_GROUP_COLOURS["high"]),
        (~event, f"{esc(censored_name)} (censored)", RISK_GROUP_COLOURS["low"]),
    ):
        counts, _ = np.histogram(risk[mine & np.isfinite(risk)], bins=edges)
        data.append(
            {
                "type": "bar",
                "x": centres,
                "y": counts.astype(np.float64),
                "width": number(width),
                "name": f"{name}: {int(mine.sum())}",
                "marker": {"color": colour},
                "opacity": 0.6,
                "hovertemplate": f"risk %{{x:.2f}}: %{{y}} predictions<extra>{name}</extra>",
            }
        )
    layout = {
        "barmode": "overlay",
        "bargap": 0,
        "xaxis": {"title": {"text": "predicted risk, centred per split (higher: earlier event expected)"}},
        "yaxis": {"title": {"text": "test predictions"}, "rangemode": "tozero"},
        "shapes": [vline(0.0)],
        "legend": {"orientation": "h", "y": 1.1, "x": 0},
    }
    return figure(data, layout, 360, CURVE_DIGITS)
