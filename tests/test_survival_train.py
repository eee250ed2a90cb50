"""The Cox-loss network in the stacked trainer: a model trained among others equals it trained alone, and the
trainer's hand-written Cox gradient steps land where torch.optim on autograd's gradient lands."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from panelmlp.model import build_mlp, init_weights
from panelmlp.survival import harrell_c
from panelmlp.targets import target_kind
from panelmlp.train import STREAM_INIT, STREAM_SHUFFLE, ModelSet, TrainSpec, _epoch_orders, stream_rng, train_models


def _survival_data(k: int = 3, n: int = 60, g: int = 5, seed: int = 2) -> ModelSet:
    """K models on K splits of one cohort whose hazard rises with gene 0; labels ``[1, N, 2]`` (time, event)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, size=(n, g)).astype(np.float32)
    hazard = np.exp(0.8 * (x[:, 0] - 3.0) / 2.0)
    time = np.round(rng.exponential(300.0, n) / hazard)  # whole days: tied times occur
    event = (rng.random(n) < 0.65).astype(np.float64)
    train = np.zeros((k, n), dtype=bool)
    for i in range(k):
        train[i, rng.permutation(n)[: 40 + 3 * i]] = True
    mean = np.stack([x[t].mean(axis=0) for t in train])
    scale = np.stack([x[t].std(axis=0) for t in train])
    cols = np.tile(np.arange(g), (k, 1))
    cols[1::2] = cols[1::2][:, ::-1]  # other genes (one width: survival never stacks padded models)
    return ModelSet(
        x=x,
        mean=mean,
        scale=scale,
        cols=cols,
        split=np.arange(k),
        labels=np.stack([time, event], axis=1)[None],
        label=np.zeros(k, dtype=int),
        stream=np.arange(k),
        streams=[(f"split{i}", 0) for i in range(k)],
        train=train,
        test=~train,
        n_classes=1,
        task="survival",
    )


def _alone(data: ModelSet, k: int) -> ModelSet:
    return ModelSet(
        x=data.x,
        mean=data.mean[[k]],
        scale=data.scale[[k]],
        cols=data.cols[[k]],
        split=np.array([0]),
        labels=data.labels,
        label=np.array([0]),
        stream=np.array([0]),
        streams=[data.streams[k]],
        train=data.train[[k]],
        test=data.test[[k]],
        n_classes=1,
        task="survival",
    )


@pytest.mark.parametrize(
    "spec",
    [
        TrainSpec(hidden=[16], epochs=30, batch_size=8, lr=0.01),
        TrainSpec(hidden=[8, 8], activation="tanh", epochs=20, batch_size=16, lr=0.01, dropout=0.2),
    ],
)
def test_a_survival_model_in_a_stack_equals_it_trained_alone(spec: TrainSpec) -> None:
    data = _survival_data()
    together = train_models(data, spec)
    assert together.history.shape[-1] == 3  # train loss, test loss, C-index
    for k in range(3):
        alone = train_models(_alone(data, k), spec)
        # Equal up to float32 rounding of the loss sums (a padded model would be 1e-3 off: see below).
        np.testing.assert_allclose(alone.history[:, 0], together.history[:, k], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(alone.final[0], together.final[k], rtol=1e-6, atol=1e-7)
        for key, value in alone.state_dict(0).items():
            torch.testing.assert_close(value, together.state_dict(k)[key], atol=1e-6, rtol=0)


def test_a_survival_unit_never_pads_a_narrower_model() -> None:
    """Padding changes rounding, which the shift-invariant Cox loss would let Adam amplify (see TargetKind.pad_widths)."""
    assert not target_kind("survival").pad_widths
    assert target_kind("classification").pad_widths and target_kind("regression").pad_widths


def _cox_loss(risk: torch.Tensor, time: torch.Tensor, event: torch.Tensor) -> torch.Tensor:
    """The plain negative Cox partial log-likelihood (Breslow ties), summed over events, divided by all rows."""
    at_risk = time[None, :] >= time[:, None]  # [i, j]: j is at risk at i's time
    log_sum = torch.logsumexp(torch.where(at_risk, risk[None, :], -torch.inf), dim=1)
    return (event * (log_sum - risk)).sum() / len(risk)


def test_the_trainer_matches_torch_optim_on_the_autograd_cox_loss() -> None:
    data = _survival_data(k=1, n=70)
    spec = TrainSpec(hidden=[12], epochs=25, batch_size=16, lr=0.01)
    result = train_models(data, spec)
    init = init_weights(stream_rng(spec.seed, "split0", 0, STREAM_INIT), [5, 12, 1])
    model = build_mlp(5, [12], 1)
    model.load_state_dict(
        {
            "0.weight": torch.tensor(init[0][0].T),
            "0.bias": torch.tensor(init[0][1]),
            "2.weight": torch.tensor(init[1][0].T),
            "2.bias": torch.tensor(init[1][1]),
        }
    )
    model[2].bias.requires_grad_(False)  # shift-invariant loss: the output bias has no gradient and stays put
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=0.01)
    orders = _epoch_orders(
        [stream_rng(spec.seed, "split0", 0, STREAM_SHUFFLE)], data.train, spec.epochs, int(data.train.sum())
    )[0]
    s = 0
    z = torch.tensor(((data.x - data.mean[s]) / data.scale[s]).astype(np.float32))
    time = torch.tensor(data.labels[0][:, 0], dtype=torch.float32)
    event = torch.tensor(data.labels[0][:, 1], dtype=torch.float32)
    for epoch in range(spec.epochs):
        order = orders[epoch]
        for start in range(0, len(order), spec.batch_size):
            idx = order[start : start + spec.batch_size]
            opt.zero_grad()
            _cox_loss(model(z[idx]).squeeze(-1), time[idx], event[idx]).backward()
            opt.step()
    for key, value in model.state_dict().items():
        torch.testing.assert_close(result.state_dict(0)[key], value, atol=1e-5, rtol=0)
    # The final test C-index the trainer reports is Harrell's C of its own test risks.
    test = data.test[0]
    with torch.no_grad():
        risk = model(z[test]).squeeze(-1).numpy()
    expected = harrell_c(data.labels[0][test, 0], data.labels[0][test, 1].astype(bool), risk)
    assert result.final[0, 2] == pytest.approx(expected, abs=1e-6)
