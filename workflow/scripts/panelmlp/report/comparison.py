"""Panels against the baselines: a ranked ROC-AUC dot plot for any number of panels, every key metric for few.

The dot plot has one row per panel, so it stays readable to a few dozen
panels; beyond :data:`DOT_PLOT_MAX` it shows the best ones and says so (the
ranked table in the verdict lists them all). The per-metric chart, the key
metrics table and the full summary table are shown up to :data:`FEW_PANELS`
panels, where they stay readable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from .figures import (
    CHANCE_LEVEL,
    IDEAL_LEVEL,
    KEY_METRICS,
    MODEL_COLOURS,
    MODEL_ORDER,
    Figure,
    axis_ref,
    figure,
    grid,
    hline,
    metric_name,
    model_name,
    vline,
)
from .inputs import Panel
from .page import Figures, caption, collapsed, esc, fmt, fmt_ci, fmt_p, html_table, section
from .score import CLASSIFICATION, Score

DOT_PLOT_MAX = 40
"""At most this many panels (the best) in the ranked dot plot."""

FEW_PANELS = 10
"""Up to this many panels, the per-metric chart and the key-metrics and full summary tables are shown."""


def ci_points(model: str, mean: np.ndarray, low: np.ndarray, high: np.ndarray, along: str) -> dict:
    """One model's means as markers with asymmetric 95% CI bars, the values along axis ``along`` ('x' or 'y')."""
    colour = MODEL_COLOURS.get(model, "#333333")
    error = {
        "type": "data",
        "symmetric": False,
        "array": np.nan_to_num(high - mean),
        "arrayminus": np.nan_to_num(mean - low),
    }
    error |= {"thickness": 1.5, "width": 3, "color": colour}
    other = "y" if along == "x" else "x"
    return {
        "type": "scatter",
        "mode": "markers",
        along: np.asarray(mean, dtype=np.float64),
        f"error_{along}": error,
        "name": model_name(model),
        "legendgroup": model,
        "marker": {"color": colour, "size": 8, "symbol": "diamond" if model in ("logreg", "cox_ridge") else "circle"},
        "customdata": np.column_stack([low, high]),
        "hovertemplate": f"%{{{other}}}: %{{{along}:.3f}} (95% CI %{{customdata[0]:.3f}} to %{{customdata[1]:.3f}})"
        f"<extra>{model_name(model)}</extra>",
    }


def dot_plot(rows: pd.DataFrame, score: Score = CLASSIFICATION) -> Figure:
    """Ranked dot plot: MLP and logistic regression mean CV ROC-AUC with 95% CI bars, one row per panel, best on top.

    ``rows`` has, per panel in rank order, ``label`` and for each of ``mlp`` and
    ``logreg`` the columns ``<model>_mean``, ``<model>_low``, ``<model>_high``.
    """
    labels = [esc(v) for v in rows["label"]]
    data = []
    for model in ("mlp", score.baseline):
        mean, low, high = (rows[f"{model}_{c}"].to_numpy(np.float64) for c in ("mean", "low", "high"))
        data.append(ci_points(model, mean, low, high, "x") | {"y": labels, "orientation": "h"})
    layout = {
        "xaxis": {"title": {"text": f"mean CV {score.name} with 95% CI"}},
        "yaxis": {"autorange": "reversed", "type": "category", "categoryorder": "array", "categoryarray": labels},
        "scattermode": "group",
        "scattergap": 0.4,
        "shapes": [vline(score.chance)],
        "legend": {"orientation": "h", "y": 1.0, "x": 0, "yanchor": "bottom"},
        "margin": {"t": 40},
    }
    return figure(data, layout, 140 + 24 * len(labels))


def metric_grid(summary: pd.DataFrame, metrics: Sequence[str], panels: Sequence[str], labels: Sequence[str]) -> Figure:
    """CV mean with its 95% CI for each panel (x) and model (colour), one subplot per metric (for few panels).

    ``panels`` are the summary's panel keys (``collection/panel``), ``labels`` their display names.
    """
    metrics = [m for m in metrics if m in set(summary["metric"])]
    cols = 3
    n_rows = max(1, math.ceil(len(metrics) / cols))
    layout = grid(n_rows, cols, [metric_name(m) for m in metrics], hspace=0.07, vspace=0.16)
    models = [m for m in MODEL_ORDER if m in set(summary["model"])] + sorted(set(summary["model"]) - set(MODEL_ORDER))
    names = [esc(v) for v in labels]
    data, shapes = [], []
    for i, metric in enumerate(metrics):
        x, y = axis_ref(i)
        part = summary[summary["metric"] == metric]
        for model in models:
            rows = part[part["model"] == model].set_index("key").reindex(list(panels))
            mean, low, high = (rows[c].to_numpy(np.float64) for c in ("cv_mean", "ci_low", "ci_high"))
            trace = ci_points(model, mean, low, high, "y") | {"x": names, "xaxis": x, "yaxis": y}
            trace["showlegend"] = i == 0
            data.append(trace)
        if metric in CHANCE_LEVEL:
            shapes.append(hline(CHANCE_LEVEL[metric], i))
        elif metric in IDEAL_LEVEL:
            shapes.append(hline(IDEAL_LEVEL[metric], i))
    layout |= {"shapes": shapes, "scattermode": "group", "scattergap": 0.5}
    layout["legend"] = {"orientation": "h", "y": 1.1, "x": 0}
    return figure(data, layout, 300 * n_rows + 80)


