"""The network, its hand-written gradients and the batched trainer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from panelmlp.epoch_metrics import HISTORY_METRICS, batched_metrics
from panelmlp.model import (
    StackedMLP,
    build_mlp,
    init_weights,
    loss_and_grad,
    loss_function,
    stack_state_dicts,
)
from panelmlp.train import (
    STREAM_INIT,
    STREAM_SHUFFLE,
    TEST_CACHE_FLOATS,
    ModelSet,
    TrainSpec,
    _epoch_orders,
    permuted_labels,
    stream_rng,
    train_models,
)
from sklearn import metrics as skm


def test_build_mlp_shapes_and_loss_choice():
    model = build_mlp(5, [64], 2)
    assert [type(m).__name__ for m in model] == ["Linear", "ReLU", "Linear"]
    assert model(torch.zeros(3, 5)).shape == (3, 1)
    deep = build_mlp(7, [16, 8], 4, "tanh", 0.2)
    assert [type(m).__name__ for m in deep] == ["Linear", "Tanh", "Dropout", "Linear", "Tanh", "Dropout", "Linear"]
    assert deep(torch.zeros(2, 7)).shape == (2, 4)
    assert isinstance(loss_function(2), torch.nn.BCEWithLogitsLoss)
    assert isinstance(loss_function(3), torch.nn.CrossEntropyLoss)


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "leaky_relu"])
@pytest.mark.parametrize(("n_classes", "dropout"), [(2, 0.0), (3, 0.0), (2, 0.3)])
def test_hand_written_gradients_match_autograd(activation, n_classes, dropout):
    torch.manual_seed(0)
    models = [build_mlp(4, [6, 5], n_classes, activation, dropout) for _ in range(3)]
    weights, biases = stack_state_dicts(models, [6, 5], dropout)
    weights = [w.double().requires_grad_() for w in weights]
    biases = [b.double().requires_grad_() for b in biases]
    stack = StackedMLP(weights, biases, activation, dropout, n_classes)
    x = torch.randn(3, 7, 4, dtype=torch.float64)
    y = torch.randint(0, n_classes, (3, 7))
    valid = torch.ones(3, 7, dtype=torch.float64)
    valid[1, 5:] = 0
    n_valid = valid.sum(1)
    masks = None
    if dropout:
        masks = [(torch.rand(3, 7, h) > dropout).double() / (1 - dropout) for h in (6, 5)]
    logits, cache = stack.forward(x, masks)
    rows, grad = loss_and_grad(logits, y, valid, n_valid)
    (rows.sum(1) / n_valid).sum().backward()
    manual = stack.backward(grad, cache, masks)
    for got, param in zip(manual, stack.params, strict=True):
        torch.testing.assert_close(got, param.grad, rtol=1e-9, atol=1e-12)
    # And the loss equals torch's own loss, model by model.
    for k in range(3):
        keep = valid[k] > 0
        out = logits[k][keep]
        target = y[k][keep]
        ref = (
            loss_function(n_classes)(out.squeeze(-1), target.double())
            if n_classes == 2
            else loss_function(n_classes)(out, target)
        )
        torch.testing.assert_close(rows[k].sum() / n_valid[k], ref)


def _data(k=3, n=50, g=5, n_classes=2, seed=1):
    """K models, one per split, on one raw matrix; split i standardises with its own training rows."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=(n, g)).astype(np.float32)
    y = rng.integers(0, n_classes, size=n)
    y[:n_classes] = np.arange(n_classes)
    train = np.zeros((k, n), dtype=bool)
    for i in range(k):
        train[i, rng.permutation(n)[: 35 + 2 * i]] = True
    train[:, :n_classes] = False
    mean = np.stack([x[t].mean(axis=0) for t in train])
    scale = np.stack([x[t].std(axis=0) for t in train])
    return ModelSet(
        x=x,
        mean=mean,
        scale=scale,
        cols=np.tile(np.arange(g), (k, 1)),
        split=np.arange(k),
        labels=y[None],
        label=np.zeros(k, dtype=int),
        stream=np.arange(k),
        streams=[(f"split{i}", 0) for i in range(k)],
        train=train,
        test=~train,
        n_classes=n_classes,
    )


def _subset(data, index):
    """Model ``index`` of ``data`` alone, with only its own split and stream."""
    s, t = data.split[index], data.stream[index]
    return ModelSet(
        x=data.x,
        mean=data.mean[[s]],
        scale=data.scale[[s]],
        cols=data.cols[[index]],
        split=np.array([0]),
        labels=data.labels[[data.label[index]]],
        label=np.array([0]),
        stream=np.array([0]),
        streams=[data.streams[t]],
        train=data.train[[s]],
        test=data.test[[s]],
        n_classes=data.n_classes,
    )


def _standardised(data, k):
    """Model k's standardised inputs over all rows, as the trainer sees them."""
    cols = data.cols[k][data.cols[k] >= 0]
    s = data.split[k]
    return ((data.x[:, cols] - data.mean[s, cols]) / data.scale[s, cols]).astype(np.float32)


