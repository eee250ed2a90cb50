"""One fused pass of a whole part job equals each of its models trained alone.

The pass holds panels of different sizes (zero-padded to the widest), their
permutation nulls (permuted labels on stream ``(split, p)``), random-panel
nulls (on the panel's stream ``(split, 0)``), two grid points (learning rate,
weight decay, dropout) and early stopping, on one intra-op thread and on
several. Alone, a model has only its own split, stream, labels, genes (no
padding) and hyper-parameters.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from panelmlp import train as train_module
from panelmlp.train import ModelSet, TrainSpec, permuted_labels, train_models

SPEC = TrainSpec(hidden=[16], epochs=40, batch_size=16, lr=0.01, patience=6)
POINTS = [{"lr": 0.01, "weight_decay": 0.0, "dropout": 0.0}, {"lr": 0.003, "weight_decay": 1e-3, "dropout": 0.2}]


def _job(seed: int = 3) -> tuple[ModelSet, list[np.ndarray]]:
    """A part job: 3 splits x (3 panels + 2 permutations + 8 random panels) x 2 grid points, and each model's genes."""
    rng = np.random.default_rng(seed)
    n, g, n_splits = 90, 30, 3
    x = rng.normal(1.0, 2.0, size=(n, g)).astype(np.float32)
    y = (x[:, 0] - x[:, 3] + rng.normal(size=n) > 1.0).astype(np.int64)
    train = np.zeros((n_splits, n), bool)
    valid = np.zeros((n_splits, n), bool)
    for s in range(n_splits):
        perm = rng.permutation(n)
        train[s, perm[:55]] = True
        valid[s, perm[55:70]] = True
    test = ~(train | valid)
    mean = np.stack([x[t].mean(axis=0) for t in train])
    scale = np.stack([x[t].std(axis=0) for t in train])
    panels = [np.array([0, 3, 7]), np.array([1, 3, 5, 9, 11]), np.arange(12, 20)]
    randoms = [rng.choice(g, 5, replace=False) for _ in range(8)]
    labels = [y]
    genes, split, label, stream_names, point_of, real = [], [], [], [], [], []
    for s in range(n_splits):
        for p_i, _point in enumerate(POINTS):
            for i, cols in enumerate([*panels, *randoms]):  # real panels and random-panel nulls: stream (split, 0)
                real.append(i < len(panels))  # tracked (per-epoch history), as fit tracks real panels
                genes.append(cols)
                split.append(s)
                label.append(0)
                stream_names.append((f"cv{s}", 0))
                point_of.append(p_i)
            for perm in (1, 2):  # permutation nulls of the 5-gene panel: stream (split, perm), own labels
                labels.append(permuted_labels(y, train[s], SPEC.seed, f"cv{s}", perm))
                real.append(False)
                genes.append(panels[1])
                split.append(s)
                label.append(len(labels) - 1)
                stream_names.append((f"cv{s}", perm))
                point_of.append(p_i)
    unique = list(dict.fromkeys(stream_names))
    width = max(len(c) for c in genes)
    padded = np.full((len(genes), width), -1, dtype=np.int64)
    for i, cols in enumerate(genes):
        padded[i, : len(cols)] = cols

    def per_model(key: str) -> np.ndarray:
        return np.array([POINTS[p][key] for p in point_of], dtype=float)

    data = ModelSet(
        x=x,
        mean=mean,
        scale=scale,
        cols=padded,
        split=np.array(split),
        labels=np.stack(labels),
        label=np.array(label),
        stream=np.array([unique.index(name) for name in stream_names]),
        streams=unique,
        train=train,
        test=test,
        valid=valid,
        tracked=np.array(real),
        lr=per_model("lr"),
        weight_decay=per_model("weight_decay"),
        dropout=per_model("dropout"),
    )
    return data, genes