def dot_plot_rows(panels: Sequence[Panel]) -> pd.DataFrame:
    """Label and MLP / linear baseline main-metric mean and CI of each panel, in rank order."""
    rows = []
    for p in panels:
        row = {"label": p.label}
        for model in ("mlp", p.score.baseline):
            r = p.row(model, p.score.metric)
            row |= {f"{model}_mean": r["cv_mean"], f"{model}_low": r["ci_low"], f"{model}_high": r["ci_high"]}
        rows.append(row)
    return pd.DataFrame(rows)


def _models(summary: pd.DataFrame) -> list[str]:
    """Models of the summary in display order."""
    present = set(summary["model"])
    return [m for m in MODEL_ORDER if m in present] + sorted(present - set(MODEL_ORDER))


def key_metrics_table(panels: Sequence[Panel], models: Sequence[str]) -> str:
    """One row per panel and model, one column per key metric: 'mean [low, high]'; the MLP's rows in bold."""
    rows, key = [], []
    key_metrics = panels[0].score.key_metrics if panels else KEY_METRICS
    for p in panels:
        for model in models:
            rows.append([p.label, model_name(model)] + [fmt_ci(p.row(model, m)) for m in key_metrics])
            key.append(model == "mlp")
    names = [metric_name(m) for m in key_metrics]
    return html_table(["panel", "model", *names], rows, numeric=names, key_rows=key)


def summary_table(panels: Sequence[Panel], models: Sequence[str], metrics: Sequence[str]) -> str:
    """summary.tsv of the given panels as a formatted table, the MLP's ROC-AUC rows highlighted."""
    columns = [
        "panel",
        "model",
        "metric",
        "CV mean",
        "CV sd",
        "95% CI",
        "CV splits",
        "holdout",
        "permutation p",
        "permutations",
    ]
    rows, key = [], []
    for p in panels:
        for model in models:
            for metric in metrics:
                r = p.row(model, metric)
                n_perm = int(r["n_permutations"] or 0)
                ci = f"{fmt(r['ci_low'])} to {fmt(r['ci_high'])}"
                perm = fmt_p(r["perm_p"]) if n_perm else ""
                name = metric_name(metric)
                values = [
                    fmt(r["cv_mean"]),
                    fmt(r["cv_sd"]),
                    ci,
                    int(r["n_splits"] or 0),
                    fmt(r["holdout"]),
                    perm,
                    n_perm,
                ]
                rows.append([p.label, model_name(model), name, *values])
                key.append(model == "mlp" and metric == p.score.metric)
    return html_table(columns, rows, numeric=columns[3:], key_rows=key)


def _dot_plot(panels: Sequence[Panel], slots: Figures) -> str:
    """The ranked ROC-AUC dot plot and its caption."""
    shown = list(panels[:DOT_PLOT_MAX])
    more = (
        f" Only the best {len(shown)} of the {len(panels)} panels are drawn; the ranked table in section 1 lists all."
        if len(shown) < len(panels)
        else ""
    )
    score = panels[0].score if panels else CLASSIFICATION
    chance = fmt(score.chance)
    text = (
        f"Each row is a panel, best mean CV {score.name} on top: the MLP's mean (circle) and {score.baseline_name}'s (diamond), "
        f"each with its 95% confidence interval as a bar. The dashed line is chance ({chance}). Overlapping intervals of the MLP "
        f"and {score.baseline_name} mean the data cannot tell them apart; an interval crossing {chance} is no evidence of signal."
        + more
    )
    return slots.html(dot_plot(dot_plot_rows(shown), score), "ranked-auc") + caption(text)


