"""Standardising genes with statistics of each split's training rows, where the data are used.

No standardised copy is stored. A job reads the raw values of the genes it
needs once (:func:`read_matrix`), computes per split the mean and standard
deviation of every gene over that split's training rows only
(:func:`split_statistics`), and standardises minibatches as it draws them.
The statistics travel with every checkpoint, so a model can score raw values.

A gene that is constant, or has no observed value, in a split's training rows
carries no information there: it is *uninformative* in that split. Its scale
is infinite (:data:`UNINFORMATIVE_SCALE`), so its standardised value is
exactly 0 for every row, test rows and new samples included, whatever their
raw value: the gene contributes nothing to that split's models and baselines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

UNINFORMATIVE_SCALE = np.inf
"""Scale of a gene that is constant or never observed in the training rows: every value of it standardises to 0."""


def uninformative(scale: np.ndarray) -> np.ndarray:
    """Boolean mask of the uninformative genes (scale :data:`UNINFORMATIVE_SCALE`), same shape as ``scale``."""
    return np.isinf(np.asarray(scale, dtype=np.float64))


def scale_values(x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(x - mean) / scale`` in float64; missing values, and every value of an uninformative gene, become 0.

    ``x`` is ``[n, genes]`` raw values, ``mean`` and ``scale`` per gene (as a
    checkpoint stores them). An infinite or missing raw value of an
    uninformative gene also gives 0.
    """
    with np.errstate(invalid="ignore"):
        out = (np.asarray(x, dtype=np.float64) - np.asarray(mean, dtype=np.float64)) / np.asarray(scale, np.float64)
    return np.nan_to_num(out, nan=0.0)


@dataclass
class Scaler:
    """Per-gene centre and scale fitted on one split's training rows."""

    mean: np.ndarray
    scale: np.ndarray

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        """``(x - mean) / scale``; a missing value becomes 0, the training mean; an uninformative gene is 0."""
        return scale_values(matrix, self.mean, self.scale).astype(np.float32)


def fit_scaler(train: np.ndarray) -> Scaler:
    """Mean and population standard deviation of each column, ignoring missing values.

    A column that is constant (or entirely missing) in the training rows gets
    scale :data:`UNINFORMATIVE_SCALE`, so every value of it maps to 0.
    """
    mean, scale = _column_statistics(np.asarray(train, dtype=np.float64))
    return Scaler(mean=mean, scale=scale)


def _column_statistics(train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and population sd per column of float64 ``train``, NaN-aware.

    A column whose observed values are all equal (a single one included), or
    that has none, gets sd :data:`UNINFORMATIVE_SCALE` (mean 0 when none is
    observed). Equality is tested exactly, not by a small sd, so a constant
    column of large values is caught despite rounding in its mean.
    """
    observed = ~np.isnan(train)
    if not observed.all():
        counts = observed.sum(axis=0)
        mean = np.where(counts > 0, np.nansum(train, axis=0) / np.maximum(counts, 1), 0.0)
        var = np.where(counts > 0, np.nansum((train - mean) ** 2, axis=0) / np.maximum(counts, 1), 0.0)
    else:
        mean = train.mean(axis=0) if len(train) else np.zeros(train.shape[1])
        var = ((train - mean) ** 2).mean(axis=0) if len(train) else np.zeros(train.shape[1])
    high = train.max(axis=0, initial=-np.inf, where=observed)
    low = train.min(axis=0, initial=np.inf, where=observed)
    scale = np.sqrt(var)
    scale[~(high > low) | ~(scale > 0)] = UNINFORMATIVE_SCALE
    return mean, scale


def split_statistics(x: np.ndarray, train: np.ndarray, block: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per split, each column's training mean and sd: two ``[S, G]`` float64 arrays.

    ``x`` is ``[N, G]`` raw values (NaN missing); ``train`` is ``[S, N]``
    boolean. Columns are taken ``block`` at a time, so the float64 working copy
    stays small however many genes there are. A gene uninformative in a split
    (constant or never observed in its training rows) has scale
    :data:`UNINFORMATIVE_SCALE` there.
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

    An uninformative gene (scale :data:`UNINFORMATIVE_SCALE`) is 0 in every row.

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


def uninformative_by_gene(genes: Sequence[str], scale: np.ndarray, split_ids: Sequence[str]) -> dict[str, list[str]]:
    """``{gene: [split ids]}``: the splits whose training rows leave each gene uninformative (genes in input order).

    ``scale`` is ``[S, G]`` (per split, the genes' scales), ``genes`` the ``G``
    names and ``split_ids`` the ``S`` split names. Genes informative in every
    split are left out.
    """
    mask = uninformative(scale)
    return {g: [split_ids[s] for s in np.flatnonzero(mask[:, j])] for j, g in enumerate(genes) if mask[:, j].any()}


def describe_uninformative(by_gene: Mapping[str, Sequence[str]], n_splits: int, most: int = 20) -> str:
    """``A (all 11 splits), B (cv_r1_f2, holdout)``: uninformative genes and their splits, at most ``most`` named."""
    items = [f"{g} ({f'all {n_splits} splits' if len(s) == n_splits else ', '.join(s)})" for g, s in by_gene.items()]
    more = f" and {len(items) - most} more" if len(items) > most else ""
    return ", ".join(items[:most]) + more
