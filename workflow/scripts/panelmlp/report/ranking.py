"""The ranked table of all panels: best MLP mean CV ROC-AUC first, sortable by any column, each row linked to its details.

One row per panel however many there are, so this table (not figures) is the
overview of a run of hundreds of panels. Each cell carries its sort value in
``data-v``; the page's script sorts the rows when a header is clicked.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ..compare import random_p_text
from .inputs import Panel
from .page import esc, fmt, fmt_p
from .score import CLASSIFICATION, Score
from .verdict import tag

LEVEL_ORDER = {"set-specific": 0, "predictive": 1, "unconfirmed": 2, "none": 3, "below": 4, "unknown": 5}
"""Sort value of the call column: strongest first."""

SCROLL_ROWS = 25
"""With more panels than this, the table scrolls inside a box with its header kept in view."""


def _value(value: object) -> str:
    """A sort value for ``data-v``: the number, or '' for NaN (sorted last)."""
    number = float(value)  # type: ignore[arg-type]
    return "" if math.isnan(number) else f"{number:.6g}"


def _num(text: str, value: object) -> str:
    """A numeric cell showing ``text`` (trusted HTML) and sorting by ``value``."""
    return f'<td class="num" data-v="{_value(value)}">{text}</td>'


THIRD_COLUMN = {
    "classification": ("accuracy", "accuracy: MLP / majority"),
    "regression": ("rmse", "RMSE: MLP / mean"),
    "survival": ("ibs", "integrated Brier score: MLP / constant risk"),
}
"""The metric of the MLP against the trivial baseline in the ranked table's third score column, and its header, by kind."""


def _columns(
    collections: bool, permutations: bool, random: bool, score: Score = CLASSIFICATION
) -> list[tuple[str, bool]]:
    """Header names and whether each column sorts as a number."""
    cols = [("rank", True)] + ([("collection", False)] if collections else []) + [("panel", False), ("genes", True)]
    third = THIRD_COLUMN.get(score.kind, THIRD_COLUMN["classification"])[1]
    cols += [(f"MLP {score.name} [95% CI]", True), (f"{score.baseline_name} {score.name}", True), (third, True)]
    cols += [("t-test p", True), ("t-test q", True)]
    if permutations:
        cols += [("permutation p", True), ("permutation q", True)]
    if random:
        cols += [("random-panel p", True), ("random-panel q", True), ("random percentile", True)]
    return [*cols, ("call", True)]


def _row(p: Panel, collections: bool, permutations: bool, random: bool, best: bool, search: bool = False) -> str:
    """One panel's row; ``search``: a large screen's row, its name linked only when the panel has details (its
    anchor set), and its name, collection and genes in ``data-s`` for the search box."""
    auc, lr = p.auc, p.row(p.score.baseline, p.score.metric)
    which = THIRD_COLUMN.get(p.score.kind, THIRD_COLUMN["classification"])[0]
    acc, maj = p.row("mlp", which), p.row(p.score.trivial, which)
    cells = [_num(str(p.rank), p.rank)]
    if collections:
        cells.append(f"<td>{esc(p.collection)}</td>")
    name = f'<a href="#{p.anchor}">{esc(p.name)}</a>' if p.anchor or not search else esc(p.name)
    cells.append(f'<td data-v="{esc(p.name)}">{name}</td>')
    cells.append(_num(str(p.n_genes), p.n_genes))
    cells.append(_num(f"<b>{fmt(auc['cv_mean'])}</b> [{fmt(auc['ci_low'])}, {fmt(auc['ci_high'])}]", auc["cv_mean"]))
    cells.append(_num(fmt(lr["cv_mean"]), lr["cv_mean"]))
    cells.append(_num(f"{fmt(acc['cv_mean'])} / {fmt(maj['cv_mean'])}", acc["cv_mean"]))
    cells += [_num(fmt_p(auc["t_p"]), auc["t_p"]), _num(fmt_p(auc["t_q"]), auc["t_q"])]
    if permutations:
        cells += [_num(fmt_p(auc["perm_p"]), auc["perm_p"]), _num(fmt_p(auc["perm_q"]), auc["perm_q"])]
    if random:
        rand = random_p_text(auc["random_p"], auc.get("random_p_method"))
        cells += [_num(esc(rand), auc["random_p"]), _num(fmt_p(auc["random_q"]), auc["random_q"])]
        cells.append(_num(fmt(auc["random_pct"], 0), auc["random_pct"]))
    cells.append(f'<td class="num" data-v="{LEVEL_ORDER[p.level]}">{tag(p.level)}</td>')
    attrs = ' class="best"' if best else ""
    if search:
        attrs += f' data-s="{esc(" ".join([p.collection, p.name, *p.genes]).lower())}"'
    return f"<tr{attrs}>{''.join(cells)}</tr>"


