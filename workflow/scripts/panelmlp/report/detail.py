"""Each panel's details: its verdict and its figures, drawn only when the reader opens the panel.

A panel's figures (pair plot, training curves, ROC and PR curves, confusion
matrices, reliability diagram, or for a survival target Kaplan-Meier curves of
the predicted risk groups and a risk histogram; nested tuning, permutation
null, random-gene-set null) are one JSON block inside its
``<details>``; the page draws them when the block opens, so a report of 200
panels loads about as fast as one of three. With few panels the blocks start
open, hold plain JSON, and every figure carries its full caption, so a small
report reads as a whole; with many, the blocks start closed and are
gzip-compressed (:func:`page.packed_block`) to keep the file small.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ..compare import pool_of
from ..scaling import describe_uninformative
from . import figures, nulls
from .figures import Figure
from .inputs import Key, PairData, Panel, Rows, first_rows
from .page import caption, collapsed, esc, fmt, fmt_ci, fmt_p, json_block, packed_block
from .verdict import tag, verdict_box

GUIDE = {
    "pair": (
        "Each dot is one labelled sample, coloured by class (or by the target's value for a regression target); each small plot compares two genes. Values are standardised "
        "(0 = training mean, 1 = one standard deviation). Separate colour clouds would hint at signal; fully overlapping clouds "
        "mean these genes, taken two at a time, do not tell the classes apart. Looking is not testing: with many genes some "
        "pairs separate by chance."
    ),
    "curves": (
        "Blue: mean over the CV splits, with the shaded band showing mean ± 1 standard deviation across splits; red: the holdout split. "
        "Loss panel: dotted lines are the training loss, solid lines the test loss; the other panels are measured on each split's "
        "test samples after every epoch. A test loss that climbs while the training loss keeps falling means the network is "
        "memorising its training samples (overfitting). Dashed lines mark chance (ROC-AUC 0.5; R² and correlations 0). These curves describe "
        "training; the verdict uses the kept epoch only (the last, or the one early stopping chose)."
    ),
    "rocpr": (
        "Left: ROC curve, the share of positive samples caught (true positive rate) against the share of other samples wrongly "
        "flagged, as the probability threshold moves; the diagonal is chance. Right: precision-recall curve; the dashed line is "
        "the share of positives, what a random ranking gets. Solid lines pool the test predictions of all CV folds (each sample "
        "appears once per CV repeat), dotted lines the holdout split alone. The pooled AUC can differ from the per-fold mean in "
        "the verdict. The majority baseline is not drawn: it gives every sample the same score, so its curves are the dashed chance lines."
    ),
    "scatter": (
        "Each dot is a test sample: its true value (x) against the MLP's prediction (y); blue pools the test predictions of "
        "all CV splits (each sample once per CV repeat), red the holdout split. The dashed diagonal is perfect prediction. "
        "A cloud flat around the mean value, with no slope, is a model that has learnt nothing about the target."
    ),
    "confusion": (
        "The MLP's confusion matrices: rows are the true class, columns the predicted class (probability ≥ 0.5 for the positive "
        "class with two classes, the most probable class with more); counts with the share of the row. Left: the holdout split's test samples; right: all CV test "
        "predictions summed, so each sample is counted once per CV repeat. A good classifier puts most counts on the diagonal in every row."
    ),
    "calibration": (
        "Reliability diagram: the test predictions of all CV splits pooled (each sample once per CV repeat), binned by "
        "predicted probability in tenths; each point is a bin's mean predicted probability (x) against the share of its "
        "samples that really are of the class (y), the bars below how many samples the bin holds. Points on the dashed "
        "diagonal are well calibrated: of samples given 0.7, seven in ten are of the class. Points below it mean the model "
        "is over-confident there, above it under-confident; a bin of few samples is noisy. The calibration slope (1 is ideal; "
        "below 1, predictions too extreme) and intercept (0 is ideal; above 0, risks predicted too low on average) come from "
        "logistic recalibration of each CV repeat's pooled test predictions (every sample predicted once), averaged over "
        "repeats (with more than two classes, the mean of the one-vs-rest values); metrics.tsv keeps the per-split fits, whose "
        "mean is biased upward on small test folds. A good ROC-AUC does not imply good calibration."
    ),
    "permutation": (
        "Bars: the mean CV ROC-AUC of the replicates trained on shuffled labels, i.e. what this pipeline scores when there is "
        "nothing to find. Red line: the real labels' mean CV ROC-AUC; p is the share of replicates at or above it (add-one "
        "estimate), q its Benjamini-Hochberg value over all panels. A red line inside the bulk of the bars means the real result looks like chance."
    ),
    "tuning": (
        "Nested tuning (config model.grid): for every split, each grid point was trained on inner folds of that split's "
        "training rows only, and the point with the best mean inner validation ROC-AUC was retrained on the split and scored "
        "on its test rows. Bars: how many splits chose each point; the text gives its mean inner ROC-AUC over all splits. "
        "The test rows never took part in the choice, so the CV interval stays honest; a spread of winners means no point "
        "is clearly best."
    ),
    "random": (
        "Bars: the mean CV ROC-AUC of random gene sets with as many genes as this panel, trained the same way. Red line: this "
        "panel; p is the share of random sets at or above it (add-one estimate), the percentile where the panel falls among them. "
        "A red line inside the bulk of the bars means random genes of the same number do as well."
    ),
}
"""How to read each kind of panel figure: under every figure with few panels, once atop the section with many."""

SURVIVAL_GUIDE = {
    "pair": GUIDE["pair"]
    .replace("coloured by class (or by the target's value for a regression target)", "coloured by event status")
    .replace("tell the classes apart", "tell samples with the event from censored ones"),
    "curves": (
        "Blue: mean over the CV splits, with the shaded band showing mean ± 1 standard deviation across splits; red: the holdout split. "
        "Loss panel: dotted lines are the training loss, solid lines the test loss (the Cox partial likelihood, Breslow ties, per sample); "
        "the C-index panel is Harrell's C of each split's test samples after every epoch, and its dashed line is chance (0.5, a random "
        "ranking of risks). A test loss that climbs while the training loss keeps falling means the network is memorising its training "
        "samples (overfitting). These curves describe training; the verdict uses the kept epoch only (the last, or the one early "
        "stopping chose)."
    ),
    "km": (
        "Kaplan-Meier curves: the share of samples still without the event over time, for the samples the MLP put in its high-risk "
        "group (red) and its low-risk group (blue). Each CV split's test samples were cut at the median risk of that split's own "
        "training samples, so no test sample chose the threshold; the folds of the first CV repeat are pooled, so each sample appears "
        "once. Ticks mark censored samples; the numbers below are the samples still followed at each time. Curves that part early and "
        "stay apart mean the predicted risk orders the event times; crossing or overlapping curves mean it does not. The log-rank p "
        "tests high against low; the groups come from different folds' models, so read it as a description beside the C-index "
        "interval of the verdict, not as a second test."
    ),
    "risk": (
        "The MLP's predicted risks (higher: an earlier event expected) of the test samples of all CV splits (each sample once per CV "
        "repeat), red for samples whose event was observed, blue for censored ones. Each split's risks are centred at their median, "
        "because a Cox model's risk is defined up to an added constant that differs between the splits' models. Censored samples "
        "include some that would have had the event later, so the two histograms overlap even for a good model; red shifted to the "
        "right of blue is what signal looks like."
    ),
    **{k: GUIDE[k].replace("ROC-AUC", "C-index") for k in ("tuning", "permutation", "random")},
}
"""The same for a survival target: no ROC, PR, confusion or calibration figures; the risk groups and risks instead."""

TITLES = {
    "pair": "Gene pair plot",
    "curves": "Training curves",
    "rocpr": "ROC and precision-recall curves",
    "scatter": "Predicted against true values",
    "km": "Kaplan-Meier curves of the predicted risk groups",
    "risk": "Predicted risks: events and censored samples",
    "confusion": "Confusion matrices",
    "calibration": "Calibration: reliability diagram",
    "tuning": "Nested tuning: the grid points chosen",
    "permutation": "Permutation test: shuffled labels",
    "random": "Random gene sets of the same size",
}
"""Heading of each panel figure, in drawing order."""


@dataclass
class Context:
    """What every panel's details share: labels, pair-plot values, null distributions and the report's size."""

    labels: Mapping
    classes: list[str]
    positive: str
    pair: PairData
    pair_genes: dict[Key, list[str]]
    permutation_nulls: dict[Key, np.ndarray]
    random_pools: dict[tuple[str, int], np.ndarray]
    """Per pool ``(universe, size bin)`` (``compare.random_pools``)."""
    n_panels: int
    random_panels: int
    explain: bool
    """Full captions under each figure (few panels); otherwise the guide atop the section."""
    points: int = figures.MAX_POINTS
    """Points per drawn curve (see :func:`figures.points_per_curve`)."""

    @property
    def guide(self) -> dict[str, str]:
        """How to read each figure of this run's target kind."""
        return guide_of(self.labels.get("kind"))


