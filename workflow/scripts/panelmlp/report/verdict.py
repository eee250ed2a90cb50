"""The verdict: the screen as a whole first, multiplicity warnings, and plain-language boxes per panel.

Two questions, two calls (:func:`compare.signal_level`): a panel is
*predictive* when its interval lies above chance and its self-contained
q-values over all panels stay under :data:`compare.ALPHA`, and *set-specific*
when it also beats random gene sets of its size (random-panel q < ALPHA). The
headline leads with how many panels are predictive and what share of random
gene sets would have been called predictive in this screen and how the
typical random set scores (verdict.json), then names the set-specific ones. In
real expression a target often follows a broad program that many genes share
(Venet et al. 2011): then many sets predict and the random sets score above
chance too, and the verdict says the signal is consistent with such a program
instead of calling a predictive set a signal of that set. A test that does not
reject is reported as such ("not shown to do better"), never as evidence that
a panel does no better than random genes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..compare import (
    ALPHA,
    at_floor,
    beats_random,
    broad_program,
    corrected_ci,
    multiplicity_warnings,
    random_p_text,
)
from ..targets import kind_of_metrics
from .inputs import Comparison, Facts, Panel, Rows
from .page import esc, fmt, fmt_p
from .score import SCORES

EXTERNAL = (
    "Only external validation on an independent cohort tests for a chance association that this whole cohort shares."
)
"""Said whenever the verdict names a set: no test within one cohort can tell a cohort-wide chance association."""

HEADLINES = {
    "set-specific": "Set-specific: the MLP on these genes separates the classes better than chance (q < 0.05 over the panels tested), "
    "and better than random gene sets of the same size (random-panel q < 0.05). " + EXTERNAL,
    "predictive": "Predictive, not set-specific: these genes separate the classes better than chance (q < 0.05 over the panels tested), "
    "but the set is not shown to do better than random genes of the same number (random-panel q >= 0.05, or that comparison "
    "did not run), so this screen does not single out this set: a broad program that many genes share may carry it. "
    + EXTERNAL,
    "unconfirmed": f"Unconfirmed: the ROC-AUC interval lies above 0.5, but a q-value over all panels (t-test or permutation test) is not below {ALPHA}, so chance across the panels tested could explain it.",
    "none": "No evidence of signal: the MLP does not separate the classes measurably better than chance.",
    "below": "No evidence of signal: the MLP scores below chance, which is not usable signal either.",
    "unknown": "No verdict: the ROC-AUC or its interval could not be computed (too few CV splits, or test sets lacking a class).",
}
"""The bold first line of a panel's verdict box, by level."""

REGRESSION_HEADLINES = {
    "set-specific": "Set-specific: the MLP on these genes predicts the target better than the training mean (q < 0.05 over the panels tested), "
    "and better than random gene sets of the same size (random-panel q < 0.05). " + EXTERNAL,
    "predictive": "Predictive, not set-specific: these genes predict the target better than the training mean (q < 0.05 over the panels tested), "
    "but the set is not shown to do better than random genes of the same number (random-panel q >= 0.05, or that comparison "
    "did not run), so this screen does not single out this set: a broad program that many genes share may carry it. "
    + EXTERNAL,
    "unconfirmed": f"Unconfirmed: the R² interval lies above 0, but a q-value over all panels (t-test or permutation test) is not below {ALPHA}, so chance across the panels tested could explain it.",
    "none": "No evidence of signal: the MLP does not predict the target measurably better than the training mean.",
    "below": "No evidence of signal: the MLP predicts worse than the training mean (R² below 0), which is not usable signal either.",
    "unknown": "No verdict: R² or its interval could not be computed (too few CV splits, or a constant target in a test set).",
}
"""The same for a regression target (main metric R², chance 0)."""

SURVIVAL_HEADLINES = {
    "set-specific": "Set-specific: the MLP on these genes orders the event times better than chance (q < 0.05 over the panels tested), "
    "and better than random gene sets of the same size (random-panel q < 0.05). " + EXTERNAL,
    "predictive": "Predictive, not set-specific: these genes order the event times better than chance (q < 0.05 over the panels tested), "
    "but the set is not shown to do better than random genes of the same number (random-panel q >= 0.05, or that comparison "
    "did not run), so this screen does not single out this set: a broad program that many genes share may carry it. "
    + EXTERNAL,
    "unconfirmed": f"Unconfirmed: the C-index interval lies above 0.5, but a q-value over all panels (t-test or permutation test) is not below {ALPHA}, so chance across the panels tested could explain it.",
    "none": "No evidence of signal: the MLP's risks do not order the event times measurably better than chance.",
    "below": "No evidence of signal: the MLP's risks order the event times worse than chance (C-index below 0.5), which is not usable signal either.",
    "unknown": "No verdict: the C-index or its interval could not be computed (too few CV splits, or test sets without a comparable pair).",
}
"""The same for a survival target (main metric Harrell's C-index, chance 0.5)."""