def ranked_table(panels: Sequence[Panel], search: bool = False) -> str:
    """All panels, best first, the best highlighted; permutation and random-panel columns only when those ran.

    ``search``: a large screen, where only some panels have details; the table
    then gets a search box (:data:`SEARCH_SCRIPT`) over the panels' names,
    collections and genes, and links only the panels with details.
    """
    collections = any(p.collection for p in panels)
    permutations = any(int(p.auc["n_permutations"] or 0) for p in panels)
    random = any(int(p.auc["n_random"] or 0) for p in panels)
    score = panels[0].score if panels else CLASSIFICATION
    head = "".join(
        f'<th class="num">{esc(c)}</th>' if num else f"<th>{esc(c)}</th>"
        for c, num in _columns(collections, permutations, random, score)
    )
    best = bool(panels) and not math.isnan(float(panels[0].auc["cv_mean"]))
    rows = "".join(_row(p, collections, permutations, random, best and i == 0, search) for i, p in enumerate(panels))
    table = f'<table class="sortable ranked"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
    table = f'<div class="{"scroll" if len(panels) > SCROLL_ROWS else "wide"}">{table}</div>'
    if search:
        table = _search_box(len(panels)) + table + f"<script>{SEARCH_SCRIPT}</script>"
    return f"<h3>All {len(panels)} panels, ranked</h3>{table}" + _caption(permutations, random, score)


SEARCH_SCRIPT = """
(function () {
  "use strict";
  var box = document.getElementById("ranked-search"), shown = document.getElementById("ranked-shown");
  var rows = Array.prototype.slice.call(document.querySelector("table.ranked").tBodies[0].rows);
  var timer = null;
  function filter() {
    var words = box.value.toLowerCase().split(/\\s+/).filter(Boolean), n = 0;
    rows.forEach(function (row) {
      var text = row.getAttribute("data-s");
      var hit = words.every(function (w) { return text.indexOf(w) >= 0; });
      row.hidden = !hit;
      n += hit;
    });
    shown.textContent = words.length ? n + " of " + rows.length + " panels match" : "";
  }
  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(filter, 150); });
})();
"""
"""Filters the ranked table of a large screen: rows whose name, collection or genes hold every word typed."""


def _search_box(n_panels: int) -> str:
    """The search box above a large screen's ranked table (its script follows the table, so runs once it is parsed)."""
    return (
        f'<p><label>Find panels: <input type="search" id="ranked-search" size="40" '
        f'placeholder="set, collection or gene" aria-label="find among the {n_panels} panels">'
        f'</label> <span class="muted" id="ranked-shown"></span></p>'
        '<p class="caption">Typing keeps the rows whose set name, collection or genes contain every word typed. '
        "A linked name has its verdict and figures in section 8; the other panels are their row here (their outputs "
        "are in results/panels/).</p>"
    )


