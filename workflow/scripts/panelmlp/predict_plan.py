"""What `snakemake predict` scores and where it writes, for the Snakefile (predict.smk).

Plain Python only: Snakemake imports this module at every start, so it must not load pandas, numpy or torch
(panelmlp.predict, which scores the new samples, re-exports these names).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import PanelMlpError

COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz", ".zst", ".zstd")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".tab", ".parquet", ".pq")


def prediction_name(path: str | Path) -> str:
    """The name of a prediction run: the file name without its table and compression extensions.

    >>> prediction_name("data/new.csv.gz"), prediction_name("batch.2.parquet"), prediction_name("x.tsv")
    ('new', 'batch.2', 'x')
    """
    name = Path(str(path)).name
    lower = name.lower()
    for suffixes in (COMPRESSION_SUFFIXES, TABLE_SUFFIXES):
        for suffix in suffixes:
            if lower.endswith(suffix) and len(name) > len(suffix):
                name, lower = name[: -len(suffix)], lower[: -len(suffix)]
                break
    return name


def prediction_plan(
    panels: Mapping, wanted: Sequence[str] | None, units: Mapping, name: str
) -> list[dict[str, object]]:
    """What `snakemake predict` scores: one entry, and one table, per panel of ``predict_panels``.

    ``panels`` is the config's ``panels``, ``wanted`` its ``predict_panels``
    (None: every configured panel), ``units`` the fit jobs of the workflow
    (``UNITS``: a collection's parts list their sets) and ``name`` the
    prediction name. An entry of ``predict_panels`` is a named panel, a
    collection (every set it kept) or a set of a collection (that collection's
    table then holds the sets named). Each entry: ``{"panel", "collection"
    (bool), "sets" (None: all), "folders" (fit outputs whose checkpoints it
    needs), "table"}``.
    """
    configured = {n: s for n, s in panels.items() if s is not None}
    if wanted is not None and not wanted:
        raise PanelMlpError("config predict_panels: an empty list; leave it null to score every panel, or name panels")
    entries: dict[str, dict] = {}
    for panel in dict.fromkeys(configured if wanted is None else wanted):
        if panel in configured:
            collection = isinstance(configured[panel], Mapping)
            folders = [u for u, unit in units.items() if unit.get("collection") == panel] if collection else [panel]
            entries[panel] = {"panel": panel, "collection": collection, "sets": None, "folders": folders}
            continue
        parts = [u for u, unit in units.items() if unit.get("collection") and panel in unit.get("sets", ())]
        if not parts:
            raise PanelMlpError(
                f"config predict_panels: {panel!r} is not a panel of this run; name one of "
                f"{', '.join(configured) or 'no panel'} (or a gene set of a collection)"
            )
        for part in parts:
            collection_name = str(units[part]["collection"])
            entry = entries.setdefault(
                collection_name, {"panel": collection_name, "collection": True, "sets": [], "folders": []}
            )
            if entry["sets"] is not None and panel not in entry["sets"]:
                entry["sets"].append(panel)
            if part not in entry["folders"]:
                entry["folders"].append(part)
    if not entries:
        raise PanelMlpError("config predict_panels: no panel to score; configure a panel (config panels)")
    plan = list(entries.values())
    for entry in plan:
        entry["folders"] = [f"results/panels/{folder}" for folder in entry["folders"]]
        entry["table"] = f"results/predictions/{entry['panel']}/{name}.tsv"
        entry["metrics"] = f"results/predictions/{entry['panel']}/{name}.metrics.tsv"
    return plan


def predict_csv_problem(path: str | Path) -> str | None:
    """One line when the new samples' file is missing or a folder (with the closest names there), else None."""
    path = str(path)
    if os.path.isdir(path):
        return f"config predict_csv: {path} is a folder; point it at the table of new samples"
    if os.path.exists(path):
        return None
    folder = os.path.dirname(path) or "."
    close = difflib.get_close_matches(os.path.basename(path), os.listdir(folder), n=3) if os.path.isdir(folder) else []
    hint = f" (closest in {folder}: {', '.join(close)})" if close else ""
    return f"config predict_csv: {path} not found{hint}; fix the path"
