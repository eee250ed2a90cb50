"""The workflow's single, self-contained HTML report.

:func:`build_report` reads the outputs of every step (row accounting, labels,
each panel's scaled table, training history, metrics, predictions and
permutations, and the cross-panel summary) and writes one HTML file with
plotly.js embedded once, so it opens offline. Figures come from
:mod:`panelmlp.plots`. Only the data stack and plotly are imported, never
torch.

The output is deterministic: figure ids are derived from section and panel
names, and no time stamp is written.
"""

from __future__ import annotations

import html
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.offline

from . import __version__, plots
from .compare import corrected_ci
from .scaling import read_scaled
from .versions import library_versions

log = logging.getLogger("panelmlp")

SECTIONS = (
    ("verdict", "1. Verdict"),
    ("accounting", "2. Row accounting"),
    ("balance", "3. Class balance"),
    ("pairplots", "4. Gene pair plots"),
    ("training", "5. Training curves"),
    ("evaluation", "6. ROC, precision-recall and confusion matrices"),
    ("comparison", "7. Panels against baselines"),
    ("permutation", "8. Permutation test"),
    ("provenance", "9. Configuration and versions"),
)
"""Section anchors and headings, in report order."""

KEY_METRICS = ("roc_auc", "balanced_accuracy", "accuracy", "f1", "mcc", "pr_auc")
"""Metrics of the panel comparison chart, in order."""

DEFAULT_PAIRPLOT_GENES = 5

CSS = """
:root { --ink: #222; --muted: #666; --line: #ddd; --accent: #1f5fa8; --bad: #b2182b; --good: #1a7837; --warn: #b35806; }
* { box-sizing: border-box; }
body { font-family: Helvetica, Arial, sans-serif; color: var(--ink); margin: 0; line-height: 1.45; background: #fafafa; }
main { max-width: 1200px; margin: 0 auto; padding: 24px 32px 64px; background: white; }
h1 { margin: 0 0 4px; font-size: 28px; }
h2 { margin-top: 40px; padding-top: 12px; border-top: 2px solid var(--line); font-size: 22px; }
h3 { margin-top: 28px; font-size: 18px; color: var(--accent); }
p.sub, p.caption, .muted { color: var(--muted); }
p.caption { font-size: 14px; margin: 4px 0 20px; max-width: 900px; }
nav.toc { background: #f3f6fa; border: 1px solid var(--line); padding: 8px 20px; margin: 16px 0; font-size: 14px; }
nav.toc ol { margin: 6px 0; padding-left: 20px; columns: 2; column-gap: 40px; }
nav.toc a { color: var(--accent); text-decoration: none; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 13px; }
th, td { border-bottom: 1px solid var(--line); padding: 4px 10px; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.key td { background: #eef4fb; font-weight: bold; }
details { margin: 12px 0; } details summary { cursor: pointer; color: var(--accent); font-weight: bold; }
.headline { font-size: 18px; padding: 12px 16px; border-left: 6px solid var(--muted); background: #f6f6f6; margin: 12px 0; }
.verdict { border-left: 6px solid var(--muted); padding: 4px 16px; margin: 14px 0; background: #fcfcfc; }
.verdict h3 { margin: 6px 0; color: var(--ink); }
.verdict ul { margin: 4px 0 8px; padding-left: 20px; }
.level-signal { border-color: var(--good); } .level-unconfirmed { border-color: var(--warn); }
.level-none, .level-below { border-color: var(--bad); } .level-unknown { border-color: var(--muted); }
.tag { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px; font-weight: bold; color: white; background: var(--muted); }
.tag.level-signal { background: var(--good); } .tag.level-unconfirmed { background: var(--warn); }
.tag.level-none, .tag.level-below { background: var(--bad); }
.note { background: #fff8e6; border: 1px solid #f0d58c; padding: 8px 12px; margin: 8px 0; font-size: 14px; }
pre { background: #f6f6f6; border: 1px solid var(--line); padding: 12px; font-size: 12px; overflow-x: auto; }
.figure { margin: 4px 0; }
code { background: #f2f2f2; padding: 0 3px; }
"""


@dataclass
class PanelData:
    """Everything the report shows of one panel."""

    name: str
    scaled: pd.DataFrame
    meta: dict
    history: pd.DataFrame
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    permutations: pd.DataFrame

    @property
    def genes(self) -> list[str]:
        """The panel's genes, in panel order."""
        return list(self.meta.get("genes", []))

    @property
    def classes(self) -> list[str]:
        """Class names in code order."""
        return [str(c) for c in self.meta.get("classes", [])]


@dataclass
class Verdict:
    """The plain-language conclusion about one panel's MLP."""

    panel: str
    level: str
    """``signal``, ``unconfirmed``, ``none``, ``below`` (CI under 0.5) or ``unknown``."""
    headline: str
    details: list[str] = field(default_factory=list)
    beats_majority: str = "n/a"
    beats_logreg: str = "n/a"


