"""Standardising genes with statistics of each split's training rows, where the data are used.

No standardised copy is stored. A job reads the raw values of the genes it
needs once (:func:`read_matrix`), computes per split the mean and standard
deviation of every gene over that split's training rows only
(:func:`split_statistics`), and standardises minibatches as it draws them.
The statistics travel with every checkpoint, so a model can score raw values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow.parquet as pq


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
    mean, scale = _column_statistics(np.asarray(train, dtype=np.float64))
    return Scaler(mean=mean, scale=scale)


def _column_statistics(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population sd per column of float64 ``train``, NaN-aware, sd 1 where it would be 0."""
    if np.isnan(train).any():
        observed = ~np.isnan(train)
        counts = observed.sum(axis=0)
        mean = np.where(counts > 0, np.nansum(train, axis=0) / np.maximum(counts, 1), 0.0)
        var = np.where(counts > 0, np.nansum((train - mean) ** 2, axis=0) / np.maximum(counts, 1), 0.0)
    else:
        mean = train.mean(axis=0) if len(train) else np.zeros(train.shape[1])
        var = ((train - mean) ** 2).mean(axis=0) if len(train) else np.zeros(train.shape[1])
    scale = np.sqrt(var)
    scale[~(scale > 1e-12)] = 1.0
    return mean, scale


def split_statistics(x: np.ndarray, train: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per split, each column's training mean and sd: two ``[S, G]`` float64 arrays.

    ``x`` is ``[N, G]`` raw values (NaN missing); ``train`` is ``[S, N]``
    boolean. Columns are taken ``block`` at a time, so the float64 working copy
    stays small however many genes there are.
    """
    n_splits, n_genes = train.shape[0], x.shape[1]
    mean = np.zeros((n_splits, n_genes))
    scale = np.ones((n_splits, n_genes))
    for start in range(0, n_genes, block):
        part = x[:, start : start + block]
        for s in range(n_splits):
            m, sd = _column_statistics(part[train[s]].astype(np.float64))
            mean[s, start : start + block] = m
            scale[s, start : start + block] = sd
    return mean, scale


def read_matrix(cohort: str, sample_id: str, genes: Sequence[str], samples: Sequence[str]) -> np.ndarray:
    """Raw values ``[len(samples), len(genes)]`` (float32, NaN missing) of the cohort parquet.

    Reads only the named columns, and fills a preallocated matrix column by
    column so peak memory stays near one copy of it.
    """
    table = pq.read_table(cohort, columns=[sample_id, *genes])
    ids = table.column(0).to_pylist()
    position = {s: i for i, s in enumerate(ids)}
    rows = np.array([position[s] for s in samples], dtype=np.int64)
    out = np.empty((len(samples), len(genes)), dtype=np.float32)
    for j in range(len(genes)):
        column = table.column(j + 1).to_numpy(zero_copy_only=False)
        out[:, j] = column[rows]
    return out
