"""Which panels and gene sets were trained, and every gene set left out with its reason.

A collection (a GMT file) filters its sets by size and by the share of their
genes the cohort has; a set that fails is skipped, not silently dropped. This
section lists them from results/metrics/panels.tsv.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from .page import caption, collapsed, esc, fmt, html_table, section

OPEN_ROWS = 10
"""A table of up to this many gene sets is shown open; a longer one is collapsed."""


def _short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _counts(table: pd.DataFrame, config: Mapping) -> str:
    """One sentence per collection (kept of listed) and the number of named panels."""
    specs = config.get("panels") or {}
    parts = []
    named = table[table["collection"] == ""]
    if len(named):
        parts.append(f"{len(named)} named panel{'s' if len(named) != 1 else ''} ({esc(', '.join(named['panel']))})")
    for collection, part in table[table["collection"] != ""].groupby("collection", sort=True):
        spec = specs.get(collection)
        source = f" from <code>{esc(spec['gmt'])}</code>" if isinstance(spec, Mapping) and "gmt" in spec else ""
        kept = int((part["status"] == "kept").sum())
        parts.append(f"collection <b>{esc(collection)}</b>{source}: {kept} of {len(part)} gene sets kept")
    return "<p>Trained: " + "; ".join(parts) + ".</p>" if parts else "<p>No panel was trained.</p>"


def _table(rows: pd.DataFrame, skipped: bool) -> str:
    """Gene sets with their sizes and coverage; skipped ones with the reason, hint and missing genes."""
    columns = ["collection", "gene set", "genes listed", "genes found", "coverage"]
    columns += ["reason", "hint", "missing genes"] if skipped else ["description"]
    data = []
    for r in rows.to_dict("records"):
        row = [r["collection"], r["panel"], int(r["n_listed"]), int(r["n_found"]), fmt(r["coverage"], 2)]
        if skipped:
            row += [r.get("reason", ""), r.get("hint", ""), _short(str(r.get("genes_missing", "")))]
        else:
            row.append(_short(str(r.get("description", ""))))
        data.append(row)
    return html_table(columns, data, numeric=("genes listed", "genes found", "coverage"))


def genesets_section(table: pd.DataFrame, config: Mapping) -> str:
    """Counts per collection, the skipped gene sets with their reasons, and the kept ones' coverage."""
    if table.empty or "status" not in table:
        return section("genesets", "<p>No panel table (results/metrics/panels.tsv) was given.</p>")
    skipped = table[table["status"] != "kept"]
    kept = table[(table["status"] == "kept") & (table["collection"] != "")]
    parts = [_counts(table, config)]
    if len(skipped):
        body = _table(skipped, skipped=True)
        title = f"{len(skipped)} skipped gene set{'s' if len(skipped) != 1 else ''}"
        parts.append(
            f"<h3>{title}</h3>" + (body if len(skipped) <= OPEN_ROWS else collapsed(f"Show all {len(skipped)}", body))
        )
        parts.append(
            caption(
                "Gene sets left out before training, with the filter they failed (config <code>panels.&lt;collection&gt;</code>: "
                "<code>min_size</code>, <code>max_size</code>, <code>min_coverage</code>). Coverage is the share of the set's genes found in the cohort."
            )
        )
    else:
        parts.append("<p>No gene set was skipped.</p>")
    if len(kept):
        body = _table(kept, skipped=False)
        parts.append(collapsed(f"Kept gene sets and their coverage ({len(kept)})", body, open_=len(kept) <= OPEN_ROWS))
    return section("genesets", "\n".join(parts))