@dataclass
class Figures:
    """Turns figures into HTML fragments with stable div ids (plotly.js is embedded once, elsewhere)."""

    used: set[str] = field(default_factory=set)

    def html(self, fig: go.Figure, key: str) -> str:
        """The figure's div and Plotly.newPlot call; ``key`` makes its id."""
        div_id = "fig-" + "".join(ch if ch.isalnum() else "-" for ch in key)
        base, n = div_id, 1
        while div_id in self.used:
            n += 1
            div_id = f"{base}-{n}"
        self.used.add(div_id)
        body = fig.to_html(
            full_html=False, include_plotlyjs=False, div_id=div_id, config={"displaylogo": False, "responsive": True}
        )
        return f'<div class="figure">{body}</div>'


# ---------------------------------------------------------------- formatting


def fmt(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NaN and None as an en dash."""
    if value is None:
        return "–"
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return html.escape(str(value))
    if math.isnan(number):
        return "–"
    text = f"{number:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_p(value: object) -> str:
    """A p-value with three significant digits; NaN as an en dash."""
    number = float(value) if value is not None else math.nan  # type: ignore[arg-type]
    return "–" if math.isnan(number) else f"{number:.3g}"


def esc(value: object) -> str:
    """HTML-escaped text of any value."""
    return html.escape(str(value))


def caption(text: str) -> str:
    """A caption paragraph (``text`` is trusted HTML)."""
    return f'<p class="caption">{text}</p>'


def html_table(frame: pd.DataFrame, numeric: Sequence[str] = (), key_rows: Sequence[bool] | None = None) -> str:
    """A plain HTML table of ``frame`` (cells escaped); ``numeric`` columns right-aligned."""
    head = "".join(f'<th class="num">{esc(c)}</th>' if c in numeric else f"<th>{esc(c)}</th>" for c in frame.columns)
    rows = []
    for i, (_, row) in enumerate(frame.iterrows()):
        cells = "".join(
            f'<td class="num">{esc(row[c])}</td>' if c in numeric else f"<td>{esc(row[c])}</td>" for c in frame.columns
        )
        cls = ' class="key"' if key_rows is not None and key_rows[i] else ""
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def section(anchor: str, body: str) -> str:
    """A report section with its numbered heading from :data:`SECTIONS`."""
    title = dict(SECTIONS)[anchor]
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>\n{body}\n</section>'


def panel_anchor(prefix: str, panel: str) -> str:
    """Anchor of a panel's subsection."""
    return f"{prefix}-" + "".join(ch if ch.isalnum() else "-" for ch in panel)


# ---------------------------------------------------------------- inputs


def _as_list(value: str | Sequence[str]) -> list[str]:
    """A path or a list of paths as a list."""
    return [value] if isinstance(value, str) else [str(v) for v in value]


def _numeric(frame: pd.DataFrame, skip: Sequence[str]) -> pd.DataFrame:
    """Columns other than ``skip`` as floats (an empty parquet stores them as nulls)."""
    frame = frame.copy()
    for column in frame.columns:
        if column not in skip:
            frame[column] = pd.to_numeric(frame[column], errors="coerce")
    return frame


def load_panel(name: str, scaled: str, history: str, metrics: str, predictions: str, permutations: str) -> PanelData:
    """Read one panel's outputs."""
    table, meta = read_scaled(scaled)
    return PanelData(
        name=name,
        scaled=table,
        meta=meta,
        history=pd.read_parquet(history),
        metrics=read_table(metrics),
        predictions=pd.read_parquet(predictions),
        permutations=_numeric(pd.read_parquet(permutations), skip=("split_id",)),
    )


def load_panels(inputs: Mapping[str, str | Sequence[str]], panels: Sequence[str]) -> list[PanelData]:
    """Every panel's outputs, in ``panels`` order."""
    keys = ("scaled", "history", "metrics", "predictions", "permutations")
    lists = {k: _as_list(inputs[k]) for k in keys}
    for k, paths in lists.items():
        if len(paths) != len(panels):
            raise ValueError(f"report input {k!r} has {len(paths)} paths for {len(panels)} panels")
    return [load_panel(p, *(lists[k][i] for k in keys)) for i, p in enumerate(panels)]


TEXT_COLUMNS = ("panel", "model", "metric", "split_id", "kind")
"""Columns of metrics.tsv and summary.tsv that hold names, never numbers."""


def read_table(path: str) -> pd.DataFrame:
    """A TSV of the workflow with name columns kept as text (a panel called 'NA' or 'null' stays a name) and the rest numeric."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    for column in frame.columns:
        if column not in TEXT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].replace("", np.nan), errors="coerce")
    return frame


def read_quarantine(path: str) -> pd.DataFrame:
    """quarantine.tsv as text columns (line, sample_id, reason, text)."""
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


# ---------------------------------------------------------------- verdict


def summary_row(summary: pd.DataFrame, panel: str, model: str, metric: str) -> dict:
    """One row of summary.tsv as a dict; NaN values where the row is absent."""
    rows = summary[(summary["panel"] == panel) & (summary["model"] == model) & (summary["metric"] == metric)]
    if len(rows) == 0:
        return {
            "cv_mean": math.nan,
            "cv_sd": math.nan,
            "ci_low": math.nan,
            "ci_high": math.nan,
            "n_splits": 0,
            "holdout": math.nan,
            "perm_p": math.nan,
            "n_permutations": 0,
        }
    row = rows.iloc[0].to_dict()
    row["n_permutations"] = 0 if pd.isna(row.get("n_permutations")) else int(row["n_permutations"])
    return row


def paired_difference(metrics: pd.DataFrame, model: str, other: str, metric: str) -> tuple[float, float, float]:
    """Mean and corrected 95% CI of ``model - other`` in ``metric``, paired by CV split."""
    cv = metrics[metrics["kind"] == "cv"]
    a = cv[cv["model"] == model].set_index("split_id")
    b = cv[cv["model"] == other].set_index("split_id")
    common = a.index.intersection(b.index)
    if len(common) == 0:
        return math.nan, math.nan, math.nan
    diff = (a.loc[common, metric] - b.loc[common, metric]).to_numpy(np.float64)
    ratio = float((a.loc[common, "n_test"] / a.loc[common, "n_train"]).mean())
    mean, _sd, low, high = corrected_ci(diff, ratio)
    return mean, low, high


def _compare_word(low: float, high: float) -> str:
    """``yes`` / ``no, worse`` / ``no clear difference`` from a CI of a difference."""
    if math.isnan(low) or math.isnan(high):
        return "n/a"
    if low > 0:
        return "yes"
    if high < 0:
        return "no, worse"
    return "no clear difference"


def majority_class(labels: Mapping) -> str:
    """The most common labelled class."""
    counts = labels.get("class_counts") or {}
    return max(counts, key=lambda c: counts[c]) if counts else "?"


def signal_level(auc: Mapping) -> str:
    """Verdict level from the MLP's ROC-AUC summary row."""
    mean, low, high = float(auc["cv_mean"]), float(auc["ci_low"]), float(auc["ci_high"])
    if math.isnan(mean) or math.isnan(low) or math.isnan(high):
        return "unknown"
    if low > 0.5:
        p = float(auc.get("perm_p", math.nan))
        if auc.get("n_permutations", 0) and not math.isnan(p) and p > 0.05:
            return "unconfirmed"
        return "signal"
    if high < 0.5:
        return "below"
    return "none"


HEADLINES = {
    "signal": "Evidence of signal: the MLP separates the classes better than chance.",
    "unconfirmed": "Unconfirmed signal: the ROC-AUC interval lies above 0.5, but the permutation test does not confirm it (p > 0.05).",
    "none": "No evidence of signal: the MLP does not separate the classes measurably better than chance.",
    "below": "No evidence of signal: the MLP scores below chance, which is not usable signal either.",
    "unknown": "No verdict: the ROC-AUC or its interval could not be computed (too few CV splits, or test sets lacking a class).",
}


def panel_verdict(panel: PanelData, summary: pd.DataFrame, labels: Mapping) -> Verdict:
    """The plain-language verdict on one panel's MLP against chance and both baselines."""
    auc = summary_row(summary, panel.name, "mlp", "roc_auc")
    level = signal_level(auc)
    verdict = Verdict(panel=panel.name, level=level, headline=HEADLINES[level])
    mean, low, high = float(auc["cv_mean"]), float(auc["ci_low"]), float(auc["ci_high"])
    if level == "unknown":
        where = "cannot be judged"
    elif low <= 0.5 <= high:
        where = "<b>includes 0.5, so there is no evidence of signal</b>"
    elif low > 0.5:
        where = "lies entirely above 0.5"
    else:
        where = "lies entirely below 0.5"
    verdict.details.append(
        f"Mean cross-validated ROC-AUC <b>{fmt(mean)}</b> (95% CI {fmt(low)} to {fmt(high)}, {int(auc['n_splits'])} CV splits). "
        f"0.5 is what random guessing scores and 1.0 is perfect separation; the interval {where}."
    )
    acc_mlp = summary_row(summary, panel.name, "mlp", "accuracy")
    acc_maj = summary_row(summary, panel.name, "majority", "accuracy")
    bal_mlp = summary_row(summary, panel.name, "mlp", "balanced_accuracy")
    d_acc = paired_difference(panel.metrics, "mlp", "majority", "accuracy")
    acc_word = {
        "yes": "more accurate than",
        "no, worse": "less accurate than",
        "no clear difference": "not measurably more accurate than",
    }.get(_compare_word(d_acc[1], d_acc[2]), "compared with")
    verdict.details.append(
        f"Accuracy {fmt(acc_mlp['cv_mean'])} against <b>{fmt(acc_maj['cv_mean'])}</b> for the majority baseline, which always predicts "
        f"the most common class ('{esc(majority_class(labels))}'): the MLP is {acc_word} that trivial rule. "
        f"Its balanced accuracy (mean of the per-class recalls, 0.5 = guessing) is {fmt(bal_mlp['cv_mean'])}."
    )
    d_maj = paired_difference(panel.metrics, "mlp", "majority", "roc_auc")
    verdict.beats_majority = _compare_word(d_maj[1], d_maj[2])
    lr = summary_row(summary, panel.name, "logreg", "roc_auc")
    d_lr = paired_difference(panel.metrics, "mlp", "logreg", "roc_auc")
    verdict.beats_logreg = _compare_word(d_lr[1], d_lr[2])
    lr_word = {
        "yes": "the MLP is better",
        "no, worse": "the MLP is worse",
        "no clear difference": "no clear difference",
    }.get(verdict.beats_logreg, "not computable")
    verdict.details.append(
        f"Logistic regression on the same genes: ROC-AUC {fmt(lr['cv_mean'])} (95% CI {fmt(lr['ci_low'])} to {fmt(lr['ci_high'])}). "
        f"Paired by split, MLP minus logistic regression is {fmt(d_lr[0])} (95% CI {fmt(d_lr[1])} to {fmt(d_lr[2])}): {lr_word}."
    )
    holdout_n = panel.metrics[(panel.metrics["kind"] == "holdout") & (panel.metrics["model"] == "mlp")]["n_test"]
    if len(holdout_n):
        verdict.details.append(
            f"On the single holdout split ({int(holdout_n.iloc[0])} test samples) the MLP's ROC-AUC is {fmt(auc['holdout'])} and its accuracy "
            f"{fmt(acc_mlp['holdout'])} (majority baseline {fmt(acc_maj['holdout'])}); one small test set is noisy, so the CV interval above is the better guide."
        )
    if auc["n_permutations"]:
        verdict.details.append(
            f"Permutation test: p = <b>{fmt_p(auc['perm_p'])}</b> from {auc['n_permutations']} label-shuffled replicates "
            "(the share of replicates whose mean CV ROC-AUC is at least the observed one; small p means the real labels do better than shuffled ones)."
        )
    else:
        verdict.details.append("No permutation test was run (config <code>evaluate.permutations: 0</code>).")
    return verdict


def overall_headline(verdicts: Sequence[Verdict], labels: Mapping) -> tuple[str, str]:
    """One sentence over all panels and its CSS level."""
    target = esc(labels.get("target", "the target"))
    classes = " vs ".join(f"'{esc(c)}'" for c in labels.get("classes", []))
    with_signal = [v.panel for v in verdicts if v.level == "signal"]
    n = len(verdicts)
    if with_signal:
        names = ", ".join(esc(p) for p in with_signal)
        return (
            f"{len(with_signal)} of {n} panel(s) show evidence of signal for {target} ({classes}): {names}. Check the other panels and the baselines below before drawing conclusions.",
            "signal",
        )
    if any(v.level == "unconfirmed" for v in verdicts):
        return (
            f"No panel shows confirmed signal for {target} ({classes}); see the unconfirmed panel(s) below.",
            "unconfirmed",
        )
    return (
        f"Null result: no panel shows evidence that its genes predict {target} ({classes}) better than chance. "
        f"With {labels.get('labelled', '?')} labelled samples the intervals are wide, so a small effect cannot be ruled out either; "
        "the data simply give no evidence for one.",
        "none",
    )


def verdict_section(
    verdicts: Sequence[Verdict], panels: Sequence[PanelData], summary: pd.DataFrame, labels: Mapping
) -> str:
    """Section 1: the overall sentence, a table and one box per panel."""
    text, level = overall_headline(verdicts, labels)
    rows = []
    for v, p in zip(verdicts, panels, strict=True):
        auc = summary_row(summary, p.name, "mlp", "roc_auc")
        acc = summary_row(summary, p.name, "mlp", "accuracy")
        maj = summary_row(summary, p.name, "majority", "accuracy")
        rows.append(
            {
                "panel": p.name,
                "genes": len(p.genes),
                "MLP ROC-AUC (95% CI)": f"{fmt(auc['cv_mean'])} ({fmt(auc['ci_low'])} to {fmt(auc['ci_high'])})",
                "signal?": {
                    "signal": "yes",
                    "unconfirmed": "unconfirmed",
                    "none": "no evidence",
                    "below": "no evidence (below chance)",
                }.get(v.level, "n/a"),
                "accuracy: MLP / majority": f"{fmt(acc['cv_mean'])} / {fmt(maj['cv_mean'])}",
                "beats majority?": v.beats_majority,
                "beats logistic regression?": v.beats_logreg,
                "permutation p": fmt_p(auc["perm_p"]) if auc["n_permutations"] else "not run",
            }
        )
    boxes = []
    for v in verdicts:
        items = "".join(f"<li>{d}</li>" for d in v.details)
        tag = {
            "signal": "signal",
            "unconfirmed": "unconfirmed",
            "none": "no evidence",
            "below": "no evidence",
            "unknown": "no verdict",
        }[v.level]
        boxes.append(
            f'<div class="verdict level-{v.level}" data-panel="{esc(v.panel)}"><h3>Panel {esc(v.panel)} <span class="tag level-{v.level}">{tag}</span></h3>'
            f"<p><b>{esc(v.headline)}</b></p><ul>{items}</ul></div>"
        )
    body = (
        f'<div class="headline level-{level}">{text}</div>'
        + html_table(pd.DataFrame(rows), numeric=("genes",))
        + caption(
            "Each panel trains a small neural network (MLP) on its genes and compares it with two baselines: the majority class "
            "(always predict the most common class) and logistic regression. Numbers are means over the cross-validation (CV) splits; "
            "the 95% confidence interval is the Nadeau-Bengio corrected resampled t interval, which allows for CV folds sharing training samples. "
            "'Beats …?' compares ROC-AUC paired by split with the same interval: 'yes' only when the whole interval of the difference is above 0."
        )
        + "".join(boxes)
    )
    return section("verdict", body)


# ---------------------------------------------------------------- sections 2-3


ACCOUNTING_ROWS = (
    ("lines_read", "lines read from the file"),
    ("header_lines", "header lines"),
    ("blank_lines", "blank lines"),
    ("data_lines", "data lines (one sample each)"),
    ("parsed_as_is", "parsed as is"),
    ("repaired", "repaired (unquoted commas in free text)"),
    ("quarantined", "quarantined (left out, see below)"),
    ("rows_in_cohort", "rows in the cleaned cohort"),
    ("n_genes", "expression (gene) columns"),
    ("n_columns", "columns in all"),
)


def accounting_section(accounting: Mapping, quarantine: pd.DataFrame, labels: Mapping) -> str:
    """Section 2: what happened to every line of the input file, and to every label."""
    rows = [{"what": text, "count": accounting[key]} for key, text in ACCOUNTING_ROWS if key in accounting]
    parts = [
        f"<p>Input file: <code>{esc(accounting.get('file', '?'))}</code>.</p>",
        html_table(pd.DataFrame(rows), numeric=("count",)),
    ]
    expected = accounting.get("parsed_as_is", 0) + accounting.get("repaired", 0) + accounting.get("quarantined", 0)
    if "data_lines" in accounting and expected != accounting["data_lines"]:
        parts.append(
            f'<p class="note">The counts do not add up: parsed + repaired + quarantined = {expected}, but there are {accounting["data_lines"]} data lines.</p>'
        )
    repaired = accounting.get("repaired_lines") or []
    if repaired:
        parts.append(
            f"<p>Repaired lines (1-based line numbers in the file): {esc(', '.join(str(x) for x in repaired))}.</p>"
        )
    gene_cols = accounting.get("gene_columns")
    if isinstance(gene_cols, Mapping):
        parts.append(
            f"<p>Gene columns run from <code>{esc(gene_cols.get('first'))}</code> to <code>{esc(gene_cols.get('last'))}</code>.</p>"
        )
    if len(quarantine):
        shown = quarantine.copy()
        if "text" in shown:
            shown["text"] = shown["text"].map(lambda t: t if len(t) <= 120 else t[:117] + "...")
        parts.append("<h3>Quarantined lines</h3>" + html_table(shown))
    else:
        parts.append("<p>No line was quarantined.</p>")
    label_rows = [
        {"what": "samples in the cohort", "count": labels.get("samples", "?")},
        {"what": "with a label (used)", "count": labels.get("labelled", "?")},
        {"what": "label missing (left out)", "count": labels.get("missing_label", "?")},
        {"what": "label not matching any class (left out)", "count": labels.get("unmatched_label", "?")},
    ]
    parts.append(
        f"<h3>Labels from <code>{esc(labels.get('target', '?'))}</code></h3>"
        + html_table(pd.DataFrame(label_rows), numeric=("count",))
    )
    unmatched = labels.get("unmatched_values") or {}
    if unmatched:
        parts.append(
            "<p>Values that matched no class: " + esc(", ".join(f"'{k}' ({v})" for k, v in unmatched.items())) + ".</p>"
        )
    splits = labels.get("splits") or {}
    parts.append(
        f"<p>Classes (in code order): {esc(', '.join(labels.get('classes', [])))}; positive class: <b>{esc(labels.get('positive'))}</b>. "
        f"Splits: {esc(', '.join(f'{v} {k}' for k, v in splits.items()))}.</p>"
    )
    parts.append(
        caption(
            "Every line of the input file is accounted for: read as is, repaired, or quarantined with a reason. Only samples whose label matched a class enter the models."
        )
    )
    return section("accounting", "\n".join(parts))


def balance_section(labels: Mapping, figures: Figures) -> str:
    """Section 3: class balance bar chart."""
    counts = labels.get("class_counts") or {}
    fig = plots.class_balance(
        counts,
        missing=int(labels.get("missing_label", 0) or 0) + int(labels.get("unmatched_label", 0) or 0),
        positive=labels.get("positive"),
    )
    total = sum(counts.values()) or 1
    largest = max(counts.values()) if counts else 0
    text = (
        f"Labelled samples per class; the grey bar counts samples left out for a missing or unmatched label. "
        f"The largest class holds {largest / total:.0%} of the labelled samples, so a model that always predicts it is right {largest / total:.0%} of the time: "
        "accuracy must be judged against that, not against 50%."
    )
    return section("balance", figures.html(fig, "balance") + caption(text))


# ---------------------------------------------------------------- sections 4-6, per panel


def pairplot_block(panel: PanelData, max_genes: int, figures: Figures) -> str:
    """One panel's scatter matrix of (at most ``max_genes``) scaled genes, holdout split."""
    genes = panel.genes
    shown = genes[: max(2, max_genes)] if len(genes) > max_genes else genes
    head = f'<h3 id="{panel_anchor("pair", panel.name)}">{esc(panel.name)}</h3>'
    table = panel.scaled[panel.scaled["split_id"] == "holdout"]
    if len(table) == 0:
        table = (
            panel.scaled[panel.scaled["split_id"] == panel.scaled["split_id"].iloc[0]] if len(panel.scaled) else table
        )
    if len(shown) < 2:
        return head + f"<p>Only one gene ({esc(', '.join(shown))}): no pairs to plot.</p>"
    fig = plots.pair_plot(table, shown, panel.classes)
    note = ""
    if len(shown) < len(genes):
        note = f" Showing the first {len(shown)} of the panel's {len(genes)} genes in panel order ({esc(', '.join(shown))}); the cap is config <code>report.pairplot_max_genes</code>."
    text = (
        f"Each dot is one labelled sample ({len(table)} in all, training and test of the holdout split), coloured by class; "
        "each small plot compares two genes. Values are standardised (0 = training mean, 1 = one standard deviation) with the holdout split's training samples. "
        "Separate colour clouds would hint at signal; fully overlapping clouds mean these genes, taken two at a time, do not tell the classes apart."
        + note
    )
    return head + figures.html(fig, f"pair-{panel.name}") + caption(text)


def training_block(panel: PanelData, figures: Figures) -> str:
    """One panel's per-epoch curves."""
    head = f'<h3 id="{panel_anchor("train", panel.name)}">{esc(panel.name)}</h3>'
    if len(panel.history) == 0:
        return head + "<p>No training history.</p>"
    fig = plots.epoch_curves(panel.history)
    n_cv = panel.history.loc[panel.history["kind"] == "cv", "split_id"].nunique()
    device = ", ".join(sorted(panel.history["device"].astype(str).unique())) if "device" in panel.history else "?"
    step = plots.curve_stride(panel.history)
    thinned = f" Drawn every {step} epochs." if step > 1 else ""
    text = (
        f"Blue: mean over the {n_cv} CV splits, with the shaded band showing mean ± 1 standard deviation across splits; red: the holdout split. "
        "Loss panel: dotted lines are the training loss, solid lines the test loss; the other panels are measured on each split's test samples after every epoch. "
        "A test loss that climbs while the training loss keeps falling means the network is memorising its training samples (overfitting). "
        f"ROC-AUC's dashed line marks chance (0.5). Trained on: {esc(device)}.{thinned}"
    )
    return head + figures.html(fig, f"train-{panel.name}") + caption(text)


def evaluation_block(panel: PanelData, positive: str, figures: Figures) -> str:
    """One panel's ROC and PR curves (two classes) and the MLP's confusion matrices."""
    head = f'<h3 id="{panel_anchor("eval", panel.name)}">{esc(panel.name)}</h3>'
    parts = [head]
    preds = panel.predictions
    if len(panel.classes) == 2 and len(preds):
        parts.append(figures.html(plots.roc_pr_curves(preds, positive), f"rocpr-{panel.name}"))
        parts.append(
            caption(
                f"Left: ROC curve, the share of '{esc(positive)}' samples caught (true positive rate) against the share of other samples wrongly flagged, "
                "as the probability threshold moves; the diagonal is chance. Right: precision-recall curve; the dashed line is the share of positives, "
                "what a random ranking gets. Solid lines pool the test predictions of all CV folds (each sample appears once per CV repeat), "
                "dotted lines the holdout split alone. The pooled AUC can differ from the per-fold mean in the verdict. "
                "The majority baseline is not drawn: it gives every sample the same score, so its curves are the dashed chance lines."
            )
        )
    elif len(panel.classes) > 2:
        parts.append(
            f'<p class="note">ROC and precision-recall curves are drawn for two classes only; this panel has {len(panel.classes)} classes. See the macro-averaged ROC-AUC and PR-AUC in section 7.</p>'
        )
    else:
        parts.append("<p>No predictions to plot.</p>")
    if len(preds) and (preds["model"] == "mlp").any():
        parts.append(figures.html(plots.confusion_matrices(preds, panel.classes, "mlp"), f"confusion-{panel.name}"))
        parts.append(
            caption(
                "The MLP's confusion matrices: rows are the true class, columns the predicted class (probability ≥ 0.5 for the positive class with two classes); "
                "counts with the share of the row. Left: the holdout split's test samples; right: all CV test predictions summed, so each sample is counted once per CV repeat. "
                "A good classifier puts most counts on the diagonal in every row."
            )
        )
    return "".join(parts)


def per_panel_section(anchor: str, intro: str, blocks: Sequence[str]) -> str:
    """A section made of one block per panel."""
    return section(anchor, caption(intro) + "\n".join(blocks))


# ---------------------------------------------------------------- sections 7-9


def summary_table(summary: pd.DataFrame) -> str:
    """summary.tsv as a formatted table, the MLP's ROC-AUC rows highlighted."""
    frame = pd.DataFrame(
        {
            "panel": summary["panel"],
            "model": summary["model"].map(plots.model_name),
            "metric": summary["metric"].map(plots.metric_name),
            "CV mean": summary["cv_mean"].map(fmt),
            "CV sd": summary["cv_sd"].map(fmt),
            "95% CI": [f"{fmt(lo)} to {fmt(hi)}" for lo, hi in zip(summary["ci_low"], summary["ci_high"], strict=True)],
            "CV splits": summary["n_splits"].map(lambda v: "–" if pd.isna(v) else str(int(v))),
            "holdout": summary["holdout"].map(fmt),
            "permutation p": [
                fmt_p(p) if (not pd.isna(n) and int(n) > 0) else ""
                for p, n in zip(summary["perm_p"], summary["n_permutations"], strict=True)
            ],
            "permutations": summary["n_permutations"].map(lambda v: "0" if pd.isna(v) else str(int(v))),
        }
    )
    key = ((summary["model"] == "mlp") & (summary["metric"] == "roc_auc")).tolist()
    return html_table(
        frame,
        numeric=("CV mean", "CV sd", "95% CI", "CV splits", "holdout", "permutation p", "permutations"),
        key_rows=key,
    )


def key_metrics_table(summary: pd.DataFrame, panels: Sequence[str]) -> str:
    """One row per panel and model, one column per key metric: 'mean [low, high]'."""
    rows, key = [], []
    models = [m for m in plots.MODEL_ORDER if m in set(summary["model"])] + sorted(
        set(summary["model"]) - set(plots.MODEL_ORDER)
    )
    for panel in panels:
        for model in models:
            row = {"panel": panel, "model": plots.model_name(model)}
            for metric in KEY_METRICS:
                r = summary_row(summary, panel, model, metric)
                row[plots.metric_name(metric)] = f"{fmt(r['cv_mean'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]"
            rows.append(row)
            key.append(model == "mlp")
    frame = pd.DataFrame(rows)
    return html_table(frame, numeric=[plots.metric_name(m) for m in KEY_METRICS], key_rows=key)


def comparison_section(summary: pd.DataFrame, panels: Sequence[str], figures: Figures) -> str:
    """Section 7: the key metrics of every panel and model with CIs, and the summary table."""
    fig = plots.comparison_chart(summary, KEY_METRICS, panels)
    text = (
        "Each dot is a model's mean over the CV splits, with its 95% confidence interval as a bar. "
        "Dashed lines mark chance for ROC-AUC and balanced accuracy (0.5) and for MCC (0). "
        "For PR-AUC chance is the share of positive samples, which the majority baseline's value shows. "
        "Overlapping intervals of the MLP and a baseline mean the data cannot tell them apart. "
        "The majority baseline's accuracy is high only because one class is common; it has no skill."
    )
    table_caption = caption(
        "All of summary.tsv (the MLP's ROC-AUC rows highlighted). 'CV sd' is the spread over CV splits; 'holdout' the single holdout split's value; "
        "the permutation p-value is computed for the MLP's ROC-AUC only. A CI can extend past the metric's range because it is a t interval."
    )
    details = f"<details><summary>Full summary table ({len(summary)} rows)</summary>{summary_table(summary)}{table_caption}</details>"
    return section(
        "comparison",
        figures.html(fig, "comparison")
        + caption(text)
        + "<h3>Key metrics</h3>"
        + key_metrics_table(summary, panels)
        + caption("CV mean with its 95% confidence interval in brackets; the MLP's rows in bold.")
        + details,
    )


def permutation_section(panels: Sequence[PanelData], summary: pd.DataFrame, figures: Figures) -> str:
    """Section 8: the label-shuffled null distribution of each panel where permutations ran."""
    blocks = []
    for panel in panels:
        auc = summary_row(summary, panel.name, "mlp", "roc_auc")
        perms = panel.permutations
        if not auc["n_permutations"] or len(perms) == 0 or "roc_auc" not in perms:
            continue
        null = perms.groupby("permutation")["roc_auc"].mean().to_numpy(np.float64)
        fig = plots.permutation_null(null, float(auc["cv_mean"]), float(auc["perm_p"]), panel.name)
        blocks.append(
            f'<h3 id="{panel_anchor("perm", panel.name)}">{esc(panel.name)}</h3>'
            + figures.html(fig, f"perm-{panel.name}")
            + caption(
                f"Bars: the mean CV ROC-AUC of {len(null)} replicates trained on shuffled labels, i.e. what this pipeline scores when there is nothing to find. "
                f"Red line: the real labels' mean CV ROC-AUC ({fmt(auc['cv_mean'])}); p = {fmt_p(auc['perm_p'])} is the share of replicates at or above it (add-one estimate). "
                "A red line inside the bulk of the bars means the real result looks like chance."
            )
        )
    if not blocks:
        body = (
            '<p class="note">No permutation test was run (config <code>evaluate.permutations</code> is 0). '
            "Set it to, for example, 100 to train label-shuffled replicates and get a permutation p-value for each panel's MLP.</p>"
        )
    else:
        body = "\n".join(blocks)
    return section("permutation", body)


def _yaml_scalar(value: object) -> str:
    """A YAML scalar: numbers, booleans and null as such, strings double-quoted unless plainly safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}" if exponent else text
    text = str(value)
    reserved = ("true", "false", "null", "yes", "no", "on", "off", "~")
    plain = (
        bool(text)
        and all(ch.isalnum() or ch in "_-./" for ch in text)
        and text[0] not in "-."
        and text.lower() not in reserved
    )
    if plain:
        try:
            float(text)
        except ValueError:
            return text
    return json.dumps(text, ensure_ascii=False)


def to_yaml(value: object, indent: int = 0) -> str:
    """Block-style YAML of nested mappings and lists (lists of scalars inline), without PyYAML."""
    pad = "  " * indent
    nested = (Mapping, list, tuple)
    if isinstance(value, Mapping):
        if not value:
            return pad + "{}"
        lines = []
        for key, item in value.items():
            head = f"{pad}{_yaml_scalar(key)}:"
            if (isinstance(item, Mapping) and item) or (
                isinstance(item, (list, tuple)) and any(isinstance(v, nested) for v in item)
            ):
                lines.append(head + "\n" + to_yaml(item, indent + 1))
            else:
                lines.append(head + " " + to_yaml(item, 0))
        return "\n".join(lines)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, nested) for v in value):
            return pad + "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
        return "\n".join(f"{pad}- " + to_yaml(item, indent + 1).lstrip() for item in value)
    return pad + _yaml_scalar(value)


def provenance_section(config: Mapping, versions: Mapping[str, str]) -> str:
    """Section 9: the configuration used and package versions."""
    config_text = to_yaml(config)
    rows = pd.DataFrame({"package": list(versions), "version": list(versions.values())})
    body = (
        "<h3>Configuration</h3>"
        + f"<pre>{esc(config_text)}</pre>"
        + caption("The workflow configuration of this run, as YAML (comments of config/config.yaml are not kept).")
        + "<h3>Package versions</h3>"
        + html_table(rows)
        + caption(
            "Versions in the environment that wrote this report; training ran in the model environment (see the device under each training plot)."
        )
    )
    return section("provenance", body)


# ---------------------------------------------------------------- page


def table_of_contents(panels: Sequence[str]) -> str:
    """The navigation list, with per-panel links under the per-panel sections."""
    sub = {"pairplots": "pair", "training": "train", "evaluation": "eval"}
    items = []
    for anchor, title in SECTIONS:
        inner = ""
        if anchor in sub:
            inner = " — " + " · ".join(f'<a href="#{panel_anchor(sub[anchor], p)}">{esc(p)}</a>' for p in panels)
        items.append(f'<li><a href="#{anchor}">{esc(title.split(". ", 1)[1])}</a>{inner}</li>')
    return f'<nav class="toc"><b>Contents</b><ol>{"".join(items)}</ol></nav>'


def page(title: str, subtitle: str, toc: str, sections: Sequence[str]) -> str:
    """The whole HTML document, plotly.js embedded once in the head."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n"
        f'<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>\n'
        "</head>\n<body>\n<main>\n"
        f'<h1>{esc(title)}</h1>\n<p class="sub">{subtitle}</p>\n{toc}\n'
        + "\n".join(sections)
        + "\n</main>\n</body>\n</html>\n"
    )


