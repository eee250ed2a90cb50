"""The verdict: one headline over all panels, multiplicity warnings, and plain-language boxes per panel.

A panel shows signal only when :func:`compare.signal_level` says so: its
interval lies above 0.5 and its q-values over all panels stay under
:data:`compare.ALPHA`. With many panels chance alone lifts some intervals above
0.5; the headline counts only what survives, and says so plainly when nothing
does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..compare import ALPHA, beats_random, corrected_ci, multiplicity_warnings
from .inputs import Comparison, Facts, Panel, Rows
from .page import esc, fmt, fmt_p

HEADLINES = {
    "signal": "Evidence of signal: the MLP separates the classes better than chance, and this holds after correcting for the number of panels tested.",
    "unconfirmed": f"Unconfirmed signal: the ROC-AUC interval lies above 0.5, but a q-value over all panels (t-test or permutation test) is not below {ALPHA}, so chance across the panels tested could explain it.",
    "none": "No evidence of signal: the MLP does not separate the classes measurably better than chance.",
    "below": "No evidence of signal: the MLP scores below chance, which is not usable signal either.",
    "unknown": "No verdict: the ROC-AUC or its interval could not be computed (too few CV splits, or test sets lacking a class).",
}
"""The bold first line of a panel's verdict box, by level."""

REGRESSION_HEADLINES = {
    "signal": "Evidence of signal: the MLP predicts the target better than the training mean, and this holds after correcting for the number of panels tested.",
    "unconfirmed": f"Unconfirmed signal: the R² interval lies above 0, but a q-value over all panels (t-test or permutation test) is not below {ALPHA}, so chance across the panels tested could explain it.",
    "none": "No evidence of signal: the MLP does not predict the target measurably better than the training mean.",
    "below": "No evidence of signal: the MLP predicts worse than the training mean (R² below 0), which is not usable signal either.",
    "unknown": "No verdict: R² or its interval could not be computed (too few CV splits, or a constant target in a test set).",
}
"""The same for a regression target (main metric R², chance 0)."""

TAGS = {
    "signal": "signal",
    "unconfirmed": "unconfirmed",
    "none": "no evidence",
    "below": "no evidence",
    "unknown": "no verdict",
}
"""The short tag of each level, in tables and summaries."""

FEW_PANELS = 5
"""Up to this many panels, every panel gets its verdict box up front and its details open."""

TOP_BOXES = 3
"""With more panels, the best this many get a verdict box up front, besides those with (unconfirmed) signal."""

MAX_BOXES = 10
"""At most this many verdict boxes up front; the rest are in each panel's details."""


def tag(level: str) -> str:
    """The coloured tag of a verdict level."""
    return f'<span class="tag level-{level}">{TAGS[level]}</span>'


def paired_difference(metrics: Rows, model: str, other: str, metric: str) -> Comparison:
    """Mean and corrected 95% CI of ``model - other`` in ``metric``, paired by CV split."""
    if metric not in metrics:
        return Comparison()
    cv = metrics.where(kind="cv")
    a, b = cv.where(model=model), cv.where(model=other)
    _common, ia, ib = np.intersect1d(a["split_id"], b["split_id"], return_indices=True)
    if len(ia) == 0:
        return Comparison()
    diff = a[metric][ia].astype(np.float64) - b[metric][ib].astype(np.float64)
    ratio = float(np.mean(a["n_test"][ia] / a["n_train"][ia]))
    mean, _sd, low, high = corrected_ci(diff, ratio)
    return Comparison(mean, low, high)


def panel_facts(metrics: Rows, history: Rows | None) -> Facts:
    """The paired comparisons, holdout size and training device of one panel."""
    holdout = metrics.where(kind="holdout", model="mlp")["n_test"]
    device = "?"
    if history is not None and "device" in history and len(history):
        device = ", ".join(sorted(set(history["device"].tolist())))
    if "r2" in metrics:  # a regression target: the trivial baseline is the training mean, the linear one ridge
        return Facts(
            accuracy_vs_majority=paired_difference(metrics, "mlp", "mean", "rmse"),
            auc_vs_majority=paired_difference(metrics, "mlp", "mean", "r2"),
            auc_vs_logreg=paired_difference(metrics, "mlp", "ridge", "r2"),
            holdout_n=int(holdout[0]) if len(holdout) else 0,
            device=device,
        )
    return Facts(
        accuracy_vs_majority=paired_difference(metrics, "mlp", "majority", "accuracy"),
        auc_vs_majority=paired_difference(metrics, "mlp", "majority", "roc_auc"),
        auc_vs_logreg=paired_difference(metrics, "mlp", "logreg", "roc_auc"),
        auc_vs_sklearn=paired_difference(metrics, "mlp", "sklearn_mlp", "roc_auc"),
        holdout_n=int(holdout[0]) if len(holdout) else 0,
        device=device,
    )