def _caption(permutations: bool, random: bool, score: Score = CLASSIFICATION) -> str:
    """What the ranked table's columns mean."""
    if score.kind == "survival":
        text = (
            "Ranked by the MLP's mean cross-validated (CV) C-index (Harrell's concordance of the predicted risks with the event "
            "times), best first (highlighted); click a header to sort by it, click a panel to open its details. Each panel trains "
            "a small neural network (MLP) with a Cox loss on its genes beside two baselines: ridge Cox regression on the same genes, "
            "and a constant risk (every sample the same risk, so its predicted survival is the training samples' Kaplan-Meier curve "
            "and its C-index 0.5). The integrated Brier score (lower is better) compares the predicted survival curves with what "
            "happened. The 95% confidence interval is the Nadeau-Bengio corrected resampled t interval, which allows for CV folds "
            "sharing training samples. The t-test asks whether the mean CV C-index exceeds 0.5; q-values are Benjamini-Hochberg "
            "over all panels. Call: <i>predictive</i> when the interval lies above 0.5 and the t-test's (and permutation test's) "
            "q-values are below 0.05; <i>set-specific</i> when, besides, the panel beats random gene sets of its size "
            "(random-panel q below 0.05); a predictive panel does not single out that set."
        )
        if permutations:
            text += " Permutation p: the share of replicates trained on shuffled survival times and events scoring at least as well."
        if random:
            text += (
                " Random-panel p and percentile: where the panel falls among random gene sets of its size bin "
                "(a fitted tail p where it beats them all)."
            )
        return f'<p class="caption">{text}</p>'
    if score.kind == "regression":
        text = (
            "Ranked by the MLP's mean cross-validated (CV) R², best first (highlighted); click a header to sort by it, "
            "click a panel to open its details. Each panel trains a small neural network (MLP) on its genes beside two baselines: "
            "ridge regression on the same genes, and the training mean (predict every sample the mean, whose error is the bar any "
            "model must clear; its R² is about 0). The 95% confidence interval is the Nadeau-Bengio corrected resampled t interval, "
            "which allows for CV folds sharing training samples. The t-test asks whether the mean CV R² exceeds 0; "
            "q-values are Benjamini-Hochberg over all panels. Call: <i>predictive</i> when the interval lies above 0 and the "
            "t-test's (and permutation test's) q-values are below 0.05; <i>set-specific</i> when, besides, the panel beats random "
            "gene sets of its size (random-panel q below 0.05); a predictive panel does not single out that set."
        )
        if permutations:
            text += " Permutation p: the share of label-shuffled replicates scoring at least as well."
        if random:
            text += (
                " Random-panel p and percentile: where the panel falls among random gene sets of its size bin "
                "(a fitted tail p where it beats them all)."
            )
        return f'<p class="caption">{text}</p>'
    text = (
        "Ranked by the MLP's mean cross-validated (CV) ROC-AUC, best first (highlighted); click a header to sort by it, "
        "click a panel to open its details. Each panel trains a small neural network (MLP) on its genes beside two baselines: "
        "logistic regression on the same genes, and the majority class (always predict the most common class, whose accuracy "
        "is the bar any model must clear). The 95% confidence interval is the Nadeau-Bengio corrected resampled t interval, "
        "which allows for CV folds sharing training samples. The t-test asks whether the mean CV ROC-AUC exceeds 0.5; "
        "q-values are Benjamini-Hochberg over all panels. Call: <i>predictive</i> when the interval lies above 0.5 and the "
        "t-test's (and permutation test's) q-values are below 0.05; <i>set-specific</i> when, besides, the panel beats random "
        "gene sets of its size (random-panel q below 0.05); a predictive panel does not single out that set."
    )
    if permutations:
        text += " Permutation p: the share of label-shuffled replicates scoring at least as well."
    if random:
        text += (
            " Random-panel p and percentile: where the panel falls among random gene sets of its size bin "
            "(a fitted tail p where it beats them all)."
        )
    return f'<p class="caption">{text}</p>'
