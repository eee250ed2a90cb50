"""Plotly figures of the HTML report, each built from pandas frames of the workflow's outputs.

Every function returns a :class:`plotly.graph_objects.Figure` and reads nothing
from disk. Only the data stack and plotly are imported (never torch), so the
report runs in its small environment.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .metrics import average_precision, pr_points, roc_auc, roc_points

MODEL_ORDER = ("mlp", "logreg", "majority")
"""Models of metrics.tsv, in the order the report shows them."""

MODEL_NAMES = {"mlp": "MLP", "logreg": "Logistic regression", "majority": "Majority class"}
MODEL_COLOURS = {"mlp": "#1f5fa8", "logreg": "#e08214", "majority": "#8c8c8c"}
CLASS_COLOURS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02", "#a6761d", "#666666")
CV_COLOUR = "#1f5fa8"
HOLDOUT_COLOUR = "#d62728"

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
}

CHANCE_LEVEL = {"roc_auc": 0.5, "balanced_accuracy": 0.5, "mcc": 0.0}
"""Value of a classifier that guesses, for the metrics where it does not depend on the data."""

MAX_CURVE_POINTS = 500
"""At most this many epochs are drawn per training curve (every k-th epoch, the last always)."""


def model_name(model: str) -> str:
    """Display name of a model code of metrics.tsv."""
    return MODEL_NAMES.get(model, model)


def metric_name(metric: str) -> str:
    """Display name of a metric column."""
    return METRIC_NAMES.get(metric, metric)


@functools.cache
def template() -> go.layout.Template:
    """A small, quiet layout template (plotly's default one adds kilobytes to every figure); built once."""
    axis = {
        "showgrid": True,
        "gridcolor": "#e6e6e6",
        "zeroline": False,
        "linecolor": "#999999",
        "showline": True,
        "ticks": "outside",
        "automargin": True,
    }
    return go.layout.Template(
        layout={
            "font": {"family": "Helvetica, Arial, sans-serif", "size": 12, "color": "#222222"},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "colorway": list(CLASS_COLOURS),
            "xaxis": axis,
            "yaxis": axis,
            "hovermode": "closest",
            "margin": {"l": 60, "r": 20, "t": 50, "b": 50},
            "legend": {"bgcolor": "rgba(255,255,255,0.8)"},
        }
    )


def _finish(fig: go.Figure, height: int, title: str | None = None) -> go.Figure:
    """Apply the report's template, height and title."""
    fig.update_layout(template=template(), height=height, title={"text": title} if title else None)
    return fig


def class_colours(classes: Sequence[str]) -> dict[str, str]:
    """One colour per class, stable across figures."""
    return {c: CLASS_COLOURS[i % len(CLASS_COLOURS)] for i, c in enumerate(classes)}


def class_balance(counts: Mapping[str, int], missing: int = 0, positive: str | None = None) -> go.Figure:
    """Bar chart of labelled samples per class, and a grey bar for samples left out for lack of a label."""
    classes = list(counts)
    colours = class_colours(classes)
    total = sum(int(v) for v in counts.values())
    names = [f"{c} (positive)" if c == positive else c for c in classes]
    values = [int(counts[c]) for c in classes]
    text = [f"{v} ({v / total:.0%})" if total else str(v) for v in values]
    bar_colours = [colours[c] for c in classes]
    if missing:
        names.append("no label (left out)")
        values.append(int(missing))
        text.append(str(int(missing)))
        bar_colours.append("#cccccc")
    fig = go.Figure(
        go.Bar(
            x=names,
            y=values,
            text=text,
            textposition="outside",
            marker_color=bar_colours,
            cliponaxis=False,
            hovertemplate="%{x}: %{y} samples<extra></extra>",
        )
    )
    fig.update_yaxes(title_text="samples", rangemode="tozero")
    fig.update_layout(showlegend=False, bargap=0.4)
    return _finish(fig, 340)


def pair_plot(table: pd.DataFrame, genes: Sequence[str], classes: Sequence[str]) -> go.Figure:
    """Scatter matrix of ``genes`` coloured by class (``table`` has a ``label`` column and one per gene)."""
    genes = list(genes)
    frame = table[["label", *genes]].copy()
    frame["label"] = frame["label"].astype(str)
    order = [c for c in classes if c in set(frame["label"])]
    fig = px.scatter_matrix(
        frame,
        dimensions=genes,
        color="label",
        category_orders={"label": order},
        color_discrete_map=class_colours(classes),
        labels={"label": "class"},
    )
    fig.update_traces(
        diagonal_visible=False, showupperhalf=False, marker={"size": 5, "opacity": 0.75, "line": {"width": 0}}
    )
    side = 150 * max(len(genes) - 1, 1) + 120
    fig.update_layout(legend={"title": {"text": "class"}, "orientation": "h", "y": 1.04, "x": 0})
    fig = _finish(fig, min(side, 900))
    fig.update_layout(width=None, dragmode="select")
    return fig


def _stride(n: int, limit: int = MAX_CURVE_POINTS) -> int:
    """Step between drawn epochs so that at most ``limit`` points are drawn."""
    return max(1, math.ceil(n / limit))


def curve_stride(history: pd.DataFrame) -> int:
    """Every how many epochs the training curves are drawn."""
    return _stride(int(history["epoch"].nunique()) if len(history) else 0)


def _thin(frame: pd.DataFrame, step: int) -> pd.DataFrame:
    """Every ``step``-th row of an epoch-indexed frame, the last row always kept."""
    if step <= 1 or len(frame) == 0:
        return frame
    keep = np.zeros(len(frame), dtype=bool)
    keep[::step] = True
    keep[-1] = True
    return frame[keep]


def _add_line(
    fig: go.Figure,
    curve: tuple[np.ndarray, np.ndarray],
    style: tuple[str, float, str],
    name: str,
    hover: str,
    shown: set[str],
    cell: tuple[int, int],
) -> None:
    """One per-epoch line in subplot ``cell`` (0-based row, column); one legend entry per name."""
    colour, width, dash = style
    fig.add_trace(
        go.Scatter(
            x=curve[0],
            y=curve[1],
            mode="lines",
            line={"color": colour, "width": width, "dash": dash},
            name=name,
            legendgroup=name,
            showlegend=name not in shown,
            hovertemplate=f"epoch %{{x}}<br>{hover}: %{{y:.3f}}<extra></extra>",
        ),
        row=cell[0] + 1,
        col=cell[1] + 1,
    )
    shown.add(name)


def epoch_curves(history: pd.DataFrame) -> go.Figure:
    """Per-epoch loss and test metrics: CV mean with a mean ± 1 sd band, and the holdout split as its own line.

    ``history`` has columns split_id, kind, epoch and the per-epoch quantities
    (train_loss, test_loss, accuracy, precision, recall, f1, roc_auc).
    """
    panels = [("loss", ("test_loss", "train_loss"))] + [
        (m, (m,)) for m in ("accuracy", "precision", "recall", "f1", "roc_auc")
    ]
    panels = [(name, cols) for name, cols in panels if all(c in history.columns for c in cols)]
    fig = make_subplots(
        rows=2,
        cols=3,
        subplot_titles=[metric_name(p[0]) for p in panels],
        horizontal_spacing=0.07,
        vertical_spacing=0.14,
    )
    cv = history[history["kind"] == "cv"]
    holdout = history[history["kind"] == "holdout"]
    n_cv = int(cv["split_id"].nunique())
    step = curve_stride(history)
    shown: set[str] = set()
    for i, (name, cols) in enumerate(panels):
        row, col = divmod(i, 3)
        for column in cols:
            dash = "dot" if column == "train_loss" else "solid"
            which = "training loss (dotted)" if column == "train_loss" else "test"
            if n_cv:
                stats = _thin(cv.groupby("epoch")[column].agg(["mean", "std"]).reset_index(), step)
                upper = (stats["mean"] + stats["std"].fillna(0)).to_numpy(np.float32)
                lower = (stats["mean"] - stats["std"].fillna(0)).to_numpy(np.float32)
                x = stats["epoch"].to_numpy()
                band_key = "band"
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=upper,
                        mode="lines",
                        line={"width": 0},
                        hoverinfo="skip",
                        showlegend=False,
                        legendgroup=band_key,
                    ),
                    row=row + 1,
                    col=col + 1,
                )
                fig.add_trace(
                    go.Scatter(
                        x=x,
                        y=lower,
                        mode="lines",
                        line={"width": 0},
                        fill="tonexty",
                        fillcolor="rgba(31,95,168,0.18)",
                        hoverinfo="skip",
                        name=f"CV mean ± 1 sd ({n_cv} splits)",
                        legendgroup=band_key,
                        showlegend=band_key not in shown,
                    ),
                    row=row + 1,
                    col=col + 1,
                )
                shown.add(band_key)
                curve = (x, stats["mean"].to_numpy(np.float32))
                _add_line(
                    fig,
                    curve,
                    (CV_COLOUR, 2, dash),
                    f"CV mean, {which}",
                    f"CV mean {metric_name(column)}",
                    shown,
                    (row, col),
                )
            if len(holdout):
                line = _thin(holdout.sort_values("epoch"), step)
                curve = (line["epoch"].to_numpy(), line[column].to_numpy(np.float32))
                style = (HOLDOUT_COLOUR, 1.5, dash)
                _add_line(
                    fig, curve, style, f"Holdout split, {which}", f"holdout {metric_name(column)}", shown, (row, col)
                )
        if name == "roc_auc":
            fig.add_hline(y=0.5, line={"color": "#555555", "dash": "dash", "width": 1}, row=row + 1, col=col + 1)
    fig.update_xaxes(title_text="epoch", row=2)
    fig.update_layout(legend={"orientation": "h", "y": -0.14, "x": 0})
    return _finish(fig, 620)