def _alone(data: ModelSet, genes: list[np.ndarray], k: int) -> ModelSet:
    """Model ``k`` with only its own split, stream, labels, genes and hyper-parameters."""
    s = data.split[k]
    return dataclasses.replace(
        data,
        mean=data.mean[[s]],
        scale=data.scale[[s]],
        cols=genes[k][None],
        split=np.array([0]),
        labels=data.labels[[data.label[k]]],
        label=np.array([0]),
        stream=np.array([0]),
        streams=[data.streams[data.stream[k]]],
        train=data.train[[s]],
        test=data.test[[s]],
        valid=None if data.valid is None else data.valid[[s]],
        tracked=np.array([True]),
        lr=data.lr[[k]],
        weight_decay=data.weight_decay[[k]],
        dropout=data.dropout[[k]],
    )


@pytest.fixture(scope="module")
def job() -> tuple[ModelSet, list[np.ndarray]]:
    return _job()


CHUNK_MODELS = 40
"""Models per chunk in these tests (hidden 16, batch 16), so that the job's pass has two chunks."""


@pytest.fixture(scope="module")
def fused(job) -> dict[int, object]:
    """The job trained in one pass on 1, 2 and 3 intra-op threads, cut into chunks of CHUNK_MODELS models."""
    data, _ = job
    out = {}
    saved = train_module.CHUNK_BYTES
    train_module.CHUNK_BYTES = 4 * 16 * 16 * CHUNK_MODELS
    try:
        for threads in (1, 2, 3):
            out[threads] = train_models(data, SPEC, threads=threads)
    finally:
        train_module.CHUNK_BYTES = saved
        torch.set_num_threads(1)
    return out


def test_the_pass_holds_every_kind_of_model(job):
    data, genes = job
    assert {len(c) for c in genes} == {3, 5, 8}
    assert len(data.streams) == 9 and data.labels.shape[0] == 13
    assert len(set(data.lr)) == 2 and (data.dropout > 0).any()


def test_threads_change_no_number(fused):
    """More intra-op threads split the same operations: bit for bit the same models."""
    one = fused[1]
    for threads in (2, 3):
        other = fused[threads]
        np.testing.assert_array_equal(one.history, other.history)
        np.testing.assert_array_equal(one.final, other.final)
        np.testing.assert_array_equal(one.test_scores, other.test_scores)
        np.testing.assert_array_equal(one.best_epoch, other.best_epoch)
        for a, b in zip(one.stack.params, other.stack.params, strict=True):
            assert torch.equal(a, b)


def test_each_model_equals_itself_trained_alone(job, fused):
    data, genes = job
    together = fused[3]
    tracked_pos = {int(m): j for j, m in enumerate(together.tracked)}
    stopped_early = 0
    for k in range(data.n_models):
        alone = train_models(_alone(data, genes, k), SPEC, threads=1)
        assert alone.best_epoch[0] == together.best_epoch[k]
        assert alone.stopped_epoch[0] == together.stopped_epoch[k]
        stopped_early += int(together.stopped_epoch[k] < SPEC.epochs)
        np.testing.assert_allclose(alone.final[0], together.final[k], atol=1e-5)
        valid = together.test_index[k] >= 0
        np.testing.assert_allclose(alone.test_scores[0][valid], together.test_scores[k][valid], atol=1e-5)
        state = together.state_dict(k)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, state[key], atol=1e-5, rtol=0)
        if k in tracked_pos:
            np.testing.assert_allclose(alone.history[:, 0], together.history[:, tracked_pos[k]], atol=1e-5)
    assert stopped_early > 0  # early stopping did act in this job


# Without early stopping and dropout (a screen's usual part job), chunks train one after another through blocks
# of epochs, on worker threads when there are several threads.
PLAIN = dataclasses.replace(SPEC, patience=0)


def _plain_job() -> tuple[ModelSet, list[np.ndarray]]:
    """The job above without validation rows and dropout: every model trains on its own, chunk by chunk."""
    data, genes = _job(seed=5)
    return dataclasses.replace(data, valid=None, dropout=np.zeros(data.n_models)), genes


