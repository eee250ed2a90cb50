"""The null tests: label-shuffled replicates per panel, and random gene sets of each panel's size.

The permutation test (self-contained) asks "do these genes predict?": the
same pipeline on shuffled labels. The random-panel test (competitive) asks
"are these genes special?": the same pipeline on random genes of the same
number (a pool per size bin). This module draws the
overview across panels; each panel's own null histograms are drawn in its
details from :func:`permutation_figure` and :func:`random_figure`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from ..compare import ALPHA, at_floor, beats_random, pool_key, random_p_text
from .figures import HOLDOUT_COLOUR, MODEL_COLOURS, Figure, figure, hline, number, vline
from .inputs import Panel
from .page import Figures, caption, esc, fmt, fmt_p, section
from .score import CLASSIFICATION, Score

P_HISTOGRAM_MIN = 10
"""The p-value histogram across panels is drawn from this many panels on."""


def histogram(values: np.ndarray, extra: Sequence[float] = (), max_bins: int = 40) -> tuple[np.ndarray, list, float]:
    """Bin centres, counts and bin width of ``values``; the range also covers ``extra`` (e.g. the observed value).

    Binned here so a figure carries tens of numbers however many replicates ran.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    span = np.concatenate([values, [v for v in extra if math.isfinite(v)]])
    bins = min(max_bins, max(10, len(values) // 5))
    low, high = (float(span.min()), float(span.max())) if len(span) else (0.0, 1.0)
    if high - low < 1e-9:
        low, high = low - 0.05, high + 0.05
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    return (edges[:-1] + edges[1:]) / 2, counts.tolist(), float(edges[1] - edges[0])


def null_histogram(
    null: np.ndarray, observed: float, note: str, x_title: str, bar_name: str, score: Score = CLASSIFICATION
) -> Figure:
    """Histogram of a null distribution of the mean CV main metric (ROC-AUC or R²) with the observed value as a red line.

    ``note`` is the annotation beside the line (e.g. the p-value).
    """
    centres, counts, width = histogram(null, [observed, score.chance])
    bars = {
        "type": "bar",
        "x": centres,
        "y": counts,
        "width": number(width),
        "name": bar_name,
        "marker": {"color": "#9ecae1", "line": {"color": "#4a7fb0", "width": 1}},
        "hovertemplate": f"{score.name} %{{x:.3f}}: %{{y}} replicates<extra></extra>",
    }
    shapes = [vline(score.chance)]
    annotations = []
    if math.isfinite(observed):
        shapes.append(vline(number(observed), line={"color": HOLDOUT_COLOUR, "width": 2}))
        annotations.append(
            {
                "x": number(observed),
                "y": 1,
                "yref": "paper",
                "text": f"observed {observed:.3f}<br>{note}",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "top",
                "xshift": 4,
                "font": {"color": HOLDOUT_COLOUR},
            }
        )
    layout = {
        "showlegend": False,
        "bargap": 0.05,
        "shapes": shapes,
        "annotations": annotations,
        "xaxis": {"title": {"text": x_title}},
        "yaxis": {"title": {"text": "replicates"}},
    }
    return figure([bars], layout, 320)


def _pool_label(key: tuple[str, int]) -> str:
    """A pool's tick label: its size, and its collection when drawn from a collection's genes."""
    universe, size = key
    return f"{size} ({universe})" if universe else str(size)


def pools_figure(
    pools: Mapping[tuple[str, int], np.ndarray], panels: pd.DataFrame, score: Score = CLASSIFICATION
) -> Figure:
    """Each size bin's pool of random gene sets (a box of their mean CV ROC-AUC) with the panels it serves as dots.

    ``pools`` is keyed by ``(universe, size)`` (``compare.random_pools``);
    ``panels`` has ``label``, ``size`` (the pool's key), ``auc``, ``random_p`` (as text, :func:`compare.random_p_text`)
    and ``beats`` (``yes``/``no``); dots are spread sideways so many panels of
    one bin stay visible.
    """
    sizes = sorted(pools)
    where = {s: i for i, s in enumerate(sizes)}
    stats = [np.nanpercentile(pools[s], [0, 25, 50, 75, 100]) if len(pools[s]) else np.full(5, np.nan) for s in sizes]
    box = {
        "type": "box",
        "x": list(range(len(sizes))),
        "name": "random gene sets",
        "boxpoints": False,
        "fillcolor": "rgba(150,150,150,0.25)",
        "line": {"color": "#777777"},
        "hoverinfo": "skip",
        "width": 0.7,
    }
    for key, j in (("lowerfence", 0), ("q1", 1), ("median", 2), ("q3", 3), ("upperfence", 4)):
        box[key] = np.array([st[j] for st in stats])
    data = [box]
    part = panels[panels["size"].isin(where)]
    for beats, colour, name in (
        ("yes", MODEL_COLOURS["mlp"], "panel, beats random (q < 0.05)"),
        ("no", "#b2182b", "panel"),
    ):
        rows = part[part["beats"] == beats]
        if not len(rows):
            continue
        slot = rows["size"].map(where)
        rank = rows.groupby(slot).cumcount().to_numpy()
        count = slot.map(slot.value_counts()).to_numpy()
        offset = np.where(count > 1, (rank / np.maximum(count - 1, 1) - 0.5) * 0.6, 0.0)
        x = np.array([where[s] for s in rows["size"]]) + offset
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": x,
                "y": rows["auc"].to_numpy(np.float64),
                "name": name,
                "marker": {"color": colour, "size": 7, "opacity": 0.8},
                "text": [esc(v) for v in rows["label"]],
                "customdata": [esc(v) for v in rows["random_p"]],
                "hovertemplate": f"%{{text}}: {score.name} %{{y:.3f}}, random-panel p %{{customdata}}<extra></extra>",
            }
        )
    layout = {
        "xaxis": {
            "title": {"text": "size bin of the random pool (genes)"},
            "tickvals": list(range(len(sizes))),
            "ticktext": [_pool_label(s) for s in sizes],
        },
        "yaxis": {"title": {"text": f"mean CV {score.name}"}},
        "shapes": [hline(score.chance)],
        "legend": {"orientation": "h", "y": 1.08, "x": 0},
    }
    return figure(data, layout, 380)