@pytest.mark.parametrize(
    "spec",
    [
        TrainSpec(hidden=[16], epochs=40, batch_size=8, lr=0.01),
        TrainSpec(hidden=[8, 8], activation="tanh", optimizer="sgd", momentum=0.9, lr=0.05, epochs=30, batch_size=8),
        TrainSpec(hidden=[8], dropout=0.25, epochs=20, batch_size=16, weight_decay=1e-3),
    ],
)
def test_model_in_a_batch_equals_model_alone(spec):
    data = _data()
    together = train_models(data, spec)
    for k in range(3):
        alone = train_models(_subset(data, k), spec)
        np.testing.assert_allclose(alone.history[:, 0], together.history[:, k], atol=1e-5)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, together.state_dict(k)[key], atol=1e-5, rtol=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_trainer_matches_a_plain_torch_loop(optimizer):
    """Same start, same minibatches: torch.optim on nn.Sequential lands on the same weights."""
    data = _data(k=1, n=70)
    spec = TrainSpec(
        hidden=[12], epochs=25, batch_size=16, lr=0.01, optimizer=optimizer, momentum=0.5 if optimizer == "sgd" else 0.0
    )
    result = train_models(data, spec)
    init = init_weights(stream_rng(spec.seed, "split0", 0, STREAM_INIT), [5, 12, 1])
    model = build_mlp(5, [12], 2)
    model.load_state_dict(
        {
            "0.weight": torch.tensor(init[0][0].T, dtype=torch.float32),
            "0.bias": torch.tensor(init[0][1], dtype=torch.float32),
            "2.weight": torch.tensor(init[1][0].T, dtype=torch.float32),
            "2.bias": torch.tensor(init[1][1], dtype=torch.float32),
        }
    )
    opt = (
        torch.optim.Adam(model.parameters(), lr=0.01)
        if optimizer == "adam"
        else torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.5)
    )
    orders = _epoch_orders(
        [stream_rng(spec.seed, "split0", 0, STREAM_SHUFFLE)], data.train, spec.epochs, int(data.train.sum())
    )[0]
    x, y = torch.tensor(_standardised(data, 0)), torch.tensor(data.labels[0]).float()
    for epoch in range(spec.epochs):
        order = orders[epoch]
        for start in range(0, len(order), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            opt.zero_grad()
            torch.nn.functional.binary_cross_entropy_with_logits(model(x[idx]).squeeze(-1), y[idx]).backward()
            opt.step()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(result.state_dict(0)[key], value, atol=1e-5, rtol=0)


def test_training_is_deterministic_and_depends_on_the_seed():
    data = _data()
    spec = TrainSpec(hidden=[8], epochs=15, batch_size=8)
    a, b = train_models(data, spec), train_models(data, spec)
    np.testing.assert_array_equal(a.history, b.history)
    c = train_models(data, TrainSpec(hidden=[8], epochs=15, batch_size=8, seed=1))
    assert not np.array_equal(a.history, c.history)
    assert a.history.shape == (15, 3, len(HISTORY_METRICS))


def test_per_epoch_metrics_match_scikit_learn():
    data = _data(k=4, n=60)
    result = train_models(data, TrainSpec(hidden=[8], epochs=5, batch_size=16, lr=0.05))
    for k in range(4):
        rows = result.test_index[k][result.test_index[k] >= 0]
        prob = result.test_scores[k][: len(rows)]
        y = data.labels[0][rows]
        pred = (prob >= 0.5).astype(int)
        expected = [
            skm.accuracy_score(y, pred),
            skm.precision_score(y, pred, zero_division=0),
            skm.recall_score(y, pred, zero_division=0),
            skm.f1_score(y, pred, zero_division=0),
            skm.roc_auc_score(y, prob),
        ]
        np.testing.assert_allclose(result.history[-1, k, 2:], expected, atol=1e-5)
        logits = np.log(prob / (1 - prob))
        np.testing.assert_allclose(result.history[-1, k, 1], skm.log_loss(y, prob), atol=1e-4)
        assert np.isfinite(logits).all()


def test_batched_metrics_ties_and_multiclass_match_scikit_learn():
    prob = torch.tensor([[0.2, 0.2, 0.7, 0.7, 0.9, 0.0]])
    y = torch.tensor([[0, 1, 0, 1, 1, 0]])
    valid = torch.tensor([[True, True, True, True, True, False]])
    got = batched_metrics(prob, y, valid, 2)[0]
    assert got[4].item() == pytest.approx(skm.roc_auc_score([0, 1, 0, 1, 1], [0.2, 0.2, 0.7, 0.7, 0.9]))
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(3), size=30)
    t = np.r_[0, 1, 2, rng.integers(0, 3, 27)]
    got = batched_metrics(torch.tensor(p)[None], torch.tensor(t)[None], torch.ones(1, 30, dtype=bool), 3)[0].numpy()
    pred = p.argmax(1)
    expected = [
        skm.accuracy_score(t, pred),
        skm.precision_score(t, pred, average="macro", zero_division=0),
        skm.recall_score(t, pred, average="macro", zero_division=0),
        skm.f1_score(t, pred, average="macro", zero_division=0),
        skm.roc_auc_score(t, p, multi_class="ovr"),
    ]
    np.testing.assert_allclose(got[[0, 1, 2, 4]], np.array(expected)[[0, 1, 2, 4]], atol=1e-6)