def compare_word(c: Comparison) -> str:
    """``yes`` / ``no, worse`` / ``no clear difference`` from the CI of a difference."""
    if math.isnan(c.low) or math.isnan(c.high):
        return "n/a"
    if c.low > 0:
        return "yes"
    if c.high < 0:
        return "no, worse"
    return "no clear difference"


def majority_class(labels: Mapping) -> str:
    """The most common labelled class."""
    counts = labels.get("class_counts") or {}
    return max(counts, key=lambda c: counts[c]) if counts else "?"


def _auc_item(panel: Panel, n_panels: int) -> str:
    """The main-metric line (ROC-AUC, or R²): mean, interval and where it lies, and the t-test."""
    auc, score = panel.auc, panel.score
    chance = fmt(score.chance)
    low, high = float(auc["ci_low"]), float(auc["ci_high"])
    if math.isnan(low) or math.isnan(high):
        where = "cannot be judged"
    elif low <= score.chance <= high:
        where = f"<b>includes {chance}, so there is no evidence of signal</b>"
    else:
        where = f"lies entirely above {chance}" if low > score.chance else f"lies entirely below {chance}"
    q = f", q = {fmt_p(auc['t_q'])} over the {n_panels} panels" if n_panels > 1 else ""
    return (
        f"Mean cross-validated {score.name} <b>{fmt(auc['cv_mean'])}</b> (95% CI {fmt(low)} to {fmt(high)}, {int(auc['n_splits'])} CV splits). "
        f"{score.meaning}; the interval {where}. "
        f"Corrected t-test against {chance}: p = {fmt_p(auc['t_p'])}{q}."
    )


def _mean_item(panel: Panel) -> str:
    """A regression target's RMSE against the training-mean baseline."""
    word = {
        "yes": "larger errors than",
        "no, worse": "smaller errors than",
        "no clear difference": "errors not measurably different from",
    }.get(compare_word(panel.facts.accuracy_vs_majority), "compared with")
    return (
        f"Root mean squared error {fmt(panel.row('mlp', 'rmse')['cv_mean'])} against <b>{fmt(panel.row('mean', 'rmse')['cv_mean'])}</b> "
        f"for the baseline that predicts every sample the training mean: the MLP makes {word} that trivial rule. "
        f"Spearman's correlation of its predictions with the truth: {fmt(panel.row('mlp', 'spearman')['cv_mean'])}."
    )


def _accuracy_item(panel: Panel, labels: Mapping) -> str:
    """Accuracy against the majority baseline."""
    word = {
        "yes": "more accurate than",
        "no, worse": "less accurate than",
        "no clear difference": "not measurably more accurate than",
    }.get(compare_word(panel.facts.accuracy_vs_majority), "compared with")
    return (
        f"Accuracy {fmt(panel.row('mlp', 'accuracy')['cv_mean'])} against <b>{fmt(panel.row('majority', 'accuracy')['cv_mean'])}</b> "
        f"for the majority baseline, which always predicts the most common class ('{esc(majority_class(labels))}'): "
        f"the MLP is {word} that trivial rule. Its balanced accuracy (mean of the per-class recalls, 0.5 = guessing) "
        f"is {fmt(panel.row('mlp', 'balanced_accuracy')['cv_mean'])}."
    )


def _logreg_item(panel: Panel) -> str:
    """The main metric against the linear baseline on the same genes (logistic or ridge regression), paired by split."""
    score = panel.score
    lr, d = panel.row(score.baseline, score.metric), panel.facts.auc_vs_logreg
    word = {"yes": "the MLP is better", "no, worse": "the MLP is worse", "no clear difference": "no clear difference"}
    name = score.baseline_name
    return (
        f"{name[0].upper() + name[1:]} on the same genes: {score.name} {fmt(lr['cv_mean'])} (95% CI {fmt(lr['ci_low'])} to {fmt(lr['ci_high'])}). "
        f"Paired by split, MLP minus {name} is {fmt(d.mean)} (95% CI {fmt(d.low)} to {fmt(d.high)}): "
        f"{word.get(compare_word(d), 'not computable')}."
    )


