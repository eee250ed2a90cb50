"""The driver-genes section: which genes each predictive panel's models lean on, and which genes drive the screen.

Reads ``results/metrics/genes.tsv`` and ``genes_screen.tsv`` (rule
``importance``, :mod:`panelmlp.importance`) and the panels' genes from
``panels.tsv``. Three views: the screen's top genes (a table, with a warning
when one gene drives several predictive sets), each panel's importance bars
(one figure, a menu picks the panel), and the gene overlap (Jaccard index) of
the predictive sets as a heat map. Many predictive sets that overlap, or that
share their top gene, point to one broad program rather than to each set's
own biology (Venet et al. 2011).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from .figures import CV_COLOUR, Figure, figure, metric_name
from .page import Figures, caption, esc, fmt, html_table, section

PREDICTIVE = ("set-specific", "predictive")
"""Calls that make a set predictive (as :data:`panelmlp.importance.PREDICTIVE_CALLS`)."""

TOP_GENES = 20
"""Rows of the screen's top-genes table."""

BARS = 15
"""Genes drawn per panel in the importance bars (its most important)."""

MENU_PANELS = 60
"""Panels offered in the importance figure's menu (predictive first, then listed, by their top gene's importance)."""

OVERLAP_SETS = 60
"""Most predictive sets drawn in the overlap heat map (those with the most important top gene)."""

TEXT = ("collection", "panel", "call", "gene", "metric", "predictive_sets")
NUMERIC_SKIP = (*TEXT, "listed")


def read_gene_table(path: str | Path | None) -> pd.DataFrame | None:
    """genes.tsv or genes_screen.tsv with names as text (a gene called ``NA`` stays ``NA``); None without a path."""
    if not path:
        return None
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column == "listed":
            frame[column] = frame[column].str.lower() == "true"
        elif column not in TEXT:
            frame[column] = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
    return frame


def label_of(collection: str, panel: str) -> str:
    """``collection/panel`` for a set of a collection, the name for a named panel."""
    return f"{collection}/{panel}" if collection else panel


def jaccard(sets: Sequence[set[str]]) -> np.ndarray:
    """Jaccard index of every pair of gene sets (1 on the diagonal; 0 between two empty sets)."""
    n = len(sets)
    out = np.eye(n)
    for i in range(n):
        for j in range(i + 1, n):
            union = len(sets[i] | sets[j])
            out[i, j] = out[j, i] = len(sets[i] & sets[j]) / union if union else 0.0
    return out


def importance_bars(genes: pd.DataFrame, panels: Sequence[str]) -> Figure:
    """Each panel's top genes as horizontal bars with their 95% interval; a menu shows one panel at a time."""
    data, buttons = [], []
    metric = metric_name(str(genes["metric"].iloc[0])) if len(genes) else "score"
    for k, label in enumerate(panels):
        part = genes[genes["label"] == label].sort_values("rank").head(BARS).iloc[::-1]
        value = part["importance"].to_numpy(np.float64)
        data.append(
            {
                "type": "bar",
                "orientation": "h",
                "x": value,
                "y": part["gene"].tolist(),
                "name": label,
                "visible": k == 0,
                "marker": {"color": CV_COLOUR},
                "error_x": {
                    "type": "data",
                    "symmetric": False,
                    "array": np.nan_to_num(part["ci_high"].to_numpy(np.float64) - value),
                    "arrayminus": np.nan_to_num(value - part["ci_low"].to_numpy(np.float64)),
                    "color": "#555555",
                },
                "hovertemplate": f"%{{y}}: drop in {metric} %{{x:.3f}}<extra>{esc(label)}</extra>",
            }
        )
        title = f"{label}: drop in {metric} when the gene is permuted (mean over CV splits, 95% interval)"
        buttons.append(
            {
                "label": label,
                "method": "update",
                "args": [{"visible": [j == k for j in range(len(panels))]}, {"title": {"text": title}}],
            }
        )
    first = f"{panels[0]}: drop in {metric} when the gene is permuted (mean over CV splits, 95% interval)"
    layout = {
        "title": {"text": first, "font": {"size": 13}},
        "showlegend": False,
        "margin": {"l": 140},
        "xaxis": {"title": {"text": f"permutation importance (drop in {metric})"}, "zeroline": True},
        "shapes": [
            {"type": "line", "xref": "x", "yref": "paper", "x0": 0, "x1": 0, "y0": 0, "y1": 1, "line": {"width": 1}}
        ],
        "updatemenus": [
            {"buttons": buttons, "direction": "down", "x": 1, "xanchor": "right", "y": 1.15, "yanchor": "bottom"}
        ]
        if len(panels) > 1
        else [],
    }
    return figure(data, layout, 140 + 24 * BARS)


def overlap_heatmap(labels: Sequence[str], matrix: np.ndarray) -> Figure:
    """Jaccard index of the predictive sets' genes, one row and column per set."""
    data = [
        {
            "type": "heatmap",
            "z": matrix,
            "x": list(labels),
            "y": list(labels),
            "zmin": 0,
            "zmax": 1,
            "colorscale": "Blues",
            "colorbar": {"title": {"text": "Jaccard"}},
            "hovertemplate": "%{y} and %{x}: Jaccard %{z:.2f}<extra></extra>",
        }
    ]
    layout = {
        "xaxis": {"tickangle": -45, "automargin": True},
        "yaxis": {"autorange": "reversed", "automargin": True},
    }
    return figure(data, layout, min(900, 260 + 14 * len(labels)))