@pytest.fixture(scope="module")
def plain(job) -> tuple[ModelSet, list[np.ndarray], dict[str, object]]:
    """The plain job trained by the epoch-by-epoch loop and chunk by chunk on 1, 2 and 3 threads.

    Chunks of 12 models (7 chunks), 8 models per worker at least, history blocks of 7 epochs (6 blocks, the
    last shorter): every boundary the chunk-by-chunk loop has is crossed.
    """
    data, genes = _plain_job()
    saved = (train_module.CHUNK_BYTES, train_module.WORKER_MIN_MODELS, train_module.HISTORY_BLOCK_FLOATS)
    train_module.WORKER_THREADS = True  # workers (the default) wherever the chunks allow
    n_tracked = int(data.tracked.sum())
    t_width = int(data.test.sum(axis=1).max())
    train_module.CHUNK_BYTES = 4 * 16 * 16 * 12
    train_module.WORKER_MIN_MODELS = 8
    train_module.HISTORY_BLOCK_FLOATS = 7 * n_tracked * t_width
    out = {}
    # The same models on three classes (a softmax head, whose losses come with each step's gradient).
    three = dataclasses.replace(data, labels=data.labels + (data.x[:, 1] > 1.5)[None, :], n_classes=3)
    try:
        train_module.CHUNK_BLOCKS = False
        out["epochs"] = train_models(data, PLAIN, threads=1)
        out["three epochs"] = train_models(three, PLAIN, threads=1)
        train_module.CHUNK_BLOCKS = True
        for threads in (1, 2, 3):
            out[f"blocks{threads}"] = train_models(data, PLAIN, threads=threads)
        out["three blocks"] = train_models(three, PLAIN, threads=2)
        train_module.FAST_STEPS = False  # every step through StackedMLP.forward and backward
        out["generic blocks2"] = train_models(data, PLAIN, threads=2)
    finally:
        train_module.FAST_STEPS = True
        train_module.CHUNK_BLOCKS = True
        train_module.WORKER_THREADS = True
        train_module.CHUNK_BYTES, train_module.WORKER_MIN_MODELS, train_module.HISTORY_BLOCK_FLOATS = saved
        torch.set_num_threads(1)
    return data, genes, out


def _assert_same(one, other, loss_sums: bool = False) -> None:
    """Bit for bit; with ``loss_sums``, the training loss (history and final column 0) within a few ulps."""
    if loss_sums:
        np.testing.assert_allclose(one.history[..., 0], other.history[..., 0], rtol=1e-6, atol=0)
        np.testing.assert_allclose(one.final[:, 0], other.final[:, 0], rtol=1e-6, atol=0)
        np.testing.assert_array_equal(one.history[..., 1:], other.history[..., 1:])
        np.testing.assert_array_equal(one.final[:, 1:], other.final[:, 1:])
    else:
        np.testing.assert_array_equal(one.history, other.history)
        np.testing.assert_array_equal(one.final, other.final)
    np.testing.assert_array_equal(one.test_scores, other.test_scores)
    for a, b in zip(one.stack.params, other.stack.params, strict=True):
        assert torch.equal(a, b)


def test_chunk_blocks_and_worker_threads_change_no_number(plain):
    """Chunk after chunk, on one worker thread or several, is the epoch-by-epoch loop bit for bit.

    Except for one logit's training loss: chunk by chunk, it is scored once per block of epochs from the kept
    outputs (the same per-row losses, summed over each model's rows in one pass, not step by step), so it may
    differ in the last bits. Every parameter, test metric and score is the same, and the worker threads do
    not change even that loss.
    """
    _data, _genes, out = plain
    assert [out[f"blocks{t}"].workers for t in (1, 2, 3)] == [1, 2, 3]  # the workers did share the chunks
    assert np.isfinite(out["epochs"].history).all() and out["epochs"].history.shape[0] == PLAIN.epochs
    for threads in (1, 2, 3):
        _assert_same(out["epochs"], out[f"blocks{threads}"], loss_sums=True)
        _assert_same(out["blocks1"], out[f"blocks{threads}"])
    # A head whose losses come with each step (a softmax over three classes): bit for bit throughout.
    assert out["three blocks"].workers == 2 and out["three blocks"].history.shape[-1] > 2
    _assert_same(out["three epochs"], out["three blocks"])
    # The common network's steps through _ReluLogitStep (buffers and views made once) or through the stack's
    # forward and backward: the same bits, the training loss included.
    _assert_same(out["generic blocks2"], out["blocks2"])
    # The FLOPs counted are the same work, whichever loop did it.
    assert out["blocks2"].flops == pytest.approx(out["epochs"].flops, rel=1e-12)