def _binary_curves(
    predictions: pd.DataFrame, positive: str, kind: str
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, int]]:
    """ROC and PR points of each model but the majority baseline on the rows of ``kind`` (``holdout`` or ``cv`` pooled).

    The majority baseline gives every test sample of a split the same score, so
    its curves are the chance lines; pooled over folds its slightly different
    per-fold scores would draw a meaningless staircase instead.
    """
    out = []
    part = predictions[predictions["kind"] == kind]
    present = set(part["model"]) - {"majority"}
    for model in [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER)):
        rows = part[part["model"] == model]
        y = (rows["true_label"].astype(str) == positive).to_numpy().astype(int)
        score = rows["probability"].to_numpy(np.float64)
        if len(np.unique(y)) < 2:
            continue
        fpr, tpr = roc_points(y, score)
        precision, recall = pr_points(y, score)
        # drop scikit-learn's conventional (recall 0, precision 1) end point
        precision, recall = precision[:-1], recall[:-1]
        auc = roc_auc(y, score)
        ap = average_precision(y, score)
        out.append((model, fpr, tpr, recall, precision, auc, ap, len(rows)))
    return out


def roc_pr_curves(predictions: pd.DataFrame, positive: str) -> go.Figure:
    """ROC (left) and precision-recall (right) curves of the MLP and logistic regression, two classes only.

    Solid lines pool the test predictions of all CV folds (each sample appears
    once per CV repeat); dotted lines are the holdout split's test samples.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=["ROC curve", "Precision-recall curve"], horizontal_spacing=0.1)
    for kind, dash, label in (("cv", "solid", "CV folds pooled"), ("holdout", "dot", "holdout")):
        for model, fpr, tpr, recall, precision, auc, ap, _n in _binary_curves(predictions, positive, kind):
            colour = MODEL_COLOURS.get(model, "#333333")
            group = f"{model}-{kind}"
            fig.add_trace(
                go.Scatter(
                    x=fpr,
                    y=tpr,
                    mode="lines",
                    line={"color": colour, "dash": dash, "width": 2 if kind == "cv" else 1.5},
                    name=f"{model_name(model)}, {label} (AUC {auc:.2f})",
                    legendgroup=group,
                    hovertemplate="false positive rate %{x:.2f}<br>true positive rate %{y:.2f}<extra>"
                    + f"{model_name(model)}, {label}"
                    + "</extra>",
                ),
                row=1,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=recall,
                    y=precision,
                    mode="lines",
                    line={"color": colour, "dash": dash, "width": 2 if kind == "cv" else 1.5, "shape": "hv"},
                    name=f"{model_name(model)}, {label} (AP {ap:.2f})",
                    legendgroup=group,
                    showlegend=False,
                    hovertemplate="recall %{x:.2f}<br>precision %{y:.2f}<extra>"
                    + f"{model_name(model)}, {label}, AP {ap:.2f}"
                    + "</extra>",
                ),
                row=1,
                col=2,
            )
    fig.add_shape(
        type="line", x0=0, y0=0, x1=1, y1=1, line={"color": "#555555", "dash": "dash", "width": 1}, row=1, col=1
    )
    cv = (
        predictions[(predictions["kind"] == "cv") & (predictions["model"] == predictions["model"].iloc[0])]
        if len(predictions)
        else predictions
    )
    if len(cv):
        prevalence = float((cv["true_label"].astype(str) == positive).mean())
        fig.add_hline(y=prevalence, line={"color": "#555555", "dash": "dash", "width": 1}, row=1, col=2)
    fig.update_xaxes(title_text="false positive rate", range=[-0.01, 1.01], row=1, col=1)
    fig.update_yaxes(title_text="true positive rate (recall)", range=[-0.01, 1.01], row=1, col=1)
    fig.update_xaxes(title_text=f"recall (share of '{positive}' found)", range=[-0.01, 1.01], row=1, col=2)
    fig.update_yaxes(title_text="precision", range=[-0.01, 1.05], row=1, col=2)
    fig.update_layout(legend={"orientation": "h", "y": -0.22, "x": 0})
    return _finish(fig, 500)


def confusion_table(predictions: pd.DataFrame, classes: Sequence[str]) -> pd.DataFrame:
    """Counts of true (rows) by predicted (columns) class, every class present."""
    table = pd.crosstab(predictions["true_label"].astype(str), predictions["predicted_label"].astype(str))
    return table.reindex(index=list(classes), columns=list(classes), fill_value=0).fillna(0).astype(int)


def confusion_matrices(predictions: pd.DataFrame, classes: Sequence[str], model: str = "mlp") -> go.Figure:
    """Confusion matrices of ``model``: the holdout split (left) and summed over all CV folds (right)."""
    part = predictions[predictions["model"] == model]
    blocks = [("holdout", "Holdout split"), ("cv", "CV folds, summed")]
    titles = []
    for kind, title in blocks:
        titles.append(f"{title} (n = {int((part['kind'] == kind).sum())})")
    fig = make_subplots(rows=1, cols=2, subplot_titles=titles, horizontal_spacing=0.2)
    for i, (kind, _) in enumerate(blocks):
        table = confusion_table(part[part["kind"] == kind], classes)
        z = table.to_numpy()
        totals = z.sum(axis=1, keepdims=True)
        share = np.divide(z, totals, out=np.zeros_like(z, dtype=float), where=totals > 0)
        text = [[f"{z[r, c]}<br>({share[r, c]:.0%} of row)" for c in range(z.shape[1])] for r in range(z.shape[0])]
        fig.add_trace(
            go.Heatmap(
                z=share,
                x=[f"predicted {c}" for c in table.columns],
                y=[f"true {c}" for c in table.index],
                text=text,
                texttemplate="%{text}",
                colorscale=[[0, "#f7fbff"], [1, "#2171b5"]],
                zmin=0,
                zmax=1,
                showscale=False,
                hovertemplate="%{y}, %{x}: %{text}<extra></extra>",
            ),
            row=1,
            col=i + 1,
        )
        fig.update_yaxes(autorange="reversed", row=1, col=i + 1)
    fig.update_xaxes(showgrid=False)
    fig.update_yaxes(showgrid=False)
    return _finish(fig, 130 + 70 * max(len(classes), 2))


def comparison_chart(summary: pd.DataFrame, metrics: Sequence[str], panels: Sequence[str]) -> go.Figure:
    """CV mean with its 95% CI for each panel (x) and model (colour), one subplot per metric."""
    metrics = [m for m in metrics if m in set(summary["metric"])]
    cols = 3
    rows = max(1, math.ceil(len(metrics) / cols))
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[metric_name(m) for m in metrics],
        horizontal_spacing=0.07,
        vertical_spacing=0.16,
    )
    models = [m for m in MODEL_ORDER if m in set(summary["model"])] + sorted(set(summary["model"]) - set(MODEL_ORDER))
    for i, metric in enumerate(metrics):
        row, col = divmod(i, cols)
        part = summary[summary["metric"] == metric]
        for model in models:
            rows_m = part[part["model"] == model].set_index("panel").reindex(list(panels))
            mean = rows_m["cv_mean"].to_numpy(np.float64)
            low = rows_m["ci_low"].to_numpy(np.float64)
            high = rows_m["ci_high"].to_numpy(np.float64)
            fig.add_trace(
                go.Scatter(
                    x=list(panels),
                    y=mean,
                    mode="markers",
                    marker={"color": MODEL_COLOURS.get(model, "#333333"), "size": 9, "symbol": "circle"},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": np.nan_to_num(high - mean),
                        "arrayminus": np.nan_to_num(mean - low),
                        "thickness": 1.5,
                        "width": 4,
                    },
                    name=model_name(model),
                    legendgroup=model,
                    showlegend=i == 0,
                    customdata=np.stack([low, high], axis=1),
                    hovertemplate="%{x}: %{y:.3f} (95% CI %{customdata[0]:.3f} to %{customdata[1]:.3f})<extra>"
                    + model_name(model)
                    + "</extra>",
                ),
                row=row + 1,
                col=col + 1,
            )
        if metric in CHANCE_LEVEL:
            fig.add_hline(
                y=CHANCE_LEVEL[metric], line={"color": "#555555", "dash": "dash", "width": 1}, row=row + 1, col=col + 1
            )
    fig.update_layout(scattermode="group", scattergap=0.5, legend={"orientation": "h", "y": 1.1, "x": 0})
    return _finish(fig, 300 * rows + 80)


def permutation_null(null: np.ndarray, observed: float, p_value: float, panel: str) -> go.Figure:
    """Histogram of the label-shuffled replicates' mean CV ROC-AUC with the observed value as a line."""
    null = np.asarray(null, dtype=np.float64)
    fig = go.Figure(
        go.Histogram(
            x=null,
            nbinsx=min(40, max(10, len(null) // 5)),
            marker_color="#9ecae1",
            marker_line={"color": "#4a7fb0", "width": 1},
            name="shuffled labels",
        )
    )
    fig.add_vline(x=observed, line={"color": HOLDOUT_COLOUR, "width": 2})
    fig.add_annotation(
        x=observed,
        y=1,
        yref="paper",
        text=f"observed {observed:.3f}<br>p = {p_value:.3g}",
        showarrow=False,
        xanchor="left",
        yanchor="top",
        xshift=4,
        font={"color": HOLDOUT_COLOUR},
    )
    fig.add_vline(x=0.5, line={"color": "#555555", "dash": "dash", "width": 1})
    fig.update_xaxes(title_text=f"{panel}: mean CV ROC-AUC with shuffled labels")
    fig.update_yaxes(title_text="replicates")
    fig.update_layout(showlegend=False, bargap=0.05)
    return _finish(fig, 320)
