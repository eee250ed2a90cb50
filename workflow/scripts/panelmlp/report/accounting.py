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
    ("data_lines", "data lines"),
    ("parsed_as_is", "parsed as is, in the cohort"),
    ("repaired", "repaired (unquoted commas in free text), in the cohort"),
    ("quarantined", "quarantined (left out, see below)"),
    ("rows_in_cohort", "rows in the cleaned cohort"),
    ("n_genes", "expression (gene) columns"),
    ("n_columns", "columns in all"),
)
"""Keys of clean.json shown in the accounting table, with their wording."""

QUARANTINE_OPEN = 20
"""A quarantine table of up to this many lines is shown open; a longer one is collapsed."""

MISSING_SHOWN = 20
"""Genes and samples listed by name with their missing-value counts."""


def _file(entry: Mapping, genes: object = None) -> list[str]:
    """One input file: its format, line counts, a check that they add up, and the repaired lines."""
    rows = [(text, entry[key]) for key, text in ACCOUNTING_ROWS if key in entry and key not in ("n_genes",)]
    role = entry.get("role")
    what = {"expression": "Expression matrix", "samples": "Sample sheet"}.get(str(role), "Input file")
    orientation = f", {str(entry['orientation']).replace('_', ' ')}" if entry.get("orientation") else ""
    fmt = f" ({esc(entry['format'])}{esc(orientation)})" if entry.get("format") else ""
    parts = [f"<p>{what}: <code>{esc(entry.get('file', '?'))}</code>{fmt}.</p>"]
    parts.append(html_table(["what", "count"], rows, numeric=("count",)))
    expected = entry.get("parsed_as_is", 0) + entry.get("repaired", 0) + entry.get("quarantined", 0)
    if "data_lines" in entry and expected != entry["data_lines"]:
        parts.append(
            f'<p class="note">The counts do not add up: parsed + repaired + quarantined = {expected}, '
            f"but there are {entry['data_lines']} data lines.</p>"
        )
    repaired = entry.get("repaired_lines") or []
    if repaired:
        parts.append(
            f"<p>Repaired lines (1-based line numbers in the file): {esc(', '.join(str(x) for x in repaired))}.</p>"
        )
    parts += _export_notes(entry)
    return parts


def _export_notes(entry: Mapping) -> list[str]:
    """What the reader did about a spreadsheet export: empty trailing columns dropped, names differing by spaces."""
    parts = []
    empty = int(entry.get("empty_columns_dropped", 0) or 0)
    if empty:
        parts.append(
            f"<p>{empty} empty unnamed column{'s' if empty != 1 else ''} at the end of every line "
            "(a spreadsheet export's trailing separators) dropped.</p>"
        )
    similar = entry.get("similar_column_names") or []
    if similar:
        groups = "; ".join(" and ".join(repr(str(n)) for n in group) for group in similar)
        parts.append(
            f'<p class="note">Column names that differ only by spaces, kept as separate columns: {esc(groups)}. '
            "A panel or sample_id names exactly one of them; remove the spaces in the file if they are the same column.</p>"
        )
    return parts


def _lines(accounting: Mapping) -> list[str]:
    """Every input file's accounting, the join of two files, the genes and the missing values."""
    files = accounting.get("files") or [accounting]
    parts: list[str] = []
    for entry in files:
        parts += _file(entry)
    join = accounting.get("join")
    if isinstance(join, Mapping):
        rows = [
            ("samples in the expression matrix", join.get("expression_samples", "?")),
            ("samples in the sample sheet", join.get("sheet_samples", "?")),
            ("in both (in the cohort)", join.get("matched", "?")),
            ("only in the expression matrix (quarantined)", len(join.get("expression_only", []))),
            ("only in the sample sheet (quarantined)", len(join.get("samples_only", []))),
        ]
        parts.append(
            f"<h3>Join on <code>{esc(join.get('on', '?'))}</code></h3>"
            + html_table(["what", "count"], rows, numeric=("count",))
        )
        for key, text in (
            ("expression_only", "Only in the expression matrix"),
            ("samples_only", "Only in the sample sheet"),
        ):
            ids = join.get(key) or []
            if ids:
                shown = ", ".join(str(x) for x in ids[:50]) + (f" and {len(ids) - 50} more" if len(ids) > 50 else "")
                parts.append(f"<p>{text}: {esc(shown)}.</p>")
    gene_cols = accounting.get("gene_columns")
    if isinstance(gene_cols, Mapping):
        parts.append(
            f"<p>{esc(accounting.get('n_genes', '?'))} genes, from <code>{esc(gene_cols.get('first'))}</code> "
            f"to <code>{esc(gene_cols.get('last'))}</code>.</p>"
        )
    parts += _missing(accounting.get("missing"))
    parts += _uninformative(accounting.get("uninformative"))
    return parts


def _uninformative(silent: object, most: int = 50) -> list[str]:
    """The genes with no value or one value in every sample: they carry no information, so no model uses them."""
    if not isinstance(silent, Mapping) or not any(silent.get(k) for k in ("all_missing", "constant")):
        return []
    parts = []
    for key, what in (("all_missing", "with no value at all"), ("constant", "with the same value in every sample")):
        names = [str(g) for g in silent.get(key) or []]
        if names:
            more = f" and {len(names) - most} more" if len(names) > most else ""
            parts.append(f"{len(names)} gene{'s' if len(names) != 1 else ''} {what}: {', '.join(names[:most])}{more}")
    return [
        "<h3>Genes without information</h3><p>"
        + esc("; ".join(parts))
        + ". Their standardised input is 0 in every model and baseline, in training, testing and prediction, "
        "so they change nothing (a gene constant in one split's training rows only is named in its panel's details).</p>"
    ]