def test_chunk_blocks_train_each_model_as_alone(plain):
    data, genes, out = plain
    together = out["blocks2"]
    tracked_pos = {int(m): j for j, m in enumerate(together.tracked)}
    for k in range(0, data.n_models, 3):
        alone = train_models(_alone(data, genes, k), PLAIN, threads=1)
        np.testing.assert_allclose(alone.final[0], together.final[k], atol=1e-5)
        state = together.state_dict(k)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, state[key], atol=1e-5, rtol=0)
        if k in tracked_pos:
            np.testing.assert_allclose(alone.history, together.history[:, [tracked_pos[k]]], atol=1e-5)


def test_chunk_blocks_with_unequal_training_rows(monkeypatch):
    """Splits of 55, 40 and 23 training rows (4, 3 and 2 steps of 16): chunks mix models that skip steps, and a
    chunk goes through each 8-epoch block in stretches of 6 and 2 epochs. The kept one-logit outputs are
    scored with the steps a model did not take and the slots past its rows weighing nothing: the epoch loop's
    training loss within a few ulps, every other number bit for bit, on one worker thread or three."""
    data, _genes = _plain_job()
    train = data.train.copy()
    for s, keep in enumerate((55, 40, 23)):
        train[s, np.flatnonzero(train[s])[keep:]] = False
    data = dataclasses.replace(data, train=train)
    monkeypatch.setattr(train_module, "WORKER_THREADS", True)
    monkeypatch.setattr(train_module, "CHUNK_BYTES", 4 * 16 * 16 * 24)  # 78 models: 4 chunks of 20 (19)
    monkeypatch.setattr(train_module, "WORKER_MIN_MODELS", 8)
    # Blocks: 6,600 // (9 streams x 90 samples) = 8 epochs; stretches: 6,600 // (20 models x 55 slots) = 6.
    monkeypatch.setattr(train_module, "HISTORY_BLOCK_FLOATS", 6_600)
    stretches = []
    indices = train_module._Feed.indices

    def spy(self, rows, start):
        stretches.append(rows.shape[1])
        return indices(self, rows, start)

    monkeypatch.setattr(train_module._Feed, "indices", spy)
    fast_calls = []
    step_call = train_module._ReluLogitStep.__call__

    def counted(self, *args):
        fast_calls.append(1)
        return step_call(self, *args)

    monkeypatch.setattr(train_module._ReluLogitStep, "__call__", counted)
    try:
        monkeypatch.setattr(train_module, "CHUNK_BLOCKS", False)
        epochs = train_models(data, PLAIN, threads=1)
        monkeypatch.setattr(train_module, "CHUNK_BLOCKS", True)
        blocks = {threads: train_models(data, PLAIN, threads=threads) for threads in (1, 3)}
        fast = len(fast_calls)
        monkeypatch.setattr(train_module, "FAST_STEPS", False)
        generic = train_models(data, PLAIN, threads=1)
    finally:
        torch.set_num_threads(1)
    assert set(stretches) == {6, 2}  # 40 epochs: 5 blocks of 8, each cut into 6 + 2
    assert blocks[3].workers == 3
    # Every step of both block runs went through _ReluLogitStep (4 chunks x 40 epochs x 4, 3 or 2 steps of
    # each chunk's models: a chunk steps while any of its models has rows left), and none of the generic run's.
    assert fast == len(fast_calls) > 0 and fast % 2 == 0
    for result in blocks.values():
        _assert_same(epochs, result, loss_sums=True)
    _assert_same(blocks[1], blocks[3])
    _assert_same(generic, blocks[1])
