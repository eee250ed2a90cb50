"""Standardising a panel's genes with statistics of each split's training rows."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .io import read_cohort_genes
from .panels import check_panel, panel_genes

log = logging.getLogger("panelmlp")


@dataclass
class Scaler:
    """Per-gene centre and scale fitted on one split's training rows."""

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """``(x - mean) / scale``; a missing value becomes 0, the training mean."""
        out = (matrix - self.mean) / self.scale
        return np.nan_to_num(out, nan=0.0).astype(np.float32)


def fit_scaler(train: np.ndarray) -> Scaler:
    """Mean and population standard deviation of each column, ignoring missing values.

    A column that is constant (or entirely missing) in the training rows gets
    scale 1 so it maps to 0 rather than to infinity.
    """
    train = np.asarray(train, dtype=np.float64)
    observed = ~np.isnan(train)
    counts = observed.sum(axis=0)
    mean = np.where(counts > 0, np.nansum(train, axis=0) / np.maximum(counts, 1), 0.0)
    var = np.where(counts > 0, np.nansum((train - mean) ** 2, axis=0) / np.maximum(counts, 1), 0.0)
    scale = np.sqrt(var)
    scale[~(scale > 1e-12)] = 1.0
    return Scaler(mean=mean, scale=scale)


def fit_scalers(matrix: pd.DataFrame, splits: pd.DataFrame) -> dict[str, Scaler]:
    """One scaler per split, fitted on that split's training rows only.

    ``matrix`` is samples x genes indexed by sample id; ``splits`` is the split
    table (split_id, sample_id, role).
    """
    scalers = {}
    for split_id, rows in splits.groupby("split_id", sort=False):
        train_ids = rows.loc[rows["role"] == "train", "sample_id"]
        scalers[split_id] = fit_scaler(matrix.loc[train_ids].to_numpy())
    return scalers


def scale_panel(
    matrix: pd.DataFrame, splits: pd.DataFrame, genes: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, Scaler]]:
    """Every split's samples, standardised with that split's training statistics.

    Returns the long-by-split table (split_id, kind, sample_id, role, label, y,
    then the genes) and the scalers.
    """
    genes = list(genes)
    sub = matrix[genes]
    scalers = fit_scalers(sub, splits)
    parts = []
    for split_id, rows in splits.groupby("split_id", sort=False):
        values = scalers[split_id].transform(sub.loc[rows["sample_id"]].to_numpy())
        block = rows[["split_id", "kind", "sample_id", "role", "label", "y"]].reset_index(drop=True)
        parts.append(pd.concat([block, pd.DataFrame(values, columns=genes)], axis=1))
    return pd.concat(parts, ignore_index=True), scalers


def write_scaled(table: pd.DataFrame, scalers: dict[str, Scaler], genes: Sequence[str], meta: dict, path: str) -> None:
    """Write the scaled table with the scaler statistics and label metadata in the parquet."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    info = dict(meta)
    info["genes"] = list(genes)
    info["scalers"] = {s: {"mean": sc.mean.tolist(), "scale": sc.scale.tolist()} for s, sc in scalers.items()}
    arrow = arrow.replace_schema_metadata({b"panelmlp": json.dumps(info).encode()})
    pq.write_table(arrow, path)


def read_scaled(path: str) -> tuple[pd.DataFrame, dict]:
    """The scaled table and its metadata (genes, scalers, classes, positive)."""
    arrow = pq.read_table(path)
    meta = json.loads(arrow.schema.metadata[b"panelmlp"])
    return arrow.to_pandas(), meta


def scale_step(cohort: str, splits_path: str, labels_json: str, panel: str, spec: object, out: str) -> list[str]:
    """cohort.parquet + splits.parquet -> the panel's scaled.parquet (training statistics only).

    Reads only the panel's columns from the cohort. Stops with the missing genes
    and their closest names when the panel names genes the cohort lacks.
    """
    available = read_cohort_genes(cohort)
    genes = panel_genes(panel, spec, available)
    check_panel(panel, genes, available)
    sample_id = pq.read_schema(cohort).metadata[b"panelmlp.sample_id"].decode()
    matrix = pq.read_table(cohort, columns=[sample_id, *genes]).to_pandas().set_index(sample_id)
    split_table = pd.read_parquet(splits_path)
    table, scalers = scale_panel(matrix, split_table, genes)
    meta = json.loads(Path(labels_json).read_text(encoding="utf-8"))
    write_scaled(table, scalers, genes, {"panel": panel, "classes": meta["classes"], "positive": meta["positive"]}, out)
    log.info("scale %s: %d genes, %d splits", panel, len(genes), len(scalers))
    return genes