def guide_of(kind: str | None) -> dict[str, str]:
    """The figure guide of a target kind (a survival target's own; the classes' and a regression target's shared one)."""
    return SURVIVAL_GUIDE if kind == "survival" else GUIDE


def panel_figures(
    panel: Panel, history: Rows | None, predictions: Rows | None, ctx: Context, tuning: Rows | None = None
) -> tuple[dict[str, Figure], dict[str, str]]:
    """The panel's figures by kind, and the panel-specific caption of each (a note where one is missing)."""
    figs: dict[str, Figure] = {}
    notes: dict[str, str] = {}
    _pair(panel, ctx, figs, notes)
    if history is not None and len(history):
        kind = ctx.labels.get("kind")
        regression_loss = "L1" if ctx.labels.get("loss") == "l1" else "MSE"
        loss = {  # classes: the default title, cross-entropy
            "survival": "Loss (Cox partial likelihood)",
            "regression": f"Loss ({regression_loss}, standardised target)",
        }.get(kind)
        figs["curves"] = figures.epoch_curves(history, ctx.points, loss)
        notes["curves"] = _curves_note(history, panel, ctx.points)
    else:
        notes["curves"] = "No training history."
    _evaluation(predictions, ctx, figs, notes)
    if "calibration" in figs:
        notes["calibration"] = calibration_note(panel)
    if tuning is not None and len(tuning):
        figs["tuning"] = figures.tuning_choices(tuning)
        notes["tuning"] = _tuning_note(tuning)
    perm = nulls.permutation_figure(panel, ctx.permutation_nulls.get(panel.key))
    if perm is not None:
        figs["permutation"] = perm
        notes["permutation"] = f"{int(panel.auc['n_permutations'])} label-shuffled replicates."
    pool = pool_of(ctx.random_pools, panel.collection, panel.auc.get("random_size"))
    rand = nulls.random_figure(panel, pool)
    if rand is not None and pool is not None:
        figs["random"] = rand
        notes["random"] = (
            f"{len(pool)} random sets of {int(panel.auc['random_size'])} genes (this panel's size bin); "
            f"percentile {fmt(panel.auc['random_pct'], 0)}."
        )
    return figs, notes