def _missing(missing: object) -> list[str]:
    """How many expression values were missing or not finite, where, and what the policy did."""
    if not isinstance(missing, Mapping):
        return []
    cells = int(missing.get("cells", 0) or 0)
    policy = missing.get("policy", "impute")
    if not cells:
        return [f"<p>No expression value is missing or non-finite (clean.missing: {esc(policy)}).</p>"]
    action = {
        "impute": "each is filled with its gene's mean over the training rows of every split (the sample stays)",
        "drop": f"{missing.get('samples_dropped', 0)} samples holding them were quarantined",
        "error": "the run stops",
    }.get(str(policy), str(policy))
    parts = [
        f"<h3>Missing expression values</h3><p><b>{cells}</b> expression values are missing "
        f"({esc(missing.get('non_finite_cells', 0))} of them non-finite, such as inf or nan, treated as missing) in "
        f"{esc(missing.get('genes_with_missing', 0))} genes and {esc(missing.get('samples_with_missing', 0))} samples; "
        f"clean.missing is <code>{esc(policy)}</code>: {esc(action)}.</p>"
    ]
    for key, label in (("by_gene", "gene"), ("by_sample", "sample")):
        counts = missing.get(key) or {}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:MISSING_SHOWN]
        if top:
            more = f" (the {MISSING_SHOWN} with most of {len(counts)})" if len(counts) > MISSING_SHOWN else ""
            parts.append(
                collapsed(
                    f"missing values per {label}{more}", html_table([label, "missing"], top, numeric=("missing",))
                )
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
    if labels.get("kind") == "survival":  # a usable sample needs a time too
        rows[1] = ("with event status and time (used)", labels.get("labelled", "?"))
        rows += [
            ("time missing or not a number (left out)", labels.get("missing_time", "?")),
            ("time negative (left out)", labels.get("negative_time", "?")),
        ]
    parts = [
        f"<h3>Labels from <code>{esc(labels.get('target', '?'))}</code></h3>"
        + html_table(["what", "count"], rows, numeric=("count",))
    ]
    odd = labels.get("negative_unused_time") or {}
    if odd:
        listed = ", ".join(f"{sample} ({v.get('column')} = {v.get('value'):g})" for sample, v in odd.items())
        parts.append(
            "<p>Negative times in the column not read for these samples (kept, with the time of the other column; "
            f"check the record): {esc(listed)}.</p>"
        )
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
            "Every line of every input file is accounted for: read as is, repaired, or quarantined with a reason. "
            "Only samples whose label matched a class enter the models."
        )
    )
    return section("accounting", "\n".join(parts))


def balance_section(labels: Mapping, slots: Figures, values: object = None) -> str:
    """The class balance bar chart, and what a model that always predicts the largest class scores.

    For a regression target: the distribution of its ``values`` instead, and what predicting the mean means.
    For a survival target: events and censored samples, and the follow-up.
    """
    if labels.get("kind") == "survival":
        return section("balance", _survival_balance(labels, slots))
    if labels.get("kind") == "regression":
        summary = labels.get("values") or {}
        missing = int(labels.get("missing_label", 0) or 0) + int(labels.get("unmatched_label", 0) or 0)
        fig = figures.target_histogram(values if values is not None else [], str(labels.get("target", "target")))
        text = (
            f"The target's values over the {labels.get('labelled', '?')} samples that have one (mean "
            f"{summary.get('mean', float('nan')):.4g}, sd {summary.get('sd', float('nan')):.4g}, range "
            f"{summary.get('min', float('nan')):.4g} to {summary.get('max', float('nan')):.4g}); {missing} samples without a "
            "usable value are left out. Predicting every sample the training mean scores an R² of about 0 and an RMSE of about "
            "the sd: any model must beat that."
        )
        return section("balance", slots.html(fig, "balance") + caption(text))
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


def _survival_balance(labels: Mapping, slots: Figures) -> str:
    """Samples with the event and censored ones as bars, with the follow-up and what a constant risk scores."""
    counts = labels.get("class_counts") or {}
    left_out = ("missing_label", "unmatched_label", "missing_time", "negative_time")
    missing = sum(int(labels.get(k, 0) or 0) for k in left_out)
    fig = figures.class_balance(counts, missing=missing, positive=labels.get("positive"))
    values = labels.get("values") or {}
    events = int(values.get("events", counts.get(labels.get("positive"), 0)) or 0)
    total = sum(int(v) for v in counts.values()) or 1
    median, longest = float(values.get("median_time", float("nan"))), float(values.get("max_time", float("nan")))
    horizons = ", ".join(f"{float(h):g}" for h in labels.get("horizons") or [])
    text = (
        "Samples whose event was observed (positive) and censored ones (followed without the event until their time); the grey bar "
        f"counts samples left out for a missing or unmatched event status or a missing or negative time. {events} of {total} "
        f"usable samples ({events / total:.0%}) had the event; median time {median:.0f} days, longest {longest:.0f} days"
        + (f"; time-dependent AUC horizons: {esc(horizons)} days" if horizons else "")
        + ". Only pairs whose earlier time is an event can be compared, so the events, not the samples, set how precise a "
        "C-index is. A constant risk scores a C-index of 0.5."
    )
    return slots.html(fig, "balance") + caption(text)
