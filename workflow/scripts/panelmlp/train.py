"""Training many small MLPs as one stacked model, with memory set by the data.

Every model of a job (each panel's splits, permutation nulls and random-panel
nulls) is trained in the same pass: one forward and backward per step for all K
models, each with its own genes, its own training rows and its own labels.

Nothing is copied per model or per split. The job holds the raw expression
matrix once (samples x the genes its models use) and, per split, the mean and
standard deviation of each gene over that split's training rows. Each step
gathers the minibatch rows of every model and standardises them on the spot,
so memory is the matrix plus the models' parameters and optimiser state plus
one minibatch, whatever the number of epochs.

Randomness comes from streams, not from models. A stream is one
``(split, permutation)`` pair; its seed gives the initial weights (per input
width), the epoch shuffles and the dropout masks. Models on the same stream,
such as two panels on the same split, see the same minibatch order and, at the
same width, start from the same weights (common random numbers, which make the
comparison of a panel with random gene sets sharper). A model whose minibatches
for the epoch are used up is not stepped. So a model trained among K follows
the same trajectory as trained alone.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from .heads import Head, head_of
from .model import StackedMLP, init_weights, logit_grad, state_dict_of
from .seeds import STREAM_DROPOUT, STREAM_INIT, STREAM_LABELS, STREAM_SHUFFLE, stream_rng

log = logging.getLogger("panelmlp")

HISTORY_BLOCK_FLOATS = 500_000
"""Test logits are kept for at most this many floats before their metrics are computed (memory bound)."""

FEED_BLOCK_FLOATS = 8_000_000
"""Largest gathered input block (models x rows x genes) of one test-set forward pass."""

TEST_CACHE_FLOATS = 4_000_000
"""The tracked models' standardised test inputs are kept between epochs when they take at most this many floats."""


@dataclass
class TrainSpec:
    """Hyper-parameters of the network and its optimiser (the config's ``model``)."""

    hidden: list[int] = field(default_factory=lambda: [64])
    activation: str = "relu"
    dropout: float = 0.0
    optimizer: str = "adam"
    lr: float = 1e-3
    epochs: int = 1000
    batch_size: int = 32
    seed: int = 0
    momentum: float = 0.0
    weight_decay: float = 0.0
    device: str = "auto"
    patience: int = 0
    """Early stopping: epochs without a lower validation loss before a model stops (0: off; needs validation rows)."""

    @classmethod
    def from_config(cls, config: dict) -> TrainSpec:
        """Take the known keys of the config's ``model`` section."""
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in config.items() if k in known})