def _pair(panel: Panel, ctx: Context, figs: dict[str, Figure], notes: dict[str, str]) -> None:
    """The pair plot of the panel's first genes on the holdout split, or why there is none."""
    genes = [g for g in ctx.pair_genes.get(panel.key, []) if g in ctx.pair.columns]
    if len(genes) < 2:
        notes["pair"] = (
            f"Only {len(genes)} gene{'s' if len(genes) != 1 else ''} to draw ({esc(', '.join(genes))}): no pairs to plot."
        )
        return
    if ctx.labels.get("kind") == "regression":
        targets = np.array([float(v) for v in ctx.pair.labels])
        figs["pair"] = figures.pair_plot_values(ctx.pair.matrix(genes), targets, genes, ctx.labels.get("target", ""))
    else:
        figs["pair"] = figures.pair_plot(ctx.pair.matrix(genes), ctx.pair.labels, genes, ctx.classes)
    shown = len(ctx.pair.labels)
    drawn = (
        f"{shown} labelled samples" if shown == ctx.pair.total else f"{shown} of the {ctx.pair.total} labelled samples"
    )
    note = f"{drawn} of the holdout split (training and test), standardised with its training samples."
    if len(genes) < panel.n_genes:
        note += (
            f" Showing the first {len(genes)} of the panel's {panel.n_genes} genes in panel order ({esc(', '.join(genes))}); "
            "the cap is config <code>report.pairplot_max_genes</code>."
        )
    notes["pair"] = note


def _curves_note(history: Rows, panel: Panel, points: int) -> str:
    """How many splits the curves average, the device, the thinning, and the epochs early stopping kept."""
    n_cv = len(first_rows(history["split_id"][history["kind"] == "cv"]))
    _first, step = figures.epoch_grid(int(history["epoch"].max()), points)
    thinned = f" Drawn every {step} epochs, ending at the last." if step > 1 else ""
    return (
        f"{n_cv} CV splits and the holdout split. Trained on: {esc(panel.facts.device)}.{thinned}"
        + early_stopping_note(history)
        + uninformative_note(history)
    )


def uninformative_note(history: Rows) -> str:
    """The panel's genes that carried no information in some split (history.parquet's ``uninformative``), or ''."""
    if "uninformative" not in history or not len(history):
        return ""
    first = first_rows(history["split_id"])
    by_gene: dict[str, list[str]] = {}
    for i in first.tolist():
        for gene in str(history["uninformative"][i]).split():
            by_gene.setdefault(gene, []).append(str(history["split_id"][i]))
    if not by_gene:
        return ""
    return (
        " Genes without information (constant or never observed in a split's training rows; their input is 0 "
        f"there, in training, testing and prediction, so they change nothing): {esc(describe_uninformative(by_gene, len(first)))}."
    )