def importance_section(
    genes: pd.DataFrame | None, screen: pd.DataFrame | None, panel_table: pd.DataFrame, config: Mapping, slots: Figures
) -> str:
    """The driver-genes section; says why it is empty when no panel was scored (or the rule did not run)."""
    repeats = int(((config.get("evaluate") or {}).get("importance_repeats")) or 10)
    intro = (
        "Which genes each panel's models lean on: a gene's <b>permutation importance</b> is the drop in the panel's "
        f"score when that gene's values are shuffled among a split's test rows ({repeats} shuffles per gene and split, "
        "the trained model unchanged), averaged over the CV splits with a 95% corrected resampled t interval. "
        "Computed for every panel whose call is not <i>none</i> and every panel <code>evaluate.importance</code> "
        "names (results/metrics/genes.tsv, genes_screen.tsv). Two caveats. A gene <i>drives</i> a set when its "
        "interval lies above 0, judged gene by gene with no correction across genes: about 2.5% of genes with no "
        "effect qualify by chance (some 5 of a 200-gene set). Correlated genes share or mask importance: shuffling one "
        "leaves its partners to carry the same signal, so each of a correlated group can look unimportant; a small "
        "importance does not mean a gene is unrelated to the target."
    )
    if genes is None or screen is None:
        return section("importance", caption(intro) + "<p>Driver genes were not computed for this report.</p>")
    if not len(genes):
        return section(
            "importance",
            caption(intro)
            + "<p>No panel was called predictive and <code>evaluate.importance</code> names none, so no driver genes "
            "were computed.</p>",
        )
    genes = genes.assign(label=[label_of(c, p) for c, p in zip(genes["collection"], genes["panel"], strict=True)])
    metric = metric_name(str(genes["metric"].iloc[0]))
    predictive = genes[genes["call"].isin(PREDICTIVE)]
    labels_predictive = list(dict.fromkeys(predictive["label"]))
    parts = [caption(intro)]

    # The screen's top genes.
    parts.append("<h3>The screen's top genes</h3>")
    driving = screen[screen["n_driving"] > 0]
    if len(labels_predictive) > 1 and len(driving) and int(driving["n_driving"].iloc[0]) > 1:
        top = driving.iloc[0]
        parts.append(
            f'<div class="warning">{esc(top["gene"])} drives {int(top["n_driving"])} of the {len(labels_predictive)} '
            "predictive sets (its importance's interval lies above 0 in each): their scores may come from this gene, "
            "or from the program it belongs to, rather than from each set's own genes.</div>"
        )
    rows = [
        (
            r["gene"],
            int(r["n_predictive"]),
            int(r["n_driving"]),
            fmt(r["median_importance"]),
            int(r["n_scored"]),
            int(r["best_rank"]),
            r["predictive_sets"] if len(r["predictive_sets"]) <= 120 else r["predictive_sets"][:117] + "...",
        )
        for r in screen.head(TOP_GENES).to_dict("records")
    ]
    parts.append(
        html_table(
            [
                "gene",
                "predictive sets holding it",
                "sets it drives",
                f"median drop in {metric}",
                "panels scored",
                "best rank",
                "predictive sets",
            ],
            rows,
            numeric=[
                "predictive sets holding it",
                "sets it drives",
                f"median drop in {metric}",
                "panels scored",
                "best rank",
            ],
        )
    )
    parts.append(
        caption(
            f"The {min(TOP_GENES, len(screen))} of {len(screen)} genes scored that drive the most predictive sets "
            "(interval above 0), then by median importance over the predictive sets holding them."
        )
    )

    # Each panel's bars.
    tops = genes[genes["rank"] == 1].drop_duplicates("label")
    tops = tops.assign(pred=~tops["call"].isin(PREDICTIVE)).sort_values(
        ["pred", "importance", "label"], ascending=[True, False, True]
    )
    shown = list(tops["label"].head(MENU_PANELS))
    parts.append("<h3>Importance per panel</h3>")
    parts.append(slots.html(importance_bars(genes, shown), "importance-bars"))
    more = (
        f" The menu offers {len(shown)} of the {genes['label'].nunique()} panels scored."
        if len(tops) > len(shown)
        else ""
    )
    parts.append(
        caption(
            f"Each panel's {BARS} most important genes; pick a panel in the menu (predictive panels first). A bar "
            f"near 0 means the model does not use the gene; a negative one, that shuffling it helped by chance.{more}"
        )
    )

    # Overlap of the predictive sets.
    parts.append("<h3>Gene overlap of the predictive sets</h3>")
    if len(labels_predictive) < 2:
        parts.append(f"<p>{len(labels_predictive)} predictive set: no overlap to show.</p>")
    else:
        members: dict[str, set[str]] = {}
        kept = panel_table[panel_table["status"] == "kept"] if "status" in panel_table else panel_table
        for c, p, text in zip(kept["collection"], kept["panel"], kept["genes"], strict=True):
            members[label_of(c, p)] = set(str(text).split())
        order = tops[~tops["pred"]]["label"].head(OVERLAP_SETS).tolist()
        sets = [members.get(label, set(genes.loc[genes["label"] == label, "gene"])) for label in order]
        matrix = jaccard(sets)
        off = matrix[~np.eye(len(order), dtype=bool)]
        share = float((off > 0).mean()) if off.size else math.nan
        parts.append(slots.html(overlap_heatmap(order, matrix), "importance-overlap"))
        parts.append(
            caption(
                f"Jaccard index (shared genes / genes in either) of every pair of the {len(order)} predictive sets"
                f"{' shown' if len(order) < len(labels_predictive) else ''}; {share:.0%} of the pairs share a gene, "
                f"the median pair's index is {float(np.median(off)):.2f}. Sets that overlap, or that share their top "
                "gene above, are not independent evidence."
            )
        )
    return section("importance", "\n".join(parts))