def resolve_device(device: str) -> torch.device:
    """``auto`` is cuda when a GPU is visible, else cpu."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        from .errors import PanelMlpError

        raise PanelMlpError("config model.device is cuda but no GPU is visible to this job; use auto or cpu")
    return torch.device(device)


@dataclass
class ModelSet:
    """What K models train on, without a copy of the data per model or per split.

    ``x`` is the raw ``[N, U]`` float32 matrix (NaN = missing; a missing value
    becomes the training mean). ``mean`` and ``scale`` are ``[S, U]``: per split,
    each column's training-row statistics (scale infinity: an uninformative
    gene, which feeds 0, see :mod:`panelmlp.scaling`). Model k reads columns ``cols[k]``
    (``[K, G]``; -1 pads a model with fewer inputs, which then sees zeros),
    uses the statistics of split ``split[k]``, trains on that split's ``train``
    rows and is scored on its ``test`` rows (``[S, N]`` booleans) against the
    class codes ``labels[label[k]]`` (``[L, N]``). Its randomness is stream
    ``stream[k]``, whose seed is ``streams[stream[k]] = (split_id, permutation)``.
    Models with ``tracked[k]`` get a per-epoch history; the others (nulls) are
    scored at the last epoch only.
    """

    x: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    cols: np.ndarray
    split: np.ndarray
    labels: np.ndarray
    label: np.ndarray
    stream: np.ndarray
    streams: list[tuple[str, int]]
    train: np.ndarray
    test: np.ndarray
    tracked: np.ndarray | None = None
    n_classes: int = 2
    valid: np.ndarray | None = None
    """``[S, N]`` validation rows of each split (early stopping); part of neither ``train`` nor ``test``."""
    lr: np.ndarray | None = None
    """Per-model learning rate ``[K]`` (None: the spec's)."""
    weight_decay: np.ndarray | None = None
    """Per-model weight decay ``[K]`` (None: the spec's)."""
    dropout: np.ndarray | None = None
    """Per-model dropout ``[K]`` (None: the spec's)."""
    task: str = "classification"
    """``classification`` (class codes in ``labels``) or ``regression`` (target values, one linear output)."""
    loss: str = "mse"
    """Loss of a regression target: ``mse`` or ``l1``."""

    def hyper(self, spec: TrainSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-model learning rate, weight decay and dropout, ``[K]`` each."""
        k = self.n_models

        def each(values: np.ndarray | None, default: float) -> np.ndarray:
            return np.full(k, float(default)) if values is None else np.asarray(values, dtype=np.float64)

        return each(self.lr, spec.lr), each(self.weight_decay, spec.weight_decay), each(self.dropout, spec.dropout)

    @property
    def n_models(self) -> int:
        """K."""
        return len(self.cols)

    @property
    def n_inputs(self) -> np.ndarray:
        """Each model's own number of input genes (its first layer's fan-in)."""
        return (self.cols >= 0).sum(axis=1)


@dataclass
class TrainResult:
    """The trained stack, the tracked models' per-epoch history and every model's final test scores."""

    stack: StackedMLP
    """All models, in the trainer's internal order; :attr:`position` maps a model index into it."""
    position: np.ndarray
    history: np.ndarray
    """``[epochs, tracked models, 2 + the head's metrics]``, tracked models in model order."""
    tracked: np.ndarray
    """Model indices of the history's second axis."""
    final: np.ndarray
    """``[K, 2 + metrics]``: every model's quantities at the last epoch."""
    device: str
    test_scores: np.ndarray
    """Final positive-class probability (two classes) or class probabilities, ``[K, T(, C)]``, on padded test rows."""
    test_index: np.ndarray
    """``[K, T]`` row index of the padded test rows; -1 pads."""
    n_inputs: np.ndarray
    """Each model's input width (its checkpoint's first layer)."""
    hidden: list[int] = field(default_factory=list)
    best_epoch: np.ndarray | None = None
    """``[K]`` the epoch (1-based) whose weights were kept: the best validation loss with early stopping, else the last."""
    stopped_epoch: np.ndarray | None = None
    """``[K]`` the last epoch each model trained (less than ``epochs`` when it stopped early)."""
    dropout: np.ndarray | None = None
    """``[K]`` each model's dropout (its checkpoint's layer layout depends on it)."""
    flops: float = 0.0
    """Multiply-adds x 2 of every matrix product of training and per-epoch scoring."""
    seconds: float = 0.0
    """Wall time of the training loop (after the data are on the device)."""
    workers: int = 1
    """Worker threads that trained the chunks (1: the calling thread alone)."""

    def state_dict(self, k: int) -> dict[str, torch.Tensor]:
        """Model ``k`` as a :func:`panelmlp.model.build_mlp` ``state_dict`` at its own input width."""
        dropout = None if self.dropout is None else float(self.dropout[k])
        return state_dict_of(self.stack, int(self.position[k]), self.hidden, int(self.n_inputs[k]), dropout)


def _padded_index(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``mask``, the indices of its True entries, padded with 0 (and a validity mask)."""
    counts = mask.sum(axis=1)
    width = max(int(counts.max()), 1)
    index = np.zeros((mask.shape[0], width), dtype=np.int64)
    valid = np.zeros((mask.shape[0], width), dtype=bool)
    for k in range(mask.shape[0]):
        rows = np.flatnonzero(mask[k])
        index[k, : len(rows)] = rows
        valid[k, : len(rows)] = True
    return index, valid


class _Optimizer:
    """Adam (torch's defaults: betas 0.9/0.999, eps 1e-8) or SGD over the stack's tensors.

    Models are ordered so that those still active in a step are a prefix of
    the stack, and models with the same number of steps per epoch and the same
    learning rate and weight decay form contiguous groups, each with its own
    step count (Adam's bias correction). Adam is torch's fused kernel over row
    ranges of the weight tensors, one call per learning rate and weight decay.
    Models marked not live (stopped early) are left out of every update. Every
    update reads the gradients from ``grads`` (one buffer per parameter, which
    the trainer's backward passes write), so a plan holds their slices too.
    """

    def __init__(
        self,
        stack: StackedMLP,
        spec: TrainSpec,
        group_ends: Sequence[int],
        group_lr: Sequence[float],
        group_wd: Sequence[float],
        grads: Sequence[torch.Tensor],
    ) -> None:
        if spec.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, not {spec.optimizer!r}")
        self.params = stack.params
        self.grads = list(grads)
        self.spec = spec
        self.adam = spec.optimizer == "adam"
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params] if self.adam else []
        starts = [0, *group_ends[:-1]]
        self.groups = list(zip(starts, group_ends, strict=True))
        self.group_lr = [float(v) for v in group_lr]
        self.group_wd = [float(v) for v in group_wd]
        device = self.params[0].device
        self.steps = [torch.zeros((), dtype=torch.float32, device=device) for _ in self.groups]
        self.first = [True] * len(self.groups)
        """SGD: whether a group's momentum buffer is still unset (its first update copies the gradient)."""

    def prepare(self, actives: Sequence[int], live: np.ndarray | None = None) -> None:
        """Build the tensor lists each step of an epoch updates (``actives[j]``: models active in step j).

        ``live`` (in stack order) leaves stopped models out.
        """
        self.plans = [self.plan(0, active, live) for active in actives]

    def plan(self, lo: int, hi: int, live: np.ndarray | None = None) -> tuple[list[int], dict]:
        """What one update of models ``lo .. hi`` touches: their groups, and per (lr, weight decay) the tensor lists.

        ``lo`` and ``hi`` must fall on group boundaries (each group has one step count).
        """
        live_groups: list[int] = []
        buckets: dict[tuple[float, float], dict[str, list]] = {}
        for g, (a, b) in enumerate(self.groups):
            a, b = max(a, lo), min(b, hi)
            if a >= b:
                continue
            runs = [(a, b)] if live is None else _true_runs(live, a, b)
            if not runs:
                continue
            live_groups.append(g)
            lists = buckets.setdefault(
                (self.group_lr[g], self.group_wd[g]),
                {"params": [], "grads": [], "m": [], "v": [], "steps": [], "ranges": []},
            )
            for start, stop in runs:
                lists["ranges"].append((start, stop, g))
                for i, p in enumerate(self.params):
                    lists["params"].append(p[start:stop])
                    lists["grads"].append(self.grads[i][start:stop])
                    lists["m"].append(self.m[i][start:stop])
                    if self.adam:
                        lists["v"].append(self.v[i][start:stop])
                    lists["steps"].append(self.steps[g])
        return live_groups, buckets

    def step(self, step: int) -> None:
        """Update the live models active in ``step`` of the epoch from their gradients."""
        self.apply(self.plans[step])

    def apply(self, plan: tuple[list[int], dict]) -> None:
        """One update of the models of ``plan`` (from :meth:`plan`), from their gradients."""
        spec = self.spec
        live_groups, buckets = plan
        if self.adam:
            for g in live_groups:
                self.steps[g] += 1
            for (lr, wd), lists in buckets.items():
                torch._fused_adam_(
                    lists["params"],
                    lists["grads"],
                    lists["m"],
                    lists["v"],
                    [],
                    lists["steps"],
                    lr=lr,
                    beta1=0.9,
                    beta2=0.999,
                    weight_decay=wd,
                    eps=1e-8,
                    amsgrad=False,
                    maximize=False,
                )
            return
        for (lr, wd), lists in buckets.items():
            for lo, up, g in lists["ranges"]:
                for p, grad, m in zip(self.params, self.grads, self.m, strict=True):
                    p_a, g_a, m_a = p[lo:up], grad[lo:up], m[lo:up]
                    if wd:
                        g_a = g_a.add(p_a, alpha=wd)
                    if spec.momentum:
                        if self.first[g]:
                            m_a.copy_(g_a)
                        else:
                            m_a.mul_(spec.momentum).add_(g_a)
                        g_a = m_a
                    p_a.sub_(g_a, alpha=lr)
        for g in live_groups:
            self.first[g] = False


def _true_runs(mask: np.ndarray, lo: int, hi: int) -> list[tuple[int, int]]:
    """Maximal ranges of True in ``mask[lo:hi]``, as absolute ``(start, stop)`` pairs."""
    part = np.concatenate([[False], mask[lo:hi], [False]])
    edges = np.flatnonzero(np.diff(part.astype(np.int8)))
    return [(lo + int(a), lo + int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def _epoch_orders(rngs: list[np.random.Generator], train: np.ndarray, epochs: int, width: int) -> np.ndarray:
    """Shuffled training rows of each stream for a block of epochs: ``[streams, epochs, width]``.

    Each stream draws one uniform key per row from its own generator; sorting the
    keys, with non-training rows pushed last, gives a uniform permutation of its
    training rows.
    """
    out = np.empty((len(rngs), epochs, width), dtype=np.int64)
    for k, rng in enumerate(rngs):
        keys = rng.random((epochs, train.shape[1]))
        keys[:, ~train[k]] = 2.0
        out[k] = np.argsort(keys, axis=1, kind="stable")[:, :width]
    return out


def _probe(data: ModelSet, head: Head, dtype: torch.dtype, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Two rows of one model, to ask the head how many per-epoch metrics it reports."""
    y = torch.tensor(data.labels[0][:2][None], dtype=dtype if head.float_labels else torch.long, device=device)
    out = torch.zeros((1, y.shape[1], head.outputs), dtype=dtype, device=device)
    return out, y, torch.ones((1, y.shape[1]), dtype=dtype, device=device)


class _Feed:
    """Standardised inputs of the stack's models for given rows.

    Small problems (every model's standardised matrix together within
    :data:`PRESTANDARDISED_BYTES`, e.g. a collection of short panels on a few
    hundred samples) standardise each model's columns once, with its split's
    statistics, and a step only copies rows. Larger ones (a 20,000-gene panel)
    gather on demand from the one raw matrix: whole rows with ``index_select``
    when every model reads the same columns, else element by element; then one
    fused multiply-add with per-model ``1/sd`` and ``-mean/sd`` (both 0 on
    padding columns, which thus feed zeros). Missing values become 0, the
    training mean.
    """

    def __init__(self, data: ModelSet, order: np.ndarray, dtype: torch.dtype, device: torch.device) -> None:
        cols = data.cols[order]
        pad = cols < 0
        safe = np.where(pad, 0, cols)
        split = data.split[order]
        with np.errstate(divide="ignore"):
            inv = np.where(pad, 0.0, 1.0 / data.scale[split[:, None], safe])
        shift = np.where(pad, 0.0, -data.mean[split[:, None], safe] * inv)
        n_rows, self.width = data.x.shape[0], cols.shape[1]
        self.device = device
        self.buffers = _Scratch(torch.float32, device)
        self.premade: torch.Tensor | None = None
        if len(cols) * n_rows * self.width * 4 <= PRESTANDARDISED_BYTES:
            # [K, N, G] -> [K * N, G]: model k's row r is row k * N + r.
            # In float32, like the on-demand path, so a model's inputs do not depend on which path its job took.
            values = data.x.T[safe].transpose(0, 2, 1) * inv[:, None, :].astype(np.float32) + shift[:, None, :].astype(
                np.float32
            )
            values = np.nan_to_num(values.astype(np.float32), nan=0.0)
            self.premade = torch.as_tensor(values.reshape(-1, self.width), device=device)
            self.offsets = torch.arange(len(cols), device=device)[:, None] * n_rows
            return
        self.shared = bool((cols == cols[0]).all()) and not pad.any()
        if self.shared:
            used = cols[0]
            matrix = data.x if np.array_equal(used, np.arange(data.x.shape[1])) else data.x[:, used]
            self.cols = None
        else:
            matrix = data.x
            self.cols = torch.tensor(safe, device=device)
        self.x = torch.as_tensor(np.ascontiguousarray(matrix, dtype=np.float32), device=device)
        self.flat_x = self.x.reshape(-1)
        self.stride = self.x.shape[1]
        self.inv = torch.tensor(inv[:, None, :], dtype=dtype, device=device)
        self.shift = torch.tensor(shift[:, None, :], dtype=dtype, device=device)
        self.has_nan = bool(np.isnan(matrix).any())

    def __call__(self, rows: torch.Tensor, start: int = 0, buffer: str | None = "train") -> torch.Tensor:
        """Inputs ``[k, b, G]`` of models ``start .. start+k`` for their rows ``[k, b]``.

        The result lives in the named reusable ``buffer`` (valid until the next
        call with that name), or in a new tensor when ``buffer`` is None.
        """
        k, b = rows.shape
        if self.premade is not None:
            return self.rows_at(rows + self.offsets[start : start + k], buffer)
        return self._gather(rows, start, self._store(k, b, buffer))

    def indices(self, rows: torch.Tensor, start: int) -> torch.Tensor | None:
        """For rows ``[k, E, b]`` of models ``start .. start+k`` over E epochs, their premade-row indices
        ``[E, k, b]`` (contiguous: each epoch's a ready index for :meth:`rows_at`); None on the on-demand path."""
        if self.premade is None:
            return None
        return (rows + self.offsets[start : start + rows.shape[0], :, None]).transpose(0, 1).contiguous()

    def rows_at(self, index: torch.Tensor, buffer: str | None) -> torch.Tensor:
        """Premade inputs ``[k, b, G]`` of the rows ``index`` ``[k, b]`` (contiguous) of :attr:`premade`, e.g. a
        slice of :meth:`indices`, in the named buffer (None: a new tensor)."""
        k, b = index.shape
        out = self._store(k, b, buffer)
        torch.index_select(self.premade, 0, index.view(-1), out=out.view(k * b, self.width))
        return out

    def _store(self, k: int, b: int, buffer: str | None) -> torch.Tensor:
        """Room for ``[k, b, G]`` inputs: in the named reusable buffer (:class:`_Scratch`), or a new tensor."""
        if buffer is None:
            return torch.empty((k, b, self.width), dtype=torch.float32, device=self.device)
        return self.buffers.view(buffer, (k, b, self.width))

    def _gather(self, rows: torch.Tensor, start: int, out: torch.Tensor) -> torch.Tensor:
        """On-demand inputs of models ``start ..`` for ``rows``, standardised into ``out``."""
        k, b = rows.shape
        if self.cols is None:
            torch.index_select(self.x, 0, rows.reshape(-1), out=out.view(k * b, self.width))
        else:
            index = rows[:, :, None] * self.stride + self.cols[start : start + k, None, :]
            torch.take(self.flat_x, index, out=out)
        torch.addcmul(self.shift[start : start + k], out, self.inv[start : start + k], out=out)
        if self.has_nan:
            out.nan_to_num_(nan=0.0)
        return out


PRESTANDARDISED_BYTES = 64 << 20
"""Every model's standardised inputs are made once when they take at most this much memory together."""


def _layer_flops(sizes: Sequence[int], rows: int, backward: bool) -> float:
    """Floating-point operations of one model's matrix products for ``rows`` rows."""
    forward = sum(2.0 * rows * a * b for a, b in itertools.pairwise(sizes))
    if not backward:
        return forward
    weight_grads = forward
    input_grads = sum(2.0 * rows * a * b for a, b in itertools.pairwise(sizes[1:]))
    return forward + weight_grads + input_grads


def _initial_weights(
    data: ModelSet, sizes: list[int], seed: int, order: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per layer, stacked initial weights ``[K, in, out]`` and biases ``[K, 1, out]`` (models in ``order``).

    A model starts from its stream's generator at its own input width; the
    first layer is zero-padded to the widest model. Draws are cached per
    (stream, width): every model with both in common starts alike.
    """
    n_inputs = data.n_inputs[order]
    cache: dict[tuple[int, int], list[tuple[np.ndarray, np.ndarray]]] = {}
    weights = [np.zeros((len(order), a, b), dtype=np.float32) for a, b in itertools.pairwise(sizes)]
    biases = [np.zeros((len(order), 1, b), dtype=np.float32) for b in sizes[1:]]
    for i, (stream, width) in enumerate(zip(data.stream[order], n_inputs, strict=True)):
        key = (int(stream), int(width))
        if key not in cache:
            split_id, perm = data.streams[key[0]]
            cache[key] = init_weights(stream_rng(seed, split_id, perm, STREAM_INIT), [key[1], *sizes[1:]])
        for layer, (w, b) in enumerate(cache[key]):
            weights[layer][i, : w.shape[0]] = w
            biases[layer][i, 0] = b
    return list(zip(weights, biases, strict=True))


def train_models(data: ModelSet, spec: TrainSpec, threads: int | None = None) -> TrainResult:
    """Train all K models of ``data`` together; see the module docstring.

    Deterministic on CPU for a given ``spec.seed``. ``threads`` caps torch's
    intra-op threads (the rule's ``threads``). Peak memory: the matrix, the
    per-model statistics, parameters, gradients and optimiser state, one
    minibatch, and a bounded block of test logits; none of it grows with epochs.
    """
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(spec.device)
    dtype = torch.float32
    k_models = data.n_models
    n_train_split = data.train.sum(axis=1)
    if (n_train_split[data.split] == 0).any():
        raise ValueError("every model needs at least one training row")
    bs = spec.batch_size
    own_steps = -(-n_train_split[data.split] // bs)
    tracked = np.ones(k_models, bool) if data.tracked is None else np.asarray(data.tracked, bool)
    lr_k, wd_k, drop_k = data.hyper(spec)
    hyper_keys: dict[tuple[float, float], int] = {}
    hyper_id = np.array([hyper_keys.setdefault((a, b), len(hyper_keys)) for a, b in zip(lr_k, wd_k, strict=True)])
    # Models with more steps per epoch first, so the active ones of a step are a prefix; within that,
    # one learning rate and weight decay per optimiser group; then tracked models first, so their
    # per-epoch scoring reads contiguous views.
    order = np.lexsort((~tracked, hyper_id, -own_steps))
    inverse = np.empty_like(order)
    inverse[order] = np.arange(k_models)
    steps_sorted = own_steps[order]
    change = (np.diff(steps_sorted) != 0) | (np.diff(hyper_id[order]) != 0)
    group_ends = [int(i) for i in np.flatnonzero(change) + 1] + [k_models]
    group_starts = [0, *group_ends[:-1]]
    n_train = n_train_split[data.split[order]]
    width = int(n_train.max())
    steps_per_epoch = int(steps_sorted[0])
    tracked_sorted = np.flatnonzero(tracked[order])

    head = head_of(data.task, data.n_classes, data.loss)
    sizes = [int(data.cols.shape[1]), *spec.hidden, head.outputs]
    loss_fn, metrics_fn = head.loss_and_grad, head.metrics

    init = _initial_weights(data, sizes, spec.seed, order)
    weights = [torch.from_numpy(w).to(device) for w, _ in init]
    biases = [torch.from_numpy(b).to(device) for _, b in init]
    del init
    stack = StackedMLP(weights, biases, spec.activation, spec.dropout, head.build_classes)
    # Fixed chunks of models, each small enough for its activations to stay in cache. Without early stopping
    # and dropout, a chunk trains a whole block of epochs before the next one (see _Blocks); its optimiser
    # groups then must not reach into another chunk, since a group counts its own Adam steps.
    on_cpu = device.type == "cpu"
    chunk = _chunk_models(bs, sizes, None if on_cpu else GPU_CHUNK_BYTES)
    chunk = min(chunk, _feed_models(bs, sizes[0], on_cpu))  # a wide panel's gathered minibatch stays bounded too
    n_chunks = -(-k_models // chunk)
    if k_models >= 2 * WORKER_MIN_MODELS:
        n_chunks += n_chunks % 2  # an even number, for two worker threads; whatever the threads, the same chunks
    worker_cap = max(1, min(threads or 1, n_chunks, k_models // WORKER_MIN_MODELS)) if on_cpu else 1
    even = -(-k_models // n_chunks)
    bounds = [(lo, min(k_models, lo + even)) for lo in range(0, k_models, even)]
    group_ends = sorted(set(group_ends) | {hi for _lo, hi in bounds})
    group_starts = [0, *group_ends[:-1]]
    grad_buffers = [torch.empty_like(p) for p in stack.params]
    optimizer = _Optimizer(
        stack,
        spec,
        group_ends,
        [lr_k[order[a]] for a in group_starts],
        [wd_k[order[a]] for a in group_starts],
        grad_buffers,
    )
    feed = _Feed(data, order, dtype, device)

    stream_of = torch.tensor(data.stream[order], device=device)
    label_rows = torch.tensor(data.labels, dtype=torch.long if head.class_codes else dtype, device=device)
    label_of = torch.tensor(data.label[order], device=device)
    shuffle_rngs = [stream_rng(spec.seed, sid, perm, STREAM_SHUFFLE) for sid, perm in data.streams]
    keep_sorted = 1.0 - drop_k[order]
    keeps = sorted({float(v) for v in keep_sorted if v < 1.0})
    drop_rngs = [stream_rng(spec.seed, sid, perm, STREAM_DROPOUT) for sid, perm in data.streams] if keeps else None
    stream_split = np.zeros(len(data.streams), dtype=np.int64)
    stream_split[data.stream] = data.split
    stream_train = data.train[stream_split]
    stream_steps = -(-n_train_split[stream_split] // bs)

    per_model_step = _layer_flops(sizes, 1, backward=True)
    per_model_test = _layer_flops(sizes, 1, backward=False)
    # Everything a step needs that does not change between epochs, as views.
    labels_t = torch.tensor(data.labels, dtype=dtype if head.float_labels else torch.long, device=device)
    one_labelling = data.labels.shape[0] == 1

    def part_of(lo: int, hi: int, valid: torch.Tensor) -> _ChunkPlan:
        """Models ``lo .. hi`` in one step, whose batch slots are valid where ``valid`` (rows from model 0) is."""
        n_valid = valid[lo:hi].sum(1).clamp(min=1)
        return _ChunkPlan(
            keeps=sorted({float(v) for v in keep_sorted[lo:hi] if v < 1.0}),
            keep_of=torch.tensor(keep_sorted[lo:hi], dtype=dtype, device=device)[:, None, None],
            lo=lo,
            hi=hi,
            stack=_slice(stack, lo, hi),
            grads=[g[lo:hi] for g in grad_buffers],
            streams=stream_of[lo:hi],
            valid=valid[lo:hi],
            n_valid=n_valid,
            scale=(valid[lo:hi] / n_valid[:, None]).unsqueeze(-1),
        )

    plans = []
    step_valid = []
    for step in range(steps_per_epoch):
        active = int((steps_sorted > step).sum())
        slots = step * bs + np.arange(min(bs, width - step * bs))
        valid = torch.tensor(slots[None, :] < n_train[:active, None], dtype=dtype, device=device)
        step_valid.append(valid)
        parts = [part_of(lo, min(hi, active), valid) for lo, hi in bounds if lo < active]
        plans.append(
            _StepPlan(
                active=active,
                start=step * bs,
                stop=step * bs + len(slots),
                chunks=parts,
                flops=per_model_step * active * len(slots),
            )
        )
    optimizer.prepare([p.active for p in plans])

    test_index, test_valid = _padded_index(data.test)
    test_rows = torch.tensor(test_index[data.split[order]], device=device)
    test_ok = torch.tensor(test_valid[data.split[order]], device=device)
    y_test = label_rows[label_of[:, None], test_rows]
    n_test = test_ok.sum(1).clamp(min=1).to(dtype)
    n_tracked = len(tracked_sorted)
    tracked_t = torch.tensor(tracked_sorted, device=device)
    t_width = test_rows.shape[1]
    block = max(1, min(spec.epochs, HISTORY_BLOCK_FLOATS // max(1, n_tracked * t_width * sizes[-1])))
    order_block = max(1, min(spec.epochs, HISTORY_BLOCK_FLOATS // max(1, len(data.streams) * data.x.shape[0])))
    n_quantities = 2 + int(metrics_fn(*_probe(data, head, dtype, device)).shape[1])
    history = np.zeros((spec.epochs, n_tracked, n_quantities), dtype=np.float32)
    train_loss = torch.zeros((spec.epochs, k_models), dtype=dtype, device=device)
    per_test_epoch = per_model_test * n_tracked * t_width
    flops = 0.0

    test_chunk = min(
        _chunk_models(max(bs, t_width), sizes, None if on_cpu else GPU_CHUNK_BYTES),
        _feed_models(t_width, sizes[0], on_cpu),
    )
    stopper = _EarlyStopping.create(
        data, spec, order, stack, feed, label_rows, label_of, test_chunk, dtype, device, loss_fn
    )
    # Chunk after chunk (each a whole block of epochs) when every model's epochs are its own business: no early
    # stopping (which scores every model after every epoch) and no dropout (masks drawn per epoch for all streams).
    blocked = CHUNK_BLOCKS and stopper is None and drop_rngs is None
    deferred = blocked and head.grad_only is not None
    # Each model's valid training slots [models, width], for the deferred training losses.
    slot_valid = (
        torch.tensor(np.arange(width)[None, :] < n_train[:, None], dtype=dtype, device=device) if deferred else None
    )
    ones_k = torch.ones(1, dtype=dtype, device=device)
    tracked_runs = (
        [
            run
            for lo, hi in bounds
            for run in _runs(tracked_sorted[(tracked_sorted >= lo) & (tracked_sorted < hi)], test_chunk)
        ]
        if blocked
        else _runs(tracked_sorted, test_chunk)
    )
    # The test inputs never change: keep the tracked models' standardised test rows when they are small.
    cached_inputs: dict[tuple[int, int], torch.Tensor] = {}
    if n_tracked * t_width * sizes[0] <= TEST_CACHE_FLOATS:
        for lo, hi in tracked_runs:
            cached_inputs[(lo, hi)] = feed(test_rows[lo:hi], lo, buffer=None)

    run_stacks: dict[tuple[int, int], StackedMLP] = {}

    def test_logits(ids: np.ndarray, buffer: str = "test") -> torch.Tensor:
        """Logits ``[k, T, out]`` of the models at sorted positions ``ids`` (ascending) on their test rows."""
        return test_forward(_runs(ids, test_chunk), buffer)

    def test_forward(runs: list[tuple[int, int]], buffer: str) -> torch.Tensor:
        """Test logits of the models of ``runs`` (from :func:`_runs` with ``test_chunk``)."""
        parts = []
        for lo, hi in runs:
            inputs = cached_inputs.get((lo, hi))
            if inputs is None:
                inputs = feed(test_rows[lo:hi], lo, buffer=buffer)
            view = run_stacks.get((lo, hi))
            if view is None:
                view = run_stacks[(lo, hi)] = _slice(stack, lo, hi)  # views: the updates are in place
            parts.append(view.forward(inputs)[0])
        return torch.cat(parts)

    def flush(start: int, logits: torch.Tensor) -> None:
        """Test loss and metrics of a block of epochs of the tracked models, from their logits ``[n_ep, tracked, T, out]``."""
        n_ep = logits.shape[0]
        if not n_ep:
            return
        stacked = logits.reshape(n_ep * n_tracked, *logits.shape[2:])
        yt = y_test[tracked_t].repeat(n_ep, *([1] * (y_test.dim() - 1)))
        ok = test_ok[tracked_t].repeat(n_ep, 1)
        nt = n_test[tracked_t].repeat(n_ep)
        rows, _ = loss_fn(stacked, yt, ok.to(dtype), nt)
        history[start : start + n_ep, :, 1] = (rows.sum(1) / nt).view(n_ep, n_tracked).cpu().numpy()
        values = metrics_fn(stacked, yt, ok)
        history[start : start + n_ep, :, 2:] = values.view(n_ep, n_tracked, -1).cpu().numpy()

    best_epoch = np.full(k_models, spec.epochs, dtype=np.int64)
    stopped_epoch = np.full(k_models, spec.epochs, dtype=np.int64)

    def one_step(part: _ChunkPlan, xb: torch.Tensor, yb: torch.Tensor, loss_row: torch.Tensor, masks) -> None:
        """Forward, loss and backward of one chunk's models in one step; gradients into the chunk's buffers."""
        logits, cache = part.stack.forward(xb, masks)
        row_loss, grad = loss_fn(logits, yb, part.valid, part.n_valid)
        loss_row[part.lo : part.hi] += row_loss.sum(1)
        part.stack.backward(grad, cache, masks, out=part.grads)
        if not head.output_bias:
            part.grads[-1].zero_()  # the last layer's bias has no gradient (see Head.output_bias)

    def train_blocked() -> float:
        """Train chunk after chunk, each through a whole block of epochs; returns the FLOPs.

        A model's work is the same as in the epoch-by-epoch loop (the same minibatches, chunks and products), in
        another order: its chunk's parameters, optimiser state and activations stay in cache through the block
        instead of every model's being streamed from memory in every step. Bit for bit the same numbers, except
        a one-logit head's training loss (``deferred``: scored once per block from the kept logits, its per-row
        losses summed over a model's rows at once, not step by step; the same within the last bits).
        """
        n_block = min(order_block, block)
        # A chunk goes through a block in stretches of epochs whose rows, labels and (grad_only) training outputs
        # ([models, epochs, slots]) stay within the history block's size (on a GPU, within GPU_CHUNK_BYTES).
        room = HISTORY_BLOCK_FLOATS if on_cpu else GPU_CHUNK_BYTES // 4
        stretch = max(1, room // max(1, (bounds[0][1] - bounds[0][0]) * width))
        # Per chunk and step: the chunk's models still active in the step, and their optimiser update.
        chunk_steps = []
        for lo, hi in bounds:
            steps = []
            for step, plan in enumerate(plans):
                top = min(hi, plan.active)
                if lo < top:
                    steps.append((plan, part_of(lo, top, step_valid[step]), optimizer.plan(lo, top)))
            tracked_here = tracked_sorted[(tracked_sorted >= lo) & (tracked_sorted < hi)]
            first = int(np.searchsorted(tracked_sorted, lo))
            chunk_steps.append((lo, hi, steps, _runs(tracked_here, test_chunk), len(tracked_here), first))

        fast_cache: dict[tuple[str, int], list[_ReluLogitStep] | None] = {}
        scratches: dict[str, _Scratch] = {}
        common = (
            FAST_STEPS
            and head.grad_only is logit_grad
            and head.output_bias
            and spec.activation == "relu"
            and len(spec.hidden) == 1
            and sizes[-1] == 1
        )

        fast_tests: dict[tuple[str, int], list[tuple[_ReluLogitTest, int, int]] | None] = {}

        def fast_test(entry: tuple, buffer: str) -> list[tuple[_ReluLogitTest, int, int]] | None:
            """A chunk's tracked runs as :class:`_ReluLogitTest`, each with its place among the chunk's tracked
            logits; None unless the common network's test inputs are all cached."""
            key = (buffer, entry[0])
            if key not in fast_tests:
                runs, made, at = entry[3], [], 0
                if common and all(run in cached_inputs for run in runs):
                    scratch = scratches.setdefault(buffer, _Scratch(dtype, device))
                    for lo, hi in runs:
                        view = run_stacks.get((lo, hi)) or _slice(stack, lo, hi)
                        made.append((_ReluLogitTest(view, cached_inputs[(lo, hi)], scratch), at, at + hi - lo))
                        at += hi - lo
                fast_tests[key] = made or None
            return fast_tests[key]

        def fast_steps(entry: tuple, buffer: str) -> list[_ReluLogitStep] | None:
            """A chunk's steps as :class:`_ReluLogitStep` (made once per worker buffer), or None for another network."""
            if not common:
                return None
            key = (buffer, entry[0])
            if key not in fast_cache:
                scratch = scratches.setdefault(buffer, _Scratch(dtype, device))
                fast_cache[key] = [
                    _ReluLogitStep(part.stack, part.grads, part.scale, plan.stop - plan.start, scratch)
                    for plan, part, _update in entry[2]
                ]
            return fast_cache[key]

        def run_chunk(
            entry: tuple, orders_block: torch.Tensor, epoch0: int, logits: torch.Tensor, buffer: str
        ) -> float:
            """One chunk through the epochs of a block (``buffer``: the worker's own input buffer); its FLOPs."""
            done = 0.0
            for s0 in range(0, orders_block.shape[1], stretch):
                stop = s0 + stretch
                done += run_stretch(entry, orders_block[:, s0:stop], epoch0 + s0, logits[s0:stop], buffer)
            return done

        def run_fast(
            entry: tuple,
            fast: list[_ReluLogitStep],
            indices: list[torch.Tensor],
            block_y: torch.Tensor,
            outs: torch.Tensor,
            logits: torch.Tensor,
            buffer: str,
        ) -> float:
            """The common network's stretch (see :func:`run_stretch`): each step through its _ReluLogitStep, each
            epoch's test logits through _ReluLogitTest where the test inputs are cached; its FLOPs."""
            lo, _hi, steps, test_runs, n_here, first = entry
            n_ep = outs.shape[1]
            plan_steps = [
                (
                    step,
                    index.view(n_ep, -1),
                    block_y[: part.hi - lo, :, plan.start : plan.stop],
                    outs[: part.hi - lo, :, plan.start : plan.stop],
                    update,
                    per_model_step * (part.hi - lo) * (plan.stop - plan.start),
                )
                for step, (plan, part, update), index in zip(fast, steps, indices, strict=True)
            ]
            premade = feed.premade
            tests = fast_test(entry, buffer) if n_here else None
            here = logits[:, first : first + n_here]
            done = 0.0
            for e in range(n_ep):
                for step, index, y, out, update, flops in plan_steps:
                    step(premade, index[e], y[:, e], out[:, e])
                    optimizer.apply(update)
                    done += flops
                if tests is not None:
                    now = here[e]
                    for test, a, b in tests:
                        test(now[a:b])
                elif n_here:
                    logits[e, first : first + n_here] = test_forward(test_runs, "test" + buffer)
            return done

        def run_stretch(entry: tuple, orders: torch.Tensor, epoch0: int, logits: torch.Tensor, buffer: str) -> float:
            """A chunk through the epochs of ``orders`` (``[streams, epochs, slots]``, from ``epoch0``); its FLOPs."""
            lo, hi, steps, test_runs, n_here, first = entry
            streams = stream_of[lo:hi]
            n_ep = orders.shape[1]
            block_rows = orders[streams]  # [k, n_ep, width]
            block_y = labels_t[0][block_rows] if one_labelling else labels_t[label_of[lo:hi, None, None], block_rows]
            # Where the head allows it (grad_only), a step computes the gradient alone and keeps its outputs; the
            # training losses of the stretch are then scored in one pass over them (the same per-row losses;
            # their sums over a model's rows may differ from step-by-step sums in the last bit). Never with
            # dropout (``blocked`` excludes it): this step has no masks.
            outs = torch.zeros((hi - lo, n_ep, width), dtype=dtype, device=device) if deferred else None
            # Each step's input rows of the whole stretch at once (where inputs are premade), one index per epoch.
            indices = [
                feed.indices(block_rows[: part.hi - lo, :, plan.start : plan.stop], lo) for plan, part, _ in steps
            ]
            fast = fast_steps(entry, buffer) if outs is not None and feed.premade is not None else None
            if fast is not None:
                done = run_fast(entry, fast, indices, block_y, outs, logits, buffer)
            else:
                done = 0.0
                for e in range(n_ep):
                    model_rows = block_rows[:, e]
                    epoch_y = block_y[:, e]
                    loss_row = train_loss[epoch0 + e]
                    for (plan, part, update), index in zip(steps, indices, strict=True):
                        k = part.hi - lo
                        yb = epoch_y[:k, plan.start : plan.stop]
                        if index is None:
                            xb = feed(model_rows[:k, plan.start : plan.stop], lo, buffer=buffer)
                        else:
                            xb = feed.rows_at(index[e], buffer)
                        if outs is None:
                            one_step(part, xb, yb, loss_row, None)
                        else:
                            out, cache = part.stack.forward(xb)
                            outs[:k, e, plan.start : plan.stop] = out[..., 0]
                            part.stack.backward(head.grad_only(out, yb, part.scale), cache, out=part.grads)
                            if not head.output_bias:
                                part.grads[-1].zero_()
                        optimizer.apply(update)
                        done += per_model_step * k * (plan.stop - plan.start)
                    if n_here:
                        logits[e, first : first + n_here] = test_forward(test_runs, "test" + buffer)
            if outs is not None:
                k = hi - lo
                # Slots past a model's training rows (and steps it did not take) weigh 0; ``outs`` starts at 0.
                rows, _ = loss_fn(
                    outs.view(k * n_ep, width, 1),
                    block_y.reshape(k * n_ep, width),
                    slot_valid[lo:hi].repeat_interleave(n_ep, 0),
                    ones_k.expand(k * n_ep),
                )
                train_loss[epoch0 : epoch0 + n_ep, lo:hi] += rows.sum(1).view(k, n_ep).T
            return done

        def run_worker(entries: list, orders_block: torch.Tensor, epoch0: int, logits: torch.Tensor, w: int) -> float:
            with torch.inference_mode():  # thread-local: a worker thread sets its own
                return sum(run_chunk(entry, orders_block, epoch0, logits, f"train{w}") for entry in entries)

        workers = 1
        if worker_cap > 1 and WORKER_THREADS:
            workers = worker_cap
        used_workers[0] = workers
        # With several threads, each worker thread trains its own chunks on one intra-op thread: the models of
        # a step are too small for torch to split one product well across threads, and workers meet only at the
        # end of a block. Each model's operations are the same as on one thread (the same bits).
        shares = [chunk_steps[w::workers] for w in range(workers)]
        pool = ThreadPoolExecutor(workers) if workers > 1 else None
        intra = torch.get_num_threads()
        done = 0.0
        try:
            if pool is not None:
                torch.set_num_threads(1)
            for epoch0 in range(0, spec.epochs, n_block):
                n_ep = min(n_block, spec.epochs - epoch0)
                orders_block = torch.tensor(_epoch_orders(shuffle_rngs, stream_train, n_ep, width), device=device)
                logits = torch.empty((n_ep, n_tracked, t_width, sizes[-1]), dtype=dtype, device=device)
                if pool is None:
                    done += run_worker(chunk_steps, orders_block, epoch0, logits, 0)
                else:
                    futures = [
                        pool.submit(run_worker, share, orders_block, epoch0, logits, w)
                        for w, share in enumerate(shares)
                    ]
                    done += sum(f.result() for f in futures)
                if n_tracked:
                    flush(epoch0, logits)
                    done += per_test_epoch * n_ep
        finally:
            if pool is not None:
                pool.shutdown()
                torch.set_num_threads(intra)
        return done

    used_workers = [1]
    started = time.perf_counter()
    with torch.inference_mode():
        if blocked:
            flops += train_blocked()
        else:
            pending: list[torch.Tensor] = []
            pending_start = 0
            orders_block = torch.empty(0)
            for epoch in range(spec.epochs):
                if epoch % order_block == 0:
                    n_block = min(order_block, spec.epochs - epoch)
                    orders_block = torch.tensor(
                        _epoch_orders(shuffle_rngs, stream_train, n_block, width), device=device
                    )
                orders = orders_block[:, epoch % order_block]
                epoch_masks = None
                if drop_rngs:
                    epoch_masks = _dropout_masks(
                        drop_rngs, stream_steps, bs, steps_per_epoch, spec.hidden, keeps, dtype, device
                    )
                loss_row = train_loss[epoch]
                for step, plan in enumerate(plans):
                    # The step's rows and labels of every active model at once; a chunk takes views of them.
                    rows = orders[stream_of[: plan.active], plan.start : plan.stop]
                    step_y = labels_t[0][rows] if one_labelling else labels_t[label_of[: plan.active, None], rows]
                    for part in plan.chunks:
                        if stopper is not None and not stopper.live[part.lo : part.hi].any():
                            continue  # every model of the chunk has stopped: frozen, not stepped
                        yb = step_y[part.lo : part.hi]
                        xb = feed(rows[part.lo : part.hi], part.lo)
                        masks = None
                        if epoch_masks is not None and part.keeps:
                            masks = _chunk_masks(epoch_masks, part, step, plan.stop - plan.start)
                        one_step(part, xb, yb, loss_row, masks)
                    optimizer.step(step)
                    flops += plan.flops
                if n_tracked:
                    pending.append(test_logits(tracked_sorted))
                    flops += per_test_epoch
                    if len(pending) == block:
                        flush(pending_start, torch.stack(pending))
                        pending, pending_start = [], epoch + 1
                if stopper is not None and stopper.after_epoch(epoch):
                    optimizer.prepare([p.active for p in plans], stopper.live)
                    if not stopper.live.any():
                        break
            if pending:
                flush(pending_start, torch.stack(pending))
        if stopper is not None:
            stopper.restore()
            best_epoch = stopper.best_epoch
            stopped_epoch = stopper.stopped_epoch
        final_logits = test_logits(np.arange(k_models))
        final_metrics = metrics_fn(final_logits, y_test, test_ok)
        final_rows, _ = loss_fn(final_logits, y_test, test_ok.to(dtype), n_test)
        train_loss /= torch.tensor(n_train, dtype=dtype, device=device)
        prob = head.scores(final_logits)
    seconds = time.perf_counter() - started

    loss_np = train_loss.cpu().numpy()
    history[:, :, 0] = loss_np[:, tracked_sorted]
    # Epochs after a model stopped do not exist for it.
    after_stop = np.arange(1, spec.epochs + 1)[:, None] > stopped_epoch[tracked_sorted][None, :]
    history[after_stop] = np.nan
    final = np.zeros((k_models, n_quantities), dtype=np.float32)
    final[:, 0] = loss_np[np.maximum(best_epoch, 1) - 1, np.arange(k_models)]
    final[:, 1] = (final_rows.sum(1) / n_test).cpu().numpy()
    final[:, 2:] = final_metrics.cpu().numpy()
    # Back to the caller's model order (the stack itself stays sorted; ``position`` maps into it).
    history_order = np.argsort(order[tracked_sorted], kind="stable")
    return TrainResult(
        stack=stack,
        position=inverse,
        history=history[:, history_order],
        tracked=np.sort(order[tracked_sorted]),
        final=final[inverse],
        device=str(device),
        test_scores=prob.cpu().numpy()[inverse],
        test_index=np.where(test_valid, test_index, -1)[data.split],
        n_inputs=data.n_inputs,
        hidden=list(spec.hidden),
        best_epoch=best_epoch[inverse],
        stopped_epoch=stopped_epoch[inverse],
        dropout=drop_k,
        flops=flops,
        seconds=seconds,
        workers=used_workers[0],
    )


class _EarlyStopping:
    """Per model, the validation loss after every epoch, the best epoch's weights, and when to stop.

    A model's validation rows are its split's ``valid`` rows, scored with its
    own labels (permuted ones for a permutation null). After ``patience``
    epochs without a lower validation loss it stops: it leaves every optimiser
    update, a chunk whose models have all stopped is no longer computed, and
    training ends when every model has stopped. Its weights are those of its
    best epoch. What a model does depends only on its own losses, so a model
    stopped among K stops where it would alone.
    """

    def __init__(
        self,
        stack: StackedMLP,
        patience: int,
        epochs: int,
        losses: Callable[[], torch.Tensor],
    ) -> None:
        k = stack.weights[0].shape[0]
        self.params = stack.params
        self.snapshots = [p.clone() for p in self.params]
        self.patience = patience
        self.losses = losses
        self.best = torch.full((k,), float("inf"), dtype=torch.float64, device=self.params[0].device)
        self.bad = np.zeros(k, dtype=np.int64)
        self.live = np.ones(k, dtype=bool)
        self.best_epoch = np.zeros(k, dtype=np.int64)
        self.stopped_epoch = np.full(k, epochs, dtype=np.int64)

    @classmethod
    def create(
        cls,
        data: ModelSet,
        spec: TrainSpec,
        order: np.ndarray,
        stack: StackedMLP,
        feed: _Feed,
        label_rows: torch.Tensor,
        label_of: torch.Tensor,
        chunk: int,
        dtype: torch.dtype,
        device: torch.device,
        loss_fn: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    ) -> _EarlyStopping | None:
        """The early stopping of a training run, or None when it is off (no patience or no validation rows)."""
        if not spec.patience or data.valid is None:
            return None
        if (data.valid.sum(axis=1)[data.split] == 0).any():
            raise ValueError("early stopping needs validation rows in every split")
        index, ok = _padded_index(data.valid)
        rows = torch.tensor(index[data.split[order]], device=device)
        valid = torch.tensor(ok[data.split[order]], device=device)
        y = label_rows[label_of[:, None], rows]
        n = valid.sum(1).clamp(min=1).to(dtype)
        k = len(order)
        fixed = [(lo, min(k, lo + chunk)) for lo in range(0, k, chunk)]
        cached = {}
        if k * rows.shape[1] * data.cols.shape[1] <= TEST_CACHE_FLOATS:
            cached = {(lo, hi): feed(rows[lo:hi], lo, buffer=None) for lo, hi in fixed}

        def losses() -> torch.Tensor:
            out = []
            for lo, hi in fixed:
                inputs = cached.get((lo, hi))
                if inputs is None:
                    inputs = feed(rows[lo:hi], lo, buffer="valid")
                logits = _slice(stack, lo, hi).forward(inputs)[0]
                per_row, _ = loss_fn(logits, y[lo:hi], valid[lo:hi].to(dtype), n[lo:hi])
                out.append(per_row.sum(1) / n[lo:hi])
            return torch.cat(out).to(torch.float64)

        return cls(stack, spec.patience, spec.epochs, losses)

    def after_epoch(self, epoch: int) -> bool:
        """Score epoch ``epoch`` (0-based); keep improved weights; return whether a model stopped now."""
        loss = self.losses()
        live = torch.as_tensor(self.live, device=loss.device)
        improved = (loss < self.best) & live
        improved_np = improved.cpu().numpy()
        if improved_np.any():
            index = torch.nonzero(improved).squeeze(1)
            for snapshot, p in zip(self.snapshots, self.params, strict=True):
                snapshot.index_copy_(0, index, p.index_select(0, index))
            self.best = torch.where(improved, loss, self.best)
            self.best_epoch[improved_np] = epoch + 1
        self.bad = np.where(improved_np, 0, self.bad + self.live)
        stop = self.live & (self.bad >= self.patience)
        if not stop.any():
            return False
        self.live &= ~stop
        self.stopped_epoch[stop] = epoch + 1
        return True

    def restore(self) -> None:
        """Every model's weights back to its best epoch's (the initial ones if it never improved)."""
        for snapshot, p in zip(self.snapshots, self.params, strict=True):
            p.copy_(snapshot)


class _Scratch:
    """Named reusable buffers (a feed's input buffers; a worker's step buffers: inputs, hidden activations, a second
    hidden-sized tensor, logits and their gradient), each grown to the largest request; a request gets a contiguous
    view of the front of its storage."""

    def __init__(self, dtype: torch.dtype, device: torch.device) -> None:
        self.dtype, self.device = dtype, device
        self.stores: dict[str, torch.Tensor] = {}

    def view(self, name: str, shape: tuple[int, ...]) -> torch.Tensor:
        """A tensor of ``shape`` over the front of the named store (valid until the next step that uses it)."""
        size = math.prod(shape)
        store = self.stores.get(name)
        if store is None or store.numel() < size:
            store = self.stores[name] = torch.empty(size, dtype=self.dtype, device=self.device)
        return store[:size].view(shape)


class _ReluLogitStep:
    """One training step of one chunk's models for the common network: one ReLU hidden layer, one logit, no
    dropout, inputs premade (:class:`_Feed`), the gradient alone (``Head.grad_only`` = :func:`logit_grad`).

    The operations of :meth:`StackedMLP.forward`, :func:`logit_grad` and :meth:`StackedMLP.backward`, in the same
    order on the same operands (so the same bits; tests/test_fused.py compares), written into buffers and through
    views made once: a step then creates no tensor and no view, which on these small products saves a good part
    of the time Python and torch's dispatcher spend between them.
    """

    def __init__(
        self, stack: StackedMLP, grads: Sequence[torch.Tensor], scale: torch.Tensor, rows: int, scratch: _Scratch
    ) -> None:
        (w1, w2), (b1, b2) = stack.weights, stack.biases
        k, width, hidden = w1.shape
        self.w1, self.b1, self.w2_t, self.b2 = w1, b1, w2.transpose(1, 2), b2
        self.gw1, self.gb1, self.gb2 = grads[0], grads[1], grads[3]
        self.gw2 = grads[2].view(k, 1, hidden)
        self.scale = scale
        self.x = scratch.view("x", (k, rows, width))
        self.x_rows = self.x.view(k * rows, width)
        self.x_t = self.x.transpose(1, 2)
        self.h = scratch.view("h", (k, rows, hidden))
        self.other = scratch.view("other", (k, rows, hidden))
        self.logit = scratch.view("logit", (k, rows, 1))
        self.logit_rows = self.logit.view(k, rows)
        self.g = scratch.view("g", (k, rows, 1))
        self.g_rows = self.g.view(k, rows)
        self.g_t = self.g.transpose(1, 2)

    def __call__(self, premade: torch.Tensor, index: torch.Tensor, y: torch.Tensor, out: torch.Tensor) -> None:
        """Inputs at ``index`` (flat premade rows), labels ``y`` ``[k, rows]``; the logits into ``out`` ``[k, rows]``
        and the gradients into the chunk's gradient buffers."""
        torch.index_select(premade, 0, index, out=self.x_rows)
        _relu_logit_forward(self.x, self.w1, self.b1, self.w2_t, self.b2, self.h, self.other, self.logit)
        out.copy_(self.logit_rows)
        # logit_grad: (sigmoid(o) - t) * scale
        torch.sigmoid(self.logit_rows, out=self.g_rows).sub_(y)
        self.g.mul_(self.scale)
        # backward: StackedMLP.backward with one logit and the gradient slots given
        torch.sum(self.g, dim=1, keepdim=True, out=self.gb2)
        torch.bmm(self.g_t, self.h, out=self.gw2)
        torch.mul(self.g, self.w2_t, out=self.other)
        _RELU_BACKWARD(self.other, self.h, 0, grad_input=self.other)
        torch.sum(self.other, dim=1, keepdim=True, out=self.gb1)
        torch.bmm(self.x_t, self.other, out=self.gw1)


class _ReluLogitTest:
    """The per-epoch test logits of a run of tracked models of the common network (see :class:`_ReluLogitStep`),
    from their cached standardised test inputs: :meth:`StackedMLP.forward`'s operations, the logits written
    straight into the block's logit tensor (the same bits as forward, concatenation and copy)."""

    def __init__(self, stack: StackedMLP, inputs: torch.Tensor, scratch: _Scratch) -> None:
        (w1, w2), (b1, b2) = stack.weights, stack.biases
        k, rows, hidden = inputs.shape[0], inputs.shape[1], w1.shape[2]
        self.x, self.w1, self.b1, self.w2_t, self.b2 = inputs, w1, b1, w2.transpose(1, 2), b2
        self.h = scratch.view("test h", (k, rows, hidden))
        self.other = scratch.view("test other", (k, rows, hidden))

    def __call__(self, out: torch.Tensor) -> None:
        """The logits ``[k, rows, 1]`` into ``out`` (contiguous)."""
        _relu_logit_forward(self.x, self.w1, self.b1, self.w2_t, self.b2, self.h, self.other, out)


def _relu_logit_forward(
    x: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2_t: torch.Tensor,
    b2: torch.Tensor,
    h: torch.Tensor,
    other: torch.Tensor,
    logit: torch.Tensor,
) -> None:
    """:meth:`StackedMLP.forward` of the common network into buffers: its fused ReLU path (hidden activations into
    ``h``) and its one-logit multiply-and-sum (the product into ``other``, the logits ``[k, rows, 1]`` into
    ``logit``)."""
    torch.bmm(x, w1, out=h)
    _ADD_RELU(h, b1)
    torch.mul(h, w2_t, out=other)
    torch.sum(other, -1, keepdim=True, out=logit).add_(b2)


_ADD_RELU = torch.ops.aten._add_relu_.Tensor
_RELU_BACKWARD = torch.ops.aten.threshold_backward.grad_input


@dataclass
class _ChunkPlan:
    """A slice ``lo .. hi`` of a step's active models, small enough for its activations to stay in cache."""

    keeps: list[float]
    """The chunk's distinct keep probabilities (empty when no model of it uses dropout)."""
    keep_of: torch.Tensor
    """``[k, 1, 1]`` each model's keep probability."""
    lo: int
    hi: int
    stack: StackedMLP
    grads: list[torch.Tensor]
    streams: torch.Tensor
    valid: torch.Tensor
    n_valid: torch.Tensor
    scale: torch.Tensor
    """``[k, B, 1]`` each batch slot's weight in its model's mean loss (``valid / n_valid``)."""


@dataclass
class _StepPlan:
    """The fixed part of one step of every epoch: which models step, in which chunks, on which batch slots."""

    active: int
    start: int
    stop: int
    chunks: list[_ChunkPlan]
    flops: float


WORKER_MIN_MODELS = 64
"""A worker thread of the chunk-by-chunk loop gets at least this many models (fewer: one thread does all)."""

WORKER_THREADS = True
"""With several threads, whether chunks train on worker threads of one intra-op thread each (True) or on torch's
intra-op threads (False). The numbers are the same either way. Workers are faster on a quiet machine too since the
common network's steps make no tensors or views (a 550-model job on 2 threads: 30.0 against 22.7 GFLOP/s), and
several times faster on a busy one, where each intra-op product waits at a barrier for a descheduled thread."""


CHUNK_BLOCKS = True
"""Train chunk after chunk through blocks of epochs where that is allowed (tests switch it off to compare)."""

FAST_STEPS = True
"""Step the common network (one ReLU hidden layer, one logit) through :class:`_ReluLogitStep` (tests switch it off
to compare: the same bits either way)."""

CHUNK_BYTES = 1 << 21
"""Bytes of one hidden activation tensor of a chunk of models: small enough for a chunk to stay in cache."""


GPU_CHUNK_BYTES = 1 << 28
"""On a GPU a chunk's hidden activations may take this much: there, one wide product beats many cached ones."""


def _feed_models(rows: int, width: int, on_cpu: bool) -> int:
    """Models whose gathered inputs ``[models, rows, width]`` fit in :data:`FEED_BLOCK_FLOATS` (on a GPU, in
    :data:`GPU_CHUNK_BYTES`)."""
    floats = FEED_BLOCK_FLOATS if on_cpu else GPU_CHUNK_BYTES // 4
    return max(1, floats // max(1, rows * width))


def _chunk_models(rows: int, sizes: Sequence[int], limit: int | None = None) -> int:
    """Models per chunk: each elementwise pass over ``[chunk, rows, hidden]`` then runs in cache.

    Activations of thousands of models at once (tens of MB) make every
    elementwise operation wait on memory; a few dozen models at a time run
    2-3 times faster, while a chunk still amortises the per-operation cost.
    """
    widest = max(sizes[1:]) if len(sizes) > 1 else 1
    return max(1, (CHUNK_BYTES if limit is None else limit) // (4 * rows * widest))


def _slice(stack: StackedMLP, lo: int, hi: int) -> StackedMLP:
    """Models ``lo .. hi`` of a stack, as views."""
    return StackedMLP(
        [w[lo:hi] for w in stack.weights],
        [b[lo:hi] for b in stack.biases],
        stack.activation,
        stack.dropout,
        stack.n_classes,
    )


def _runs(ids: np.ndarray, limit: int) -> list[tuple[int, int]]:
    """Ascending positions ``ids`` as ``(lo, hi)`` ranges of consecutive positions, each at most ``limit`` long."""
    out: list[tuple[int, int]] = []
    if len(ids) == 0:
        return out
    breaks = np.flatnonzero(np.diff(ids) != 1) + 1
    for run in np.split(ids, breaks):
        for start in range(0, len(run), limit):
            part = run[start : start + limit]
            out.append((int(part[0]), int(part[-1]) + 1))
    return out


def _dropout_masks(
    rngs: list[np.random.Generator],
    n_steps: np.ndarray,
    bs: int,
    steps: int,
    hidden: Sequence[int],
    keeps: Sequence[float],
    dtype: torch.dtype,
    device: torch.device,
) -> dict[float, list[torch.Tensor]]:
    """One epoch of inverted-dropout masks per keep probability and hidden layer, ``[streams, steps, bs, h]``.

    Each stream draws exactly the uniforms of its own minibatches from its own
    generator, so its masks do not depend on the streams beside it; models of
    different dropout on one stream threshold the same uniforms.
    """
    out: dict[float, list[torch.Tensor]] = {keep: [] for keep in keeps}
    for h in hidden:
        uniforms = np.ones((len(rngs), steps, bs, h))
        for k, rng in enumerate(rngs):
            own = int(n_steps[k])
            uniforms[k, :own] = rng.random((own, bs, h))
        for keep in keeps:
            out[keep].append(torch.tensor(((uniforms < keep) / keep).astype(np.float32), dtype=dtype, device=device))
    return out


def _chunk_masks(
    epoch_masks: dict[float, list[torch.Tensor]], part: _ChunkPlan, step: int, rows: int
) -> list[torch.Tensor]:
    """The masks of a chunk's models for one step: each model's own keep probability, on its own stream."""
    if len(part.keeps) == 1 and bool((part.keep_of == part.keeps[0]).all()):
        return [m[part.streams, step, :rows] for m in epoch_masks[part.keeps[0]]]
    n_layers = len(next(iter(epoch_masks.values())))
    out = []
    for layer in range(n_layers):
        combined = None
        for keep in part.keeps:
            chosen = (part.keep_of == keep).to(part.keep_of.dtype)
            term = epoch_masks[keep][layer][part.streams, step, :rows] * chosen
            combined = term if combined is None else combined + term
        no_dropout = (part.keep_of == 1.0).to(part.keep_of.dtype)
        out.append(combined + no_dropout)
    return out


def permuted_labels(y: np.ndarray, train: np.ndarray, seed: int, split_id: str, permutation: int) -> np.ndarray:
    """Labels with the training rows' labels shuffled among themselves (a permutation null)."""
    rng = stream_rng(seed, split_id, permutation, STREAM_LABELS)
    out = y.copy()
    rows = np.flatnonzero(train)
    out[rows] = y[rng.permutation(rows)]
    return out