def early_stopping_note(history: Rows) -> str:
    """Which epochs early stopping kept (from history.parquet's ``best_epoch``), or '' when every model ran to the end."""
    if "best_epoch" not in history or not len(history):
        return ""
    last = int(history["epoch"].max())
    stopped = bool(np.isnan(np.asarray(history["train_loss"], dtype=np.float64)).any())
    first = first_rows(history["split_id"])  # each split's first row, in order of appearance
    best = np.asarray(history["best_epoch"])[first].astype(np.int64)
    kinds = np.asarray(history["kind"])[first]
    if not stopped and (best == last).all():
        return ""
    cv = best[kinds == "cv"]
    hold = best[kinds == "holdout"]
    parts = []
    if len(hold):
        parts.append(f"epoch {int(hold[0])} on the holdout split")
    if len(cv):
        parts.append(
            f"a median of {int(np.median(cv))} (range {int(cv.min())} to {int(cv.max())}) over the {len(cv)} CV splits"
        )
    return (
        " Early stopping kept "
        + " and ".join(parts)
        + f" of at most {last}: the epoch with the lowest loss on validation "
        "rows held out of each split's training rows; the test rows chose nothing. Lines end where a split stopped."
    )


def _tuning_note(tuning: Rows) -> str:
    """The grid's size and the most chosen point."""
    points = np.unique(np.asarray(tuning["point"]).astype(np.int64))
    splits = np.unique(tuning["split_id"])
    chosen = np.asarray(tuning["chosen"], dtype=bool)
    labels, counts = np.unique(np.asarray(tuning["grid_point"])[chosen], return_counts=True)
    top = labels[np.argmax(counts)] if len(labels) else "?"
    return (
        f"{len(points)} grid points, chosen per split over {len(splits)} splits; most often <code>{esc(top)}</code> "
        f"({int(counts.max()) if len(counts) else 0} of {len(splits)})."
    )


def _evaluation(predictions: Rows | None, ctx: Context, figs: dict[str, Figure], notes: dict[str, str]) -> None:
    """ROC and PR curves (two classes) and the MLP's confusion matrices; a regression target's predicted against
    true values; a survival target's risk groups and risks (:func:`_survival`)."""
    if ctx.labels.get("kind") == "survival":
        _survival(predictions, ctx, figs, notes)
        return
    if predictions is None or not len(predictions):
        notes["rocpr"] = notes["confusion"] = "No predictions to plot."
        return
    if ctx.labels.get("kind") == "regression":
        figs["scatter"] = figures.predicted_vs_true(predictions, ctx.points * 5)
        notes["scatter"] = ""
        return
    if len(ctx.classes) == 2:
        figs["rocpr"] = figures.roc_pr_curves(predictions, ctx.positive, ctx.points)
        notes["rocpr"] = f"Positive class: '{esc(ctx.positive)}'."
    else:
        notes["rocpr"] = (
            f"ROC and precision-recall curves are drawn for two classes only; this run has {len(ctx.classes)} classes. "
            "See the macro-averaged ROC-AUC and PR-AUC in the summary."
        )
    if (predictions["model"] == "mlp").any():
        figs["confusion"] = figures.confusion_matrices(predictions, ctx.classes, "mlp")
        notes["confusion"] = ""
    reliability = figures.reliability_diagram(predictions, ctx.classes, ctx.positive)
    if reliability is not None:
        figs["calibration"] = reliability
    else:
        notes["calibration"] = "No CV predictions: no reliability diagram."


def _survival(predictions: Rows | None, ctx: Context, figs: dict[str, Figure], notes: dict[str, str]) -> None:
    """Kaplan-Meier curves of the MLP's risk groups with their log-rank test, and its risk histogram."""
    if predictions is None or not len(predictions):
        notes["km"] = "No predictions to plot."
        return
    event = str((ctx.labels.get("event") or {}).get("event") or ctx.labels.get("positive") or "event")
    censored = str((ctx.labels.get("event") or {}).get("censored") or "censored")
    classes = [str(c) for c in ctx.labels.get("classes") or []]
    if len(classes) == 2:
        censored, event = classes
    groups = figures.risk_groups(predictions)
    if groups is None or not groups.groups:
        notes["km"] = "No CV predictions of the MLP: no risk groups to draw."
    else:
        figs["km"] = figures.km_figure(groups, event)
        notes["km"] = risk_group_note(groups)
    histogram = figures.risk_histogram(predictions, event, censored)
    if histogram is not None:
        figs["risk"] = histogram
        notes["risk"] = ""