def build_report(inputs: Mapping[str, str | Sequence[str]], panels: Sequence[str], config: Mapping, out: str) -> None:
    """Write the HTML report of a run to ``out``.

    ``inputs`` has the paths ``accounting``, ``quarantine``, ``labels`` and
    ``summary``, and lists (one path per panel, in ``panels`` order) ``scaled``,
    ``history``, ``metrics``, ``predictions`` and ``permutations``.
    """
    panels = list(panels)
    accounting = json.loads(Path(str(inputs["accounting"])).read_text(encoding="utf-8"))
    labels = json.loads(Path(str(inputs["labels"])).read_text(encoding="utf-8"))
    quarantine = read_quarantine(str(inputs["quarantine"]))
    summary = read_table(str(inputs["summary"]))
    data = load_panels(inputs, panels)
    positive = str(labels.get("positive") or (data[0].meta.get("positive") if data else ""))
    max_genes = int(((config.get("report") or {}).get("pairplot_max_genes")) or DEFAULT_PAIRPLOT_GENES)
    figures = Figures()

    verdicts = [panel_verdict(p, summary, labels) for p in data]
    sections = [
        verdict_section(verdicts, data, summary, labels),
        accounting_section(accounting, quarantine, labels),
        balance_section(labels, figures),
        per_panel_section(
            "pairplots",
            "Pair plots of each panel's genes, to see by eye whether the classes separate. Looking is not testing: with many genes some pairs separate by chance.",
            [pairplot_block(p, max_genes, figures) for p in data],
        ),
        per_panel_section(
            "training",
            "How the MLP learned, epoch by epoch, in every split. These curves describe training; the verdict uses the final epoch only.",
            [training_block(p, figures) for p in data],
        ),
        per_panel_section(
            "evaluation",
            "How well each model ranks and classifies the test samples, at the final epoch.",
            [evaluation_block(p, positive, figures) for p in data],
        ),
        comparison_section(summary, panels, figures),
        permutation_section(data, summary, figures),
        provenance_section(config, library_versions()),
    ]
    subtitle = (
        f"Target <b>{esc(labels.get('target', '?'))}</b>, classes {esc(', '.join(labels.get('classes', [])))} (positive: {esc(positive)}); "
        f"panels {esc(', '.join(panels))}. Generated by panelmlp {esc(__version__)}."
    )
    title = str((config.get("report") or {}).get("title") or "panelmlp report")
    text = page(title, subtitle, table_of_contents(panels), sections)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(text, encoding="utf-8")
    log.info("report: %s (%d bytes, %d figures)", out, len(text.encode()), len(figures.used))
