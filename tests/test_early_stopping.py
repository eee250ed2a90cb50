"""Early stopping on validation rows, and models of different hyper-parameters in one stack."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from panelmlp.train import ModelSet, TrainSpec, train_models


def _data(k=4, n=80, g=6, seed=2, with_valid=True):
    """K models, one per split; each split's rows: train, validation (a fifth of them) and test."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(n, g)).astype(np.float32)
    y = (x[:, 0] + 0.8 * rng.normal(size=n) > 0).astype(np.int64)
    train = np.zeros((k, n), dtype=bool)
    valid = np.zeros((k, n), dtype=bool)
    for i in range(k):
        perm = rng.permutation(n)
        train[i, perm[: 48 + i]] = True
        valid[i, perm[48 + i : 62 + i]] = True
    test = ~(train | valid)
    return ModelSet(
        x=x,
        mean=np.zeros((k, g)),
        scale=np.ones((k, g)),
        cols=np.tile(np.arange(g), (k, 1)),
        split=np.arange(k),
        labels=y[None],
        label=np.zeros(k, dtype=int),
        stream=np.arange(k),
        streams=[(f"split{i}", 0) for i in range(k)],
        train=train,
        test=test,
        valid=valid if with_valid else None,
    )


def _alone(data, index):
    """Model ``index`` alone, with only its own split, stream and hyper-parameters."""
    s = data.split[index]

    def one(values):
        return None if values is None else np.asarray(values)[[index]]

    return dataclasses.replace(
        data,
        mean=data.mean[[s]],
        scale=data.scale[[s]],
        cols=data.cols[[index]],
        split=np.array([0]),
        label=np.array([0]),
        stream=np.array([0]),
        streams=[data.streams[data.stream[index]]],
        train=data.train[[s]],
        test=data.test[[s]],
        valid=None if data.valid is None else data.valid[[s]],
        lr=one(data.lr),
        weight_decay=one(data.weight_decay),
        dropout=one(data.dropout),
    )


SPEC = TrainSpec(hidden=[16], epochs=150, batch_size=16, lr=0.05, patience=8)


def test_models_stop_at_best_plus_patience_and_keep_the_best_weights():
    data = _data()
    result = train_models(data, SPEC)
    assert (result.stopped_epoch < SPEC.epochs).all(), "noisy labels and lr 0.05: every model overfits and stops"
    np.testing.assert_array_equal(result.stopped_epoch, result.best_epoch + SPEC.patience)
    # History ends where each model stopped.
    for j in range(4):
        stop = result.stopped_epoch[j]
        assert np.isfinite(result.history[:stop, j]).all() and np.isnan(result.history[stop:, j]).all()
    # The kept weights are the best epoch's: training for exactly that many epochs, without stopping, lands there.
    for k in range(4):
        plain = dataclasses.replace(SPEC, patience=0, epochs=int(result.best_epoch[k]))
        again = train_models(_alone(data, k), plain)
        for key, value in again.state_dict(0).items():
            torch.testing.assert_close(result.state_dict(k)[key], value, atol=1e-5, rtol=0)
        # Final scores are those of the kept weights.
        np.testing.assert_allclose(result.final[k, 1:], again.final[0, 1:], atol=1e-5)


def test_a_model_stopped_among_k_equals_the_model_alone():
    data = _data()
    data = dataclasses.replace(data, lr=np.array([0.05, 0.02, 0.05, 0.1]), weight_decay=np.array([0.0, 1e-3, 0.0, 0.0]))
    together = train_models(data, SPEC)
    for k in range(4):
        alone = train_models(_alone(data, k), SPEC)
        assert alone.best_epoch[0] == together.best_epoch[k] and alone.stopped_epoch[0] == together.stopped_epoch[k]
        np.testing.assert_allclose(alone.history[:, 0], together.history[:, k], atol=1e-5)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, together.state_dict(k)[key], atol=1e-5, rtol=0)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_per_model_hyper_parameters_equal_each_model_trained_alone(optimizer):
    """Learning rate, weight decay and dropout may differ between models of one stack."""
    data = _data(with_valid=False)
    data = dataclasses.replace(
        data,
        lr=np.array([0.01, 0.03, 0.01, 0.003]),
        weight_decay=np.array([0.0, 0.0, 1e-2, 1e-3]),
        dropout=np.array([0.0, 0.3, 0.5, 0.3]),
    )
    spec = TrainSpec(
        hidden=[8, 8], epochs=25, batch_size=16, optimizer=optimizer, momentum=0.5 if optimizer == "sgd" else 0
    )
    together = train_models(data, spec)
    for k in range(4):
        alone = train_models(_alone(data, k), spec)
        np.testing.assert_allclose(alone.history[:, 0], together.history[:, k], atol=1e-5)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, together.state_dict(k)[key], atol=1e-5, rtol=0)
    # A model's checkpoint layout follows its own dropout.
    assert "1.weight" not in together.state_dict(0) and together.state_dict(1).keys() != together.state_dict(0).keys()


def test_training_ends_when_every_model_has_stopped():
    data = _data()
    spec = dataclasses.replace(SPEC, epochs=3000)
    result = train_models(data, spec)
    assert result.stopped_epoch.max() < 300
    assert np.isnan(result.history[result.stopped_epoch.max() :]).all()


def test_early_stopping_needs_validation_rows():
    data = _data()
    data.valid[1] = False
    with pytest.raises(ValueError, match="validation rows"):
        train_models(data, SPEC)