def _sklearn_item(panel: Panel) -> str:
    """ROC-AUC of scikit-learn's MLPClassifier with the same architecture, when it was fitted."""
    sk = panel.row("sklearn_mlp", "roc_auc")
    d = panel.facts.auc_vs_sklearn
    word = {"yes": "ours is better", "no, worse": "ours is worse", "no clear difference": "no clear difference"}
    return (
        f"scikit-learn's MLPClassifier with the same architecture and training settings: ROC-AUC {fmt(sk['cv_mean'])} "
        f"(95% CI {fmt(sk['ci_low'])} to {fmt(sk['ci_high'])}). Paired by split, this MLP minus it is {fmt(d.mean)} "
        f"(95% CI {fmt(d.low)} to {fmt(d.high)}): {word.get(compare_word(d), 'not computable')}."
    )


def _holdout_item(panel: Panel) -> str:
    """The single holdout split, with the reminder that it is noisy."""
    if panel.score.kind == "regression":
        return (
            f"On the single holdout split ({panel.facts.holdout_n} test samples) the MLP's R² is {fmt(panel.auc['holdout'])} "
            f"and its RMSE {fmt(panel.row('mlp', 'rmse')['holdout'])} (training-mean baseline {fmt(panel.row('mean', 'rmse')['holdout'])}); "
            "one small test set is noisy, so the CV interval above is the better guide."
        )
    return (
        f"On the single holdout split ({panel.facts.holdout_n} test samples) the MLP's ROC-AUC is {fmt(panel.auc['holdout'])} "
        f"and its accuracy {fmt(panel.row('mlp', 'accuracy')['holdout'])} (majority baseline {fmt(panel.row('majority', 'accuracy')['holdout'])}); "
        "one small test set is noisy, so the CV interval above is the better guide."
    )


def _null_items(panel: Panel, random_panels: int) -> list[str]:
    """The permutation test and the random-gene-set comparison, or why they are absent."""
    auc, name = panel.auc, panel.score.name
    n_perm, n_random = int(auc["n_permutations"] or 0), int(auc["n_random"] or 0)
    if n_perm:
        perm = (
            f"Permutation test: p = <b>{fmt_p(auc['perm_p'])}</b> (q = {fmt_p(auc['perm_q'])}) from {n_perm} label-shuffled replicates "
            f"(the share of replicates whose mean CV {name} is at least the observed one; small p means the real labels do better than shuffled ones)."
        )
    else:
        perm = "No permutation test was run (config <code>evaluate.permutations: 0</code>)."
    if n_random:
        verdict = "it beats random genes" if beats_random(auc) == "yes" else "it does not beat random genes"
        rand = (
            f"Against {n_random} random gene sets of the same size ({panel.n_genes} genes): p = <b>{fmt_p(auc['random_p'])}</b> "
            f"(q = {fmt_p(auc['random_q'])}); its mean {name} is at the {fmt(auc['random_pct'], 0)}th percentile of theirs, so {verdict}."
        )
    elif random_panels:
        rand = f"No random gene sets of this panel's size ({panel.n_genes} genes) were drawn, so it is not compared with random genes."
    else:
        rand = "No random-gene-set comparison was run (config <code>evaluate.random_panels: 0</code>)."
    return [perm, rand]


def verdict_box(panel: Panel, labels: Mapping, n_panels: int, random_panels: int) -> str:
    """The plain-language verdict on one panel's MLP against chance, both baselines and the nulls."""
    second = _mean_item(panel) if panel.score.kind == "regression" else _accuracy_item(panel, labels)
    items = [_auc_item(panel, n_panels), second, _logreg_item(panel)]
    if panel.has_model("sklearn_mlp"):
        items.append(_sklearn_item(panel))
    if panel.facts.holdout_n:
        items.append(_holdout_item(panel))
    items += _null_items(panel, random_panels)
    body = "".join(f"<li>{item}</li>" for item in items)
    return (
        f'<div class="verdict level-{panel.level}" id="verdict-{panel.anchor}" data-panel="{esc(panel.label)}">'
        f"<h3>Panel {esc(panel.label)} {tag(panel.level)}</h3>"
        f"<p><b>{esc((REGRESSION_HEADLINES if panel.score.kind == 'regression' else HEADLINES)[panel.level])}</b></p>"
        f"<ul>{body}</ul></div>"
    )


def _names(panels: Sequence[Panel], most: int = 10) -> str:
    """Up to ``most`` panel names, then how many more."""
    names = ", ".join(esc(p.label) for p in panels[:most])
    return names + (f" and {len(panels) - most} more" if len(panels) > most else "")


def _count(k: int, n: int, noun: str = "panel") -> str:
    """'k of n panels tested shows/show'."""
    return f"{k} of {n} {noun}{'s' if n != 1 else ''} tested {'shows' if k == 1 else 'show'}"


