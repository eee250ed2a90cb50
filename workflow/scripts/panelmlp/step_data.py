"""Workflow steps that need only the data stack: clean, split, scale, compare.

Each function reads its step's inputs, calls the library and writes the outputs,
so a step runs and is tested without Snakemake. Rule scripts call one of them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from . import compare, io, labels, panels, scaling, splits
from .errors import PanelMlpError

log = logging.getLogger("panelmlp")


def clean_step(raw_csv: str, genes: object, sample_id: str, cohort: str, quarantine: str, accounting: str) -> dict:
    """Raw CSV -> cohort.parquet, quarantine.tsv, clean.json."""
    result = io.clean_csv(raw_csv, genes, sample_id)
    io.write_clean(result, cohort, quarantine, accounting)
    log.info("clean: %s", json.dumps({k: result.accounting[k] for k in ("data_lines", "parsed_as_is", "repaired", "quarantined")}))
    for q in result.quarantine:
        log.warning("quarantined line %s: %s", q["line"], q["reason"])
    return result.accounting


def split_step(cohort: str, sample_id: str, target: Mapping, split: Mapping, out_splits: str, out_labels: str) -> dict:
    """cohort.parquet -> splits.parquet (every split's membership and labels) and labels.json."""
    column = target["column"]
    schema = pq.read_schema(cohort)
    if column not in schema.names:
        raise PanelMlpError(f"config target.column: {column!r} is not a column of {cohort}; choose a clinical column")
    frame = pq.read_table(cohort, columns=[sample_id, column]).to_pandas()
    values = frame.set_index(sample_id)[column]
    found = labels.derive_labels(values, target["classes"], target.get("positive"))
    table = splits.make_splits(
        found,
        test_size=split["test_size"],
        random_state=split["random_state"],
        stratify=split.get("stratify", True),
        cv_folds=split.get("cv_folds", 5),
        cv_repeats=split.get("cv_repeats", 1),
    )
    table.to_parquet(out_splits, index=False)
    summary = {
        "target": column,
        "samples": len(values),
        "labelled": len(found.labels),
        "missing_label": found.missing,
        "unmatched_label": found.unmatched,
        "unmatched_values": found.unmatched_values,
        "classes": found.classes,
        "positive": found.positive,
        "class_counts": found.counts(),
        "splits": {k: int(v) for k, v in table.groupby("kind")["split_id"].nunique().items()},
    }
    Path(out_labels).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    log.info("split: %s", json.dumps(summary))
    return summary


def scale_step(cohort: str, splits_path: str, labels_json: str, panel: str, spec: object, out: str) -> list[str]:
    """cohort.parquet + splits.parquet -> the panel's scaled.parquet (training statistics only).

    Reads only the panel's columns from the cohort. Stops with the missing genes
    and their closest names when the panel names genes the cohort lacks.
    """
    available = io.read_cohort_genes(cohort)
    genes = panels.panel_genes(panel, spec, available)
    panels.check_panel(panel, genes, available)
    sample_id = pq.read_schema(cohort).metadata[b"panelmlp.sample_id"].decode()
    matrix = pq.read_table(cohort, columns=[sample_id, *genes]).to_pandas().set_index(sample_id)
    split_table = pd.read_parquet(splits_path)
    table, scalers = scaling.scale_panel(matrix, split_table, genes)
    meta = json.loads(Path(labels_json).read_text(encoding="utf-8"))
    scaling.write_scaled(table, scalers, genes, {"panel": panel, "classes": meta["classes"], "positive": meta["positive"]}, out)
    log.info("scale %s: %d genes, %d splits", panel, len(genes), len(scalers))
    return genes


def compare_step(metrics_paths: Sequence[str], permutation_paths: Sequence[str], out: str) -> pd.DataFrame:
    """Every panel's metrics.tsv -> summary.tsv: CV mean with 95% CI, holdout value, permutation p."""
    metrics = pd.concat([pd.read_csv(p, sep="\t") for p in metrics_paths], ignore_index=True)
    perms = {}
    for mpath, ppath in zip(metrics_paths, permutation_paths, strict=True):
        panel = pd.read_csv(mpath, sep="\t", nrows=1)["panel"].iloc[0]
        perms[panel] = pd.read_parquet(ppath)
    summary = compare.summarise(metrics, perms)
    summary.to_csv(out, sep="\t", index=False, float_format="%.6g")
    return summary