def risk_group_note(groups: figures.RiskGroups) -> str:
    """The groups' sizes and events, the log-rank test, and which predictions were pooled."""
    sizes = "; ".join(
        f"{name.capitalize()} risk: {len(g['time'])} samples, {int(g['event'].sum())} events"
        for name, g in groups.groups.items()
    )
    if math.isnan(groups.p):
        test = "No log-rank test: a group is empty or no event was observed."
    else:
        test = f"Log-rank test of high against low: χ² = {fmt(groups.chi2)}, p = {fmt_p(groups.p)}."
    repeats = (
        f" Only the first of the {groups.repeats} CV repeats is drawn and tested, so each sample counts once; pooling "
        "every repeat would count each sample once per repeat and make the p-value optimistic."
        if groups.repeats > 1
        else " Each sample counts once."
    )
    return (
        f"The MLP's test predictions of the {groups.folds} folds of the first CV repeat, pooled, each split's samples cut at "
        f"the median risk of its own training samples. {sizes}. {test}{repeats}"
    )


def calibration_note(panel: Panel) -> str:
    """The MLP's Brier score (mean over CV splits) and its calibration slope and intercept (each CV repeat's pooled
    out-of-fold predictions, :mod:`panelmlp.calibration`), with their 95% intervals, and repeats without a fit."""
    brier, slope = panel.row("mlp", "brier"), panel.row("mlp", "calibration_slope")
    intercept = panel.row("mlp", "calibration_intercept")
    text = (
        f"MLP: Brier score {fmt_ci(brier)} (mean over CV splits, 95% CI); calibration slope {fmt_ci(slope)} and "
        f"calibration intercept {fmt_ci(intercept)}, each fitted once per CV repeat on the repeat's pooled out-of-fold "
        "predictions (every sample predicted once) and averaged over repeats, with a 95% Wald interval. The per-split "
        "values in metrics.tsv are not averaged here: on small test folds their mean is biased upward."
    )
    n_fit = slope["n_splits"]
    if n_fit == n_fit and int(n_fit) == 0:
        text += (
            " The slope is undefined: every prediction equal, or the pooled predictions separate the classes completely "
            "(no finite fit)."
        )
    return text


def detail_block(
    panel: Panel,
    figs: Mapping[str, Figure],
    notes: Mapping[str, str],
    ctx: Context,
    open_: bool,
    verdict_up_front: bool,
) -> str:
    """The panel's ``<details>``: summary line, verdict box (or a link to it), figure slots with captions, and the figures' JSON."""
    auc = panel.auc
    where = f", {esc(panel.collection)}" if panel.collection else ""
    summary = (
        f'#{panel.rank} {esc(panel.name)} <span class="muted">({panel.n_genes} genes{where})</span> '
        f"MLP {panel.score.name} {fmt(auc['cv_mean'])} [{fmt(auc['ci_low'])}, {fmt(auc['ci_high'])}] {tag(panel.level)}"
    )
    if verdict_up_front:
        parts = [f'<p>Verdict: see <a href="#verdict-{panel.anchor}">section 1</a>.</p>']
    else:
        parts = [verdict_box(panel, ctx.labels, ctx.n_panels, ctx.random_panels)]
    for kind, title in TITLES.items():
        if kind not in figs and kind not in notes:
            continue
        text = notes.get(kind, "")
        if ctx.explain and kind in figs:
            text = (text + " " + ctx.guide[kind]).strip()
        slot = f'<div class="plotly-graph-div figure" data-figure="{kind}"></div>' if kind in figs else ""
        parts.append(f"<h4>{title}</h4>{slot}" + (caption(text) if text else ""))
    data_id = f"{panel.anchor}-figures"
    attrs = f'class="panel" id="{panel.anchor}" data-figures="{data_id}"' + (" open" if open_ else "")
    block = json_block(data_id, dict(figs)) if open_ else packed_block(data_id, dict(figs))
    return f"<details {attrs}><summary>{summary}</summary>{''.join(parts)}{block}</details>"


def guide(kind: str | None = None) -> str:
    """How to read each kind of panel figure of a target ``kind``, once for all panels."""
    items = "".join(f"<li><b>{TITLES[k]}.</b> {text}</li>" for k, text in guide_of(kind).items())
    return collapsed("How to read a panel's figures", f"<ul>{items}</ul>", open_=True)