def test_multiclass_training_runs_and_learns():
    rng = np.random.default_rng(0)
    n = 90
    y = np.repeat([0, 1, 2], 30)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    x[np.arange(n), y] += 3
    train = np.zeros((1, n), bool)
    train[0, rng.permutation(n)[:60]] = True
    data = ModelSet(
        x=x,
        mean=x[train[0]].mean(0, keepdims=True),
        scale=x[train[0]].std(0, keepdims=True),
        cols=np.arange(3)[None],
        split=np.array([0]),
        labels=y[None],
        label=np.array([0]),
        stream=np.array([0]),
        streams=[("s", 0)],
        train=train,
        test=~train,
        n_classes=3,
    )
    result = train_models(data, TrainSpec(hidden=[16], epochs=60, batch_size=16, lr=0.01))
    assert result.history[-1, 0, 2] > 0.85
    assert result.history[-1, 0, 0] < result.history[0, 0, 0]


def test_permuted_labels_shuffle_training_rows_only():
    y = np.array([0, 0, 1, 1, 0, 1, 0, 1])
    train = np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)
    out = permuted_labels(y, train, 0, "cv_r1_f1", 3)
    np.testing.assert_array_equal(out[~train], y[~train])
    assert sorted(out[train]) == sorted(y[train])
    np.testing.assert_array_equal(out, permuted_labels(y, train, 0, "cv_r1_f1", 3))


MEMORY_CHILD = """
import sys, json
import numpy as np
sys.path.insert(0, sys.argv[1])
from panelmlp.train import ModelSet, TrainSpec, train_models
def rss_mb(key="VmRSS:"):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
n, g, k, epochs = 400, 4000, 11, int(sys.argv[2])
rng = np.random.default_rng(0)
x = rng.normal(size=(n, g)).astype(np.float32)
train = np.zeros((k, n), bool)
for i in range(k):
    train[i, rng.permutation(n)[:320]] = True
data = ModelSet(x=x, mean=np.zeros((k, g)), scale=np.ones((k, g)), cols=np.tile(np.arange(g), (k, 1)),
                split=np.arange(k), labels=rng.integers(0, 2, n)[None], label=np.zeros(k, int), stream=np.arange(k),
                streams=[(f"s{i}", 0) for i in range(k)], train=train, test=~train)
train_models(ModelSet(x=x[:, :5].copy(), mean=data.mean[:, :5], scale=data.scale[:, :5], cols=data.cols[:, :5],
             split=data.split, labels=data.labels, label=data.label, stream=data.stream, streams=data.streams,
             train=train, test=~train), TrainSpec(epochs=1), threads=1)
base = rss_mb()
with open("/proc/self/clear_refs", "w") as handle:  # reset the peak (VmHWM) to the current RSS
    handle.write("5")
train_models(data, TrainSpec(epochs=epochs, hidden=[64]), threads=1)
print(json.dumps({"base": base, "peak": rss_mb("VmHWM:")}))
"""


def test_training_memory_does_not_grow_with_epochs():
    """Peak memory: the matrix, parameters, gradients and optimiser state, one minibatch; not epochs x models x genes."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    scripts = str(Path(__file__).resolve().parents[1] / "workflow" / "scripts")
    peaks = {}
    for epochs in (3, 30):
        out = subprocess.run(
            [sys.executable, "-c", MEMORY_CHILD, scripts, str(epochs)], capture_output=True, text=True, check=True
        )
        peaks[epochs] = json.loads(out.stdout.strip().splitlines()[-1])
    n, g, k, hidden = 400, 4000, 11, 64
    matrix_mb = n * g * 4 / 2**20
    params_mb = k * (g * hidden + 2 * hidden + 1) * 4 / 2**20
    batch_mb = k * 32 * g * 4 / 2**20
    # weights, gradients, two Adam moments, one minibatch, the kept test inputs, and a small constant
    bound = matrix_mb + 4 * params_mb + batch_mb + TEST_CACHE_FLOATS * 4 / 2**20 + 32
    for epochs, r in peaks.items():
        assert r["peak"] - r["base"] < bound, (epochs, r, bound)
    # The old trainer held 50 epochs of minibatches: 50 x 11 x 320 x 4000 x 4 B = 2.8 GB here.
    assert abs(peaks[30]["peak"] - peaks[3]["peak"]) < 16, peaks
