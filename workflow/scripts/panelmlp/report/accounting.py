"""Where every input line and every label went, and the class balance the accuracies must be read against."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import figures
from .page import Figures, caption, collapsed, esc, html_table, section

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
"""Keys of clean.json shown in the accounting table, with their wording."""

QUARANTINE_OPEN = 20
"""A quarantine table of up to this many lines is shown open; a longer one is collapsed."""


def _lines(accounting: Mapping) -> list[str]:
    """The line counts, a check that they add up, and the repaired lines."""
    rows = [(text, accounting[key]) for key, text in ACCOUNTING_ROWS if key in accounting]
    parts = [
        f"<p>Input file: <code>{esc(accounting.get('file', '?'))}</code>.</p>",
        html_table(["what", "count"], rows, numeric=("count",)),
    ]
    expected = accounting.get("parsed_as_is", 0) + accounting.get("repaired", 0) + accounting.get("quarantined", 0)
    if "data_lines" in accounting and expected != accounting["data_lines"]:
        parts.append(
            f'<p class="note">The counts do not add up: parsed + repaired + quarantined = {expected}, '
            f"but there are {accounting['data_lines']} data lines.</p>"
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
    return parts


def _quarantine(quarantine: pd.DataFrame) -> str:
    """The quarantined lines with their reasons (long texts cut), collapsed when many."""
    if not len(quarantine):
        return "<p>No line was quarantined.</p>"
    shown = quarantine.copy()
    if "text" in shown:
        shown["text"] = shown["text"].map(lambda t: t if len(t) <= 120 else t[:117] + "...")
    table = html_table(list(shown.columns), shown.itertuples(index=False))
    if len(shown) > QUARANTINE_OPEN:
        return "<h3>Quarantined lines</h3>" + collapsed(f"{len(shown)} quarantined lines", table)
    return "<h3>Quarantined lines</h3>" + table


def _labels(labels: Mapping) -> list[str]:
    """Which samples got a label, which did not and why, the classes and splits."""
    rows = [
        ("samples in the cohort", labels.get("samples", "?")),
        ("with a label (used)", labels.get("labelled", "?")),
        ("label missing (left out)", labels.get("missing_label", "?")),
        ("label not matching any class (left out)", labels.get("unmatched_label", "?")),
    ]
    parts = [
        f"<h3>Labels from <code>{esc(labels.get('target', '?'))}</code></h3>"
        + html_table(["what", "count"], rows, numeric=("count",))
    ]
    unmatched = labels.get("unmatched_values") or {}
    if unmatched:
        parts.append(
            "<p>Values that matched no class: " + esc(", ".join(f"'{k}' ({v})" for k, v in unmatched.items())) + ".</p>"
        )
    splits = labels.get("splits") or {}
    parts.append(
        f"<p>Classes (in code order): {esc(', '.join(labels.get('classes', [])))}"
        + (f"; positive class: <b>{esc(labels['positive'])}</b>. " if labels.get("positive") else ". ")
        + f"Splits: {esc(', '.join(f'{v} {k}' for k, v in splits.items()))}.</p>"
    )
    return parts


def accounting_section(accounting: Mapping, quarantine: pd.DataFrame, labels: Mapping) -> str:
    """What happened to every line of the input file, and to every label."""
    parts = [*_lines(accounting), _quarantine(quarantine), *_labels(labels)]
    parts.append(
        caption(
            "Every line of the input file is accounted for: read as is, repaired, or quarantined with a reason. "
            "Only samples whose label matched a class enter the models."
        )
    )
    return section("accounting", "\n".join(parts))


def balance_section(labels: Mapping, slots: Figures) -> str:
    """The class balance bar chart, and what a model that always predicts the largest class scores."""
    counts = labels.get("class_counts") or {}
    missing = int(labels.get("missing_label", 0) or 0) + int(labels.get("unmatched_label", 0) or 0)
    fig = figures.class_balance(counts, missing=missing, positive=labels.get("positive"))
    total = sum(counts.values()) or 1
    largest = max(counts.values()) if counts else 0
    text = (
        "Labelled samples per class; the grey bar counts samples left out for a missing or unmatched label. "
        f"The largest class holds {largest / total:.0%} of the labelled samples, so a model that always predicts it is right "
        f"{largest / total:.0%} of the time: accuracy must be judged against that, not against 50%."
    )
    return section("balance", slots.html(fig, "balance") + caption(text))