def _few_panels(panels: Sequence[Panel], summary: pd.DataFrame, slots: Figures) -> str:
    """Every key metric per panel and model: chart, table and the full summary table (few panels only)."""
    models = _models(summary)
    frame = summary.assign(key=summary["collection"] + "/" + summary["panel"])
    keys = [f"{p.collection}/{p.name}" for p in panels]
    score = panels[0].score if panels else CLASSIFICATION
    fig = metric_grid(frame, score.key_metrics, keys, [p.label for p in panels])
    metrics = list(dict.fromkeys(summary["metric"]))
    full = summary_table(panels, models, metrics)
    if score.kind == "survival":
        explained = (
            "Each dot is a model's mean over the CV splits, with its 95% confidence interval as a bar. "
            "Dashed lines mark chance (0.5) for Harrell's and Uno's C-index and the time-dependent AUC; the constant-risk "
            "baseline sits there by construction. The integrated Brier score has no fixed chance level: the constant-risk "
            "baseline's value (the training Kaplan-Meier curve for everyone) is the bar any model must get below."
        )
    elif score.kind == "regression":
        explained = (
            "Each dot is a model's mean over the CV splits, with its 95% confidence interval as a bar. "
            "Dashed lines mark no skill: R² 0 (predicting the mean) and correlations 0. RMSE and MAE are in the target's units; "
            "the training-mean baseline's errors are the bar any model must clear."
        )
    else:
        explained = (
            "Each dot is a model's mean over the CV splits, with its 95% confidence interval as a bar. "
            "Dashed lines mark chance for ROC-AUC and balanced accuracy (0.5) and for MCC (0). "
            "For PR-AUC chance is the share of positive samples, which the majority baseline's value shows. "
            "The majority baseline's accuracy is high only because one class is common; it has no skill."
        )
    return (
        "<h3>Every key metric</h3>"
        + slots.html(fig, "comparison")
        + caption(explained)
        + key_metrics_table(panels, models)
        + caption("CV mean with its 95% confidence interval in brackets; the MLP's rows in bold.")
        + collapsed(
            f"Full summary table ({len(panels) * len(models) * len(metrics)} rows)",
            full
            + caption(
                "'CV sd' is the spread over CV splits; 'holdout' the single holdout split's value; the permutation p-value is computed "
                f"for the MLP's {score.name} only. A CI is clipped to the metric's range."
            ),
        )
    )


def threshold_note(score: Score) -> str:
    """The decision threshold behind the thresholded metrics and what the calibration metrics mean (classes only);
    for a survival target, what its four metrics measure."""
    if score.kind == "survival":
        return caption(
            "<b>Survival metrics.</b> Harrell's C-index is the share of comparable pairs of test samples (one had the event "
            "before the other's time) whose predicted risks are in the right order; Uno's C weights the pairs by the inverse "
            "probability of censoring (estimated on the training samples) so heavy censoring does not bias it. The "
            "time-dependent AUC asks, at each horizon of <code>target.horizons</code>, whether samples with the event by then "
            "got higher risks than those still event-free; its mean over the horizons is shown (per horizon in "
            "metrics.tsv). The integrated Brier score is the squared error of the predicted survival curves (Breslow "
            "baseline hazard from the training samples) against what happened, averaged over time; 0 is perfect."
        )
    if score.kind == "regression":
        return ""
    return caption(
        "<b>Decision threshold.</b> Accuracy, balanced accuracy, precision, recall, F1, MCC and the confusion matrices "
        "count a sample as predicted of the positive class when its predicted probability is at least 0.5 (two classes), "
        "or as the most probable class (argmax, more classes); no threshold is tuned. ROC-AUC, PR-AUC, the Brier score "
        "and the calibration slope and intercept use the probabilities themselves. The Brier score is the mean squared "
        "difference between predicted probability and outcome (0 is perfect; with more than two classes averaged over "
        "the classes); a calibration slope of 1 and intercept of 0 are ideal (logistic recalibration: the slope from "
        "the joint fit, the intercept with the slope fixed at 1). The summary's slope and intercept are fitted once per "
        "CV repeat on its pooled out-of-fold predictions (every sample predicted once) and averaged over repeats, with a "
        "Wald 95% interval and 'CV splits' counting the repeats; the per-split fits in metrics.tsv are biased upward "
        "on small test folds."
    )


def comparison_section(panels: Sequence[Panel], summary: pd.DataFrame, slots: Figures) -> str:
    """The ranked dot plot, the decision threshold, and for few panels every key metric with the full summary."""
    body = _dot_plot(panels, slots)
    body += threshold_note(panels[0].score if panels else CLASSIFICATION)
    if len(panels) <= FEW_PANELS:
        body += _few_panels(panels, summary, slots)
    else:
        body += (
            f'<p class="muted">With {len(panels)} panels the per-metric chart and the full summary table are left out of the page; '
            "every panel's every metric is in <code>results/metrics/summary.tsv</code>.</p>"
        )
    return section("comparison", body)
