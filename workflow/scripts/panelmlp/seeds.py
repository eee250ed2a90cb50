"""Every seed of a run, derived in one place from ``model.seed`` (and ``split.random_state`` for the splits).

A stream is one ``(split_id, permutation)`` pair: the real labels of a
split (permutation 0) or one permuted labelling of it. Each use of a stream
(initial weights, epoch shuffles, dropout masks, permuted labels, validation
rows) is an explicit child of its seed, so a stream's numbers never depend on
what else is trained beside it or in which order. Random gene-set pools are
seeded by their size alone, so every job that needs a pool draws the same sets.
The splits themselves are scikit-learn's, from ``split.random_state``
(:mod:`panelmlp.splits`).
"""

from __future__ import annotations

import zlib

import numpy as np

STREAM_INIT, STREAM_SHUFFLE, STREAM_DROPOUT, STREAM_LABELS, STREAM_VALID = 0, 3, 6, 9, 12
"""Child seeds of a stream, one per use: initial weights, epoch shuffles, dropout masks, permuted labels,
early stopping's validation rows."""

RANDOM_SEED_TAG = 0x52414E44
"""Mixed into the seed of the random-panel draws, so they never coincide with another stream."""


def stream_seed(seed: int, split_id: str, permutation: int, purpose: int) -> np.random.SeedSequence:
    """The seed of one use (:data:`STREAM_INIT`, ...) of the stream ``(split_id, permutation)``.

    Each use is an explicit child (``spawn_key``), never a call to ``spawn``,
    whose result depends on how often it was called before: a stream's
    numbers must not depend on what else is trained beside it.
    """
    return np.random.SeedSequence([seed, zlib.crc32(split_id.encode()), permutation], spawn_key=(purpose,))


def stream_rng(seed: int, split_id: str, permutation: int, purpose: int) -> np.random.Generator:
    """A fresh generator for one use of one stream (see :func:`stream_seed`)."""
    return np.random.default_rng(stream_seed(seed, split_id, permutation, purpose))


def pool_rng(seed: int, size: int) -> np.random.Generator:
    """The generator of the random gene sets of one pool size: ``(seed, size)`` alone decide its draws."""
    return np.random.default_rng(np.random.SeedSequence([seed, RANDOM_SEED_TAG, size]))


def inner_fold_state(seed: int, split_id: str) -> int:
    """The ``RandomState`` seed of nested tuning's inner folds of one split (scikit-learn's splitters take one)."""
    return (seed * 1_000_003 + zlib.crc32(split_id.encode())) % (2**32)