HEADLINES_OF = {"classification": HEADLINES, "regression": REGRESSION_HEADLINES, "survival": SURVIVAL_HEADLINES}
"""The headlines of each target kind."""

TAGS = {
    "set-specific": "set-specific",
    "predictive": "predictive",
    "unconfirmed": "unconfirmed",
    "none": "no evidence",
    "below": "no evidence",
    "unknown": "no verdict",
}
"""The short tag of each level, in tables and summaries (the first two are summary.tsv's ``call``)."""

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
    if "c_index" in metrics:  # survival: the trivial baseline is a constant risk, the linear one ridge Cox regression
        return Facts(
            accuracy_vs_majority=paired_difference(metrics, "mlp", "constant", "ibs"),
            auc_vs_majority=paired_difference(metrics, "mlp", "constant", "c_index"),
            auc_vs_logreg=paired_difference(metrics, "mlp", "cox_ridge", "c_index"),
            holdout_n=int(holdout[0]) if len(holdout) else 0,
            device=device,
        )
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


def _brier_item(panel: Panel) -> str:
    """A survival target's integrated Brier score against the constant-risk baseline, and its time-dependent AUC."""
    word = {
        "yes": "larger errors than",
        "no, worse": "smaller errors than",
        "no clear difference": "errors not measurably different from",
    }.get(compare_word(panel.facts.accuracy_vs_majority), "compared with")
    return (
        f"Integrated Brier score {fmt(panel.row('mlp', 'ibs')['cv_mean'])} against <b>{fmt(panel.row('constant', 'ibs')['cv_mean'])}</b> "
        "for the baseline that gives every sample the same risk (its predicted survival is the training samples' Kaplan-Meier "
        f"curve): the MLP's survival curves make {word} that trivial rule (lower is better). "
        f"Its time-dependent AUC, averaged over the horizons, is {fmt(panel.row('mlp', 'td_auc')['cv_mean'])} (0.5 = chance), "
        f"and Uno's C {fmt(panel.row('mlp', 'uno_c')['cv_mean'])}."
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
    if panel.score.kind == "survival":
        return (
            f"On the single holdout split ({panel.facts.holdout_n} test samples) the MLP's C-index is {fmt(panel.auc['holdout'])} "
            f"and its integrated Brier score {fmt(panel.row('mlp', 'ibs')['holdout'])} (constant risk {fmt(panel.row('constant', 'ibs')['holdout'])}); "
            "one small test set is noisy, so the CV interval above is the better guide."
        )
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


def _null_items(panel: Panel, random_panels: int, n_compared: int | None = None) -> list[str]:
    """The permutation test and the random-gene-set comparison, or why they are absent.

    ``n_compared``: the random-panel family (panels with a random-panel p), when known.
    """
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
        over = f" over the {n_compared} panels compared" if n_compared else " over the panels compared"
        verdict = (
            f"it does better than random genes of its size (random-panel q &lt; {ALPHA}{over})"
            if beats_random(auc) == "yes"
            else f"it is not shown to do better than random genes of its size (random-panel q &ge; {ALPHA}{over}; "
            "that is no evidence that it does not)"
        )
        size = auc.get("random_size")
        size = int(size) if size is not None and not math.isnan(float(size)) else panel.n_genes
        where = f"{size} genes" + (f", the size bin of its {panel.n_genes}" if size != panel.n_genes else "")
        method = auc.get("random_p_method")
        if at_floor(auc["random_p"], method):
            shown = f"p <b>{esc(random_p_text(auc['random_p'], method))}</b>, far beyond every random set"
            how = "a t tail fitted to the random sets' scores, reported no smaller than this floor"
        else:
            shown = f"p = <b>{fmt_p(auc['random_p'])}</b>"
            how = (
                "a t tail fitted to the random sets' scores on the logit scale, as heavy as their own top, "
                "since it beats every one of them"
                if method == "fitted"
                else "the share of random sets scoring at least as well, add-one estimate"
            )
        rand = (
            f"Against {n_random} random gene sets of {where}: {shown} ({how}; "
            f"q = {fmt_p(auc['random_q'])}); its mean {name} is at the {fmt(auc['random_pct'], 0)}th percentile of theirs, so {verdict}."
        )
    elif random_panels:
        rand = f"No random gene sets of this panel's size ({panel.n_genes} genes) were drawn, so it is not compared with random genes."
    else:
        rand = "No random-gene-set comparison was run (config <code>evaluate.random_panels: 0</code>)."
    return [perm, rand]


def verdict_box(panel: Panel, labels: Mapping, n_panels: int, random_panels: int, n_compared: int | None = None) -> str:
    """The plain-language verdict on one panel's MLP against chance, both baselines and the nulls."""
    kind = panel.score.kind
    second = (
        _mean_item(panel)
        if kind == "regression"
        else _brier_item(panel)
        if kind == "survival"
        else _accuracy_item(panel, labels)
    )
    items = [_auc_item(panel, n_panels), second, _logreg_item(panel)]
    if panel.has_model("sklearn_mlp"):
        items.append(_sklearn_item(panel))
    if panel.facts.holdout_n:
        items.append(_holdout_item(panel))
    items += _null_items(panel, random_panels, n_compared)
    body = "".join(f"<li>{item}</li>" for item in items)
    return (
        f'<div class="verdict level-{panel.level}" id="verdict-{panel.anchor}" data-panel="{esc(panel.label)}">'
        f"<h3>Panel {esc(panel.label)} {tag(panel.level)}</h3>"
        f"<p><b>{esc(HEADLINES_OF.get(kind, HEADLINES)[panel.level])}</b></p>"
        f"<ul>{body}</ul></div>"
    )


def _names(panels: Sequence[Panel], most: int = 10) -> str:
    """Up to ``most`` panel names, then how many more."""
    names = ", ".join(esc(p.label) for p in panels[:most])
    return names + (f" and {len(panels) - most} more" if len(panels) > most else "")


def _count(k: int, n: int, noun: str = "panel") -> str:
    """'k of n panels tested shows/show'."""
    return f"{k} of {n} {noun}{'s' if n != 1 else ''} tested {'shows' if k == 1 else 'show'}"


def headline(
    panels: Sequence[Panel], labels: Mapping, warned: bool = False, screen: Mapping | None = None
) -> tuple[str, str]:
    """The sentences that open the report, leading with the screen as a whole, and their CSS level.

    First how many panels are predictive (the self-contained test), then how
    random gene sets of the same sizes score and what share of them would
    have been called predictive in this screen (``screen``, from
    verdict.json; a broad program is named from how they score,
    :func:`compare.broad_program`), then which panels, if any, are
    set-specific (better than random genes of their size too). A merely
    predictive panel is never called a signal of that set, and whenever a set is
    named the text says that only external validation tests for a chance
    association the whole cohort shares. ``warned``: multiplicity warnings
    apply, so a q-value may be unable to reach :data:`compare.ALPHA` whatever the data.
    """
    target = esc(labels.get("target", "the target"))
    if labels.get("kind") == "regression":
        classes = "a number"
        name, chance, better = "R²", "0", "better than the training mean"
    elif labels.get("kind") == "survival":
        event = labels.get("event") or {}
        classes = f"time to '{esc(event.get('event') or labels.get('positive') or 'event')}', censored"
        classes += f" '{esc(event['censored'])}'" if event.get("censored") else ""
        name, chance, better = "C-index", "0.5", "better than chance"
    else:
        classes = " vs ".join(f"'{esc(c)}'" for c in labels.get("classes", []))
        name, chance, better = "ROC-AUC", "0.5", "better than chance"
    n = len(panels)
    specific = [p for p in panels if p.level == "set-specific"]
    predictive = [p for p in panels if p.level in ("set-specific", "predictive")]
    unconfirmed = [p for p in panels if p.level == "unconfirmed"]
    compared = [p for p in panels if beats_random(p.auc) != "not run"]
    permutations = any(int(p.auc["n_permutations"] or 0) for p in panels)
    tests = "t-test and permutation test" if permutations else "t-test"
    parts = [
        f"Screen of {n} panel{'s' if n != 1 else ''} for {target} ({classes}): "
        f"<b>{len(predictive)} {'is' if len(predictive) == 1 else 'are'} predictive</b> (their genes predict it {better}: "
        f"{name} interval above {chance}, {tests} q &lt; {ALPHA} over the panels tested)"
        + (f": {_names(predictive)}." if predictive else ".")
    ]
    if compared:
        parts.append(_share_sentence(screen))
        if specific:
            parts.append(
                f"<b>{len(specific)} {'is' if len(specific) == 1 else 'are'} set-specific</b>, predictive and better than "
                f"random gene sets of {'its' if len(specific) == 1 else 'their'} size (random-panel q &lt; {ALPHA}): {_names(specific)}."
            )
        else:
            parts.append(
                f"<b>None is set-specific</b>: no panel is shown to do better than random gene sets of its size "
                f"(random-panel q &ge; {ALPHA} for all {len(compared)} compared; that is no evidence that none does)."
            )
    else:
        parts.append(
            "No random gene sets were trained (config <code>evaluate.random_panels: 0</code>), so whether a panel does better "
            "than random genes of its size is unknown and no panel can be called set-specific."
        )
    if specific:
        broad = (
            " Random gene sets of these sizes score above chance too, which is consistent with a broad program that "
            "many genes share (Venet et al. 2011)."
            if _broad(screen)
            else ""
        )
        parts.append(
            "The other panels are not shown to do better than random genes of their size, which is no evidence that "
            f"they do not.{broad} " + EXTERNAL
        )
        level = "set-specific"
    elif predictive:
        if compared:
            broad = (
                ": random gene sets of these sizes score above chance too, which is consistent with a broad program "
                "that many genes share (Venet et al. 2011)"
                if _broad(screen)
                else ""
            )
            parts.append(
                f"The signal is not shown to be specific to any set{broad}. A predictive panel shows that its genes predict "
                "the target, not that this set is special. " + EXTERNAL
            )
        else:
            parts.append(
                "A predictive panel shows that its genes predict the target, not that this set is special. " + EXTERNAL
            )
        level = "predictive"
    elif unconfirmed:
        parts.append(
            f"{len(unconfirmed)} ha{'s' if len(unconfirmed) == 1 else 've'} an {name} interval above {chance} whose q-value "
            f"does not reach {ALPHA} ({_names(unconfirmed)}): with many panels, chance alone lifts some intervals above {chance}"
            + ("; here too few null replicates also keep the q-values up (see the warning below). " if warned else ". ")
            + EXTERNAL
        )
        level = "unconfirmed"
    else:
        parts.append(
            f"Null result: no panel shows evidence that its genes predict {target} {better}. "
            f"With {labels.get('labelled', '?')} labelled samples the intervals are wide, "
            "so a small effect cannot be ruled out either; the data simply give no evidence for one."
        )
        level = "none"
    return " ".join(parts), level


def _overall(screen: Mapping | None, key: str) -> float | None:
    """A screen-wide number of verdict.json (weighted by the panels each pool serves); None if unknown."""
    if not screen:
        return None
    value = screen.get(key)
    return None if value is None or math.isnan(float(value)) else float(value)


def _broad(screen: Mapping | None) -> bool:
    """Whether random gene sets score broadly above chance (``compare.broad_program`` of the screen-wide median and share)."""
    median = _overall(screen, "random_median_score_overall")
    above = _overall(screen, "random_share_above_chance_overall")
    if median is None and above is None:
        return False
    metric = str((screen or {}).get("metric") or "roc_auc")
    return broad_program(math.nan if median is None else median, math.nan if above is None else above, metric)


def _share_sentence(screen: Mapping | None, most: int = 8) -> str:
    """How random gene sets of the panels' size bins score, and how many would have been called predictive here.

    The typical random set's score (median, share above chance) says how
    broadly random genes carry the signal; the share that would have been
    called predictive, one set at a time under the panels' rule, also depends
    on that per-set test's power, so it stands next to n_predictive / m.
    """
    share = _overall(screen, "random_predictive_share_overall")
    if share is None:
        return "How random gene sets of these sizes score is not known here (results/metrics/verdict.json is missing)."
    metric = str(screen.get("metric") or "roc_auc")
    kind = kind_of_metrics([metric])
    name, chance = SCORES[kind.name].name, kind.chance
    pools = [p for p in screen.get("random_pools", []) if p.get("panels")]
    per = ", ".join(
        f"{p['size']} genes{'' if p['universe'] == 'cohort' else ' of ' + esc(p['universe'])}: "
        f"{p['n_predictive']} of {p['n_random']}"
        for p in pools[:most]
    )
    more = f" and {len(pools) - most} more bins" if len(pools) > most else ""
    median = _overall(screen, "random_median_score_overall")
    above = _overall(screen, "random_share_above_chance_overall")
    called = (
        f"<b>{share:.0%}</b> of them would have been called predictive in this screen ({per}{more}), "
        f"against {screen.get('n_predictive', '?')} of {screen.get('n_panels', '?')} panels."
    )
    if median is None or above is None:
        return f"Random gene sets of the same sizes, put through the same test one at a time: {called}"
    return (
        f"The median random gene set of the same sizes scores {name} <b>{median:.3g}</b>, and <b>{above:.0%}</b> of them "
        f"score above {chance:g}; put through the same test one at a time, {called}"
    )


def read_screen(inputs: Mapping) -> dict | None:
    """verdict.json of the compare step (the screen as a whole), when the inputs name it."""
    path = inputs.get("verdict")
    if not path or not Path(str(path)).is_file():
        return None
    return json.loads(Path(str(path)).read_text(encoding="utf-8"))


def plan_note(screen: Mapping | None) -> str:
    """Which N of random gene sets per size bin was used, how it was chosen, and whether the budget bound it."""
    plan = (screen or {}).get("random_plan") or {}
    text = plan.get("describe")
    if not text or not plan.get("n"):
        return ""
    return f'<p class="muted">Random panels: {esc(text)}.</p>'


def warnings_html(n_panels: int, permutations: int, random_panels: int, random_family: int | None = None) -> str:
    """The multiplicity warnings of :func:`compare.multiplicity_warnings`, as a highlighted list."""
    found = multiplicity_warnings(n_panels, permutations, random_panels, random_family)
    if not found:
        return ""
    items = "".join(f"<li>{esc(w)}.</li>" for w in found)
    return f'<div class="warning"><b>Too few null replicates for this many panels.</b><ul>{items}</ul></div>'


def boxes_shown(panels: Sequence[Panel]) -> list[Panel]:
    """The panels whose verdict box opens the report: all of few, else set-specific, predictive, unconfirmed and the best few."""
    if len(panels) <= FEW_PANELS:
        return list(panels)
    chosen = {p.key for p in panels[:TOP_BOXES]}
    chosen |= {p.key for p in panels if p.level in ("set-specific", "predictive", "unconfirmed")}
    return [p for p in panels if p.key in chosen][:MAX_BOXES]


def verdict_section_body(
    panels: Sequence[Panel],
    labels: Mapping,
    ranked_table: str,
    permutations: int,
    random_panels: int,
    screen: Mapping | None = None,
    detailed: int | None = None,
) -> str:
    """The verdict section: headline (the screen first), warnings, the ranked table, and the selected verdict boxes.

    ``detailed``: how many panels have details when a large screen details only some (None: all do).
    """
    family = sum(1 for p in panels if beats_random(p.auc) != "not run")
    warnings = warnings_html(len(panels), permutations, random_panels, family)
    text, level = headline(panels, labels, warned=bool(warnings), screen=screen)
    shown = boxes_shown(panels)
    boxes = "".join(verdict_box(p, labels, len(panels), random_panels, family) for p in shown)
    note = ""
    if detailed is not None:
        note = (
            f'<p class="muted">Verdicts of {len(shown)} of the {len(panels)} panels are shown here (set-specific, predictive '
            f"and unconfirmed panels and the best {TOP_BOXES}); {detailed} panels have their verdict and figures in section 8, "
            "and the call column of the table above gives every panel's.</p>"
        )
    elif len(shown) < len(panels):
        note = (
            f'<p class="muted">Verdicts of {len(shown)} of the {len(panels)} panels are shown here (set-specific, predictive '
            f"and unconfirmed panels and the best {TOP_BOXES}); every panel's verdict is in its details (section 8).</p>"
        )
    return (
        f'<div class="headline level-{level}">{text}</div>'
        + plan_note(screen)
        + warnings
        + ranked_table
        + (f"<h3>Verdict per panel</h3>{note}{boxes}" if boxes else "")
    )