def p_value_figure(p_values: Mapping[str, np.ndarray], bins: int = 20) -> Figure:
    """Histograms of each test's p-values over the panels, on [0, 1].

    With no signal anywhere, p-values spread evenly; a pile-up near 0 is what
    signal in several panels looks like.
    """
    edges = np.linspace(0, 1, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    colours = ("#1f5fa8", "#e08214", "#1a7837")
    data = []
    for (name, values), colour in zip(p_values.items(), colours, strict=False):
        values = np.asarray(values, dtype=np.float64)
        counts, _ = np.histogram(values[np.isfinite(values)], bins=edges)
        data.append(
            {
                "type": "bar",
                "x": centres,
                "y": counts.tolist(),
                "name": name,
                "marker": {"color": colour},
                "opacity": 0.75,
                "hovertemplate": f"{name}: %{{y}} panels near p = %{{x:.3f}}<extra></extra>",
            }
        )
    layout = {
        "barmode": "group",
        "bargap": 0.1,
        "legend": {"orientation": "h", "y": 1.1, "x": 0},
        "xaxis": {"title": {"text": "p-value"}, "range": [0, 1]},
        "yaxis": {"title": {"text": "panels"}},
    }
    return figure(data, layout, 320)


def permutation_figure(panel: Panel, null: np.ndarray | None) -> Figure | None:
    """The panel's shuffled-label replicates against its real mean CV ROC-AUC; None when none ran."""
    auc = panel.auc
    if null is None or not len(null) or not int(auc["n_permutations"] or 0):
        return None
    note = f"p = {fmt_p(auc['perm_p'])}, q = {fmt_p(auc['perm_q'])}"
    return null_histogram(
        null,
        float(auc["cv_mean"]),
        note,
        f"{esc(panel.label)}: mean CV {panel.score.name} with shuffled labels",
        "shuffled labels",
        panel.score,
    )


def random_figure(panel: Panel, pool: np.ndarray | None) -> Figure | None:
    """The panel's mean CV ROC-AUC against random gene sets of its size bin; None without such a pool."""
    auc = panel.auc
    if pool is None or not len(pool) or not int(auc["n_random"] or 0):
        return None
    method = auc.get("random_p_method")
    if at_floor(auc["random_p"], method):
        shown = f"p {random_p_text(auc['random_p'], method)}, far beyond every random set"
    else:
        shown = f"p = {fmt_p(auc['random_p'])}" + (" (fitted tail)" if method == "fitted" else "")
    note = f"{esc(shown)}, q = {fmt_p(auc['random_q'])}<br>{fmt(auc['random_pct'], 0)}th percentile"
    size = auc.get("random_size")
    size = int(size) if size is not None and math.isfinite(float(size)) else panel.n_genes
    title = f"mean CV {panel.score.name} of random {size}-gene sets"
    return null_histogram(pool, float(auc["cv_mean"]), note, title, "random gene sets", panel.score)


def _permutation_part(panels: Sequence[Panel]) -> str:
    """What the permutation test did and how many panels pass it."""
    ran = [p for p in panels if int(p.auc["n_permutations"] or 0)]
    if not ran:
        return (
            '<p class="note">No permutation test was run (config <code>evaluate.permutations</code> is 0). '
            "Set it to, for example, 100 to train label-shuffled replicates and get a permutation p-value for each panel's MLP.</p>"
        )
    passed = sum(float(p.auc["perm_q"]) < ALPHA for p in ran)
    n = int(max(p.auc["n_permutations"] for p in ran))
    return (
        f"<h3>Shuffled labels</h3><p>Each panel's MLP was also trained on {n} copies of every CV split with the training labels "
        "shuffled, and scored on the true test labels: what this pipeline scores when there is nothing to find. "
        f"The permutation p-value is the share of replicates whose mean CV {ran[0].score.name} reaches the real one (add-one estimate, "
        f"so never below 1/(N+1) = {fmt_p(1 / (n + 1))}). <b>{passed} of {len(ran)}</b> panels have a permutation q &lt; {ALPHA}. "
        "Each panel's null distribution is drawn in its details (section 8).</p>"
    )


def _pool_key(panel: Panel, pools: Mapping[tuple[str, int], np.ndarray]) -> tuple[str, int] | None:
    """The key of the pool a panel was compared with (``compare.pool_key``: its collection's own universe, or the cohort's)."""
    size = panel.auc.get("random_size")
    if size is None or not math.isfinite(float(size)):
        return None
    return pool_key(pools, panel.collection, int(size))


def _random_part(panels: Sequence[Panel], pools: Mapping[tuple[str, int], np.ndarray], slots: Figures) -> str:
    """The random gene set pools per size bin with every panel placed among them."""
    compared = [p for p in panels if beats_random(p.auc) != "not run"]
    if not compared or not pools:
        return (
            '<p class="note">No random gene sets were trained (config <code>evaluate.random_panels</code> is 0). '
            "Set it to, for example, 100 to ask whether a panel's genes do better than random genes of the same number.</p>"
        )
    frame = pd.DataFrame(
        {
            "label": [p.label for p in compared],
            "size": [_pool_key(p, pools) for p in compared],
            "auc": [float(p.auc["cv_mean"]) for p in compared],
            "random_p": [random_p_text(p.auc["random_p"], p.auc.get("random_p_method")) for p in compared],
            "beats": [beats_random(p.auc) for p in compared],
        }
    )
    beat = int((frame["beats"] == "yes").sum())
    sizes = ", ".join(f"{_pool_label(s)}: {len(pools[s])} sets" for s in sorted(pools))
    return (
        "<h3>Random gene sets</h3>"
        + slots.html(pools_figure(pools, frame, compared[0].score), "random-pools")
        + caption(
            f"Boxes: the mean CV {compared[0].score.name} of random gene sets of each size bin (panels of nearby sizes share a "
            f"pool drawn at the bin's size; {esc(sizes)}), trained exactly like the panels; whiskers span the whole pool. "
            f"Dots: the panels, blue when they beat the random sets of their bin at q &lt; {ALPHA}. <b>{beat} of {len(compared)}</b> "
            "panels do. A panel can be predictive (beat chance and shuffled labels) without being shown to beat random genes: "
            "then this test does not single out that set (which is not evidence that any genes of that number would do as well)."
        )
    )


def _p_histogram(panels: Sequence[Panel], slots: Figures) -> str:
    """Histogram of each test's p-values across the panels (many panels only)."""
    if len(panels) < P_HISTOGRAM_MIN:
        return ""
    columns = {"t-test": "t_p", "permutation": "perm_p", "random panels": "random_p"}
    values = {name: np.array([float(p.auc[col]) for p in panels]) for name, col in columns.items()}
    values = {name: v for name, v in values.items() if np.isfinite(v).any()}
    return (
        "<h3>p-values across panels</h3>"
        + slots.html(p_value_figure(values), "p-values")
        + caption(
            "How each test's p-values spread over the panels. Where no panel has signal they spread evenly from 0 to 1; "
            "a pile-up near 0 beyond that even level is what signal in several panels looks like."
        )
    )


def nulls_section(panels: Sequence[Panel], pools: Mapping[int, np.ndarray], slots: Figures) -> str:
    """The overview of both null tests across panels, and the p-value histogram when there are many panels."""
    body = _permutation_part(panels) + _random_part(panels, pools, slots) + _p_histogram(panels, slots)
    return section("nulls", body)