def headline(panels: Sequence[Panel], labels: Mapping, warned: bool = False) -> tuple[str, str]:
    """The sentences that open the report (how many panels were tested, how many show signal), and their CSS level.

    ``warned``: multiplicity warnings apply, so a q-value may be unable to reach
    :data:`compare.ALPHA` whatever the data.
    """
    target = esc(labels.get("target", "the target"))
    if labels.get("kind") == "regression":
        classes = "a number"
        name, chance, better = "R²", "0", "better than the training mean"
    else:
        classes = " vs ".join(f"'{esc(c)}'" for c in labels.get("classes", []))
        name, chance, better = "ROC-AUC", "0.5", "better than chance"
    n = len(panels)
    signal = [p for p in panels if p.level == "signal"]
    unconfirmed = [p for p in panels if p.level == "unconfirmed"]
    if signal:
        text = (
            f"{_count(len(signal), n)} evidence of signal for {target} ({classes}) at q &lt; {ALPHA}: {_names(signal)}. "
            "Check the other panels and the baselines below before drawing conclusions."
        )
        level = "signal"
    elif unconfirmed:
        text = (
            f"No confirmed signal: {_count(0, n)} evidence of signal for {target} ({classes}) at q &lt; {ALPHA}. "
            f"{len(unconfirmed)} ha{'s' if len(unconfirmed) == 1 else 've'} an {name} interval above {chance} whose q-value "
            f"does not reach {ALPHA} ({_names(unconfirmed)}): with many panels, chance alone lifts some intervals above {chance}"
            + ("; here too few null replicates also keep the q-values up (see the warning below)." if warned else ".")
        )
        level = "unconfirmed"
    else:
        text = (
            f"Null result: no panel shows evidence that its genes predict {target} ({classes}) {better} "
            f"({_count(0, n)} signal). With {labels.get('labelled', '?')} labelled samples the intervals are wide, "
            "so a small effect cannot be ruled out either; the data simply give no evidence for one."
        )
        level = "none"
    return text + _random_sentence(panels), level


def _random_sentence(panels: Sequence[Panel]) -> str:
    """How many panels beat random gene sets of their size, when that comparison ran."""
    compared = [p for p in panels if beats_random(p.auc) != "not run"]
    if not compared:
        return ""
    beat = [p for p in compared if beats_random(p.auc) == "yes"]
    names = f": {_names(beat)}" if beat else ""
    return (
        f" Against random gene sets of their own size, {len(beat)} of {len(compared)} panel{'s' if len(compared) != 1 else ''} "
        f"compared do{'es' if len(beat) == 1 else ''} better (random-panel q &lt; {ALPHA}){names}."
    )


def warnings_html(n_panels: int, permutations: int, random_panels: int) -> str:
    """The multiplicity warnings of :func:`compare.multiplicity_warnings`, as a highlighted list."""
    found = multiplicity_warnings(n_panels, permutations, random_panels)
    if not found:
        return ""
    items = "".join(f"<li>{esc(w)}.</li>" for w in found)
    return f'<div class="warning"><b>Too few null replicates for this many panels.</b><ul>{items}</ul></div>'


def boxes_shown(panels: Sequence[Panel]) -> list[Panel]:
    """The panels whose verdict box opens the report: all of few, else (unconfirmed) signal and the best few."""
    if len(panels) <= FEW_PANELS:
        return list(panels)
    chosen = {p.key for p in panels[:TOP_BOXES]}
    chosen |= {p.key for p in panels if p.level in ("signal", "unconfirmed")}
    return [p for p in panels if p.key in chosen][:MAX_BOXES]


def verdict_section_body(
    panels: Sequence[Panel], labels: Mapping, ranked_table: str, permutations: int, random_panels: int
) -> str:
    """The verdict section: headline, warnings, the ranked table of all panels, and the selected verdict boxes."""
    warnings = warnings_html(len(panels), permutations, random_panels)
    text, level = headline(panels, labels, warned=bool(warnings))
    shown = boxes_shown(panels)
    boxes = "".join(verdict_box(p, labels, len(panels), random_panels) for p in shown)
    note = ""
    if len(shown) < len(panels):
        note = (
            f'<p class="muted">Verdicts of {len(shown)} of the {len(panels)} panels are shown here (those with signal or unconfirmed '
            f"signal and the best {TOP_BOXES}); every panel's verdict is in its details (section 7).</p>"
        )
    return (
        f'<div class="headline level-{level}">{text}</div>'
        + warnings
        + ranked_table
        + (f"<h3>Verdict per panel</h3>{note}{boxes}" if boxes else "")
    )
