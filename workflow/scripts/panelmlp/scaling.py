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
import pyarrow as pa
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


def read_matrix(
    cohort: str, sample_id: str, genes: Sequence[str], samples: Sequence[str], columns_per_read: int = 512
) -> np.ndarray:
    """Raw values ``[len(samples), len(genes)]`` (float32, NaN missing) of the cohort parquet.

    Reads only the named columns, ``columns_per_read`` at a time into a
    preallocated matrix: reading 20,000 columns at once makes pyarrow hold
    several copies of the data in flight (about 8x the matrix).
    """
    source = pq.ParquetFile(cohort)
    ids = source.read(columns=[sample_id]).column(0).to_pylist()
    position = {s: i for i, s in enumerate(ids)}
    rows = np.array([position[s] for s in samples], dtype=np.int64)
    out = np.empty((len(samples), len(genes)), dtype=np.float32)
    for start in range(0, len(genes), columns_per_read):
        batch = source.read(columns=list(genes[start : start + columns_per_read]))
        for j, column in enumerate(batch.columns):
            out[:, start + j] = column.to_numpy()[rows]
        del batch
    pa.default_memory_pool().release_unused()
    return out


def standardise(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x[rows][:, cols] - mean) / scale`` in float64, missing values as 0 (the training mean).

    Works in place on one float64 copy, so a 800 x 20,000 block costs 128 MB, not four times that.
    """
    block = (
        x[rows] if len(cols) == x.shape[1] and np.array_equal(cols, np.arange(x.shape[1])) else x[np.ix_(rows, cols)]
    )
    out = block.astype(np.float64)
    del block
    out -= mean
    out /= scale
    return np.nan_to_num(out, copy=False)
