"""Seconds per trained model: the tutorial's loop vs panelmlp's batched trainer vs scikit-learn.

Every contender trains the tutorial's network (5 genes -> 64 ReLU -> 1 logit,
Adam lr 1e-3, batch 32, 1000 epochs) on the same 60 training and 15 test
samples, with per-epoch test metrics where the contender computes them. All run
in this one process, one after another, on one thread each, so the ratios
compare like with like.

    python bench/train_speed.py            # K = 1, 10, 100, 1000
    python bench/train_speed.py --quick    # 200 epochs, K up to 100
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np
import torch
from _common import machine, timer
from panelmlp.train import ModelSet, TrainSpec, train_models
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score
from sklearn.neural_network import MLPClassifier
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(75, 5)).astype(np.float32)
    y = (x[:, 0] + rng.normal(size=75) > 0.5).astype(np.float32)
    return x[:60], y[:60], x[60:], y[60:]


def tutorial_history(x_train, y_train, x_test, y_test, epochs: int) -> dict[str, list[float]]:
    """The tutorial's loop as written: DataLoader, autograd, scikit-learn metrics every epoch."""

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc1 = nn.Linear(5, 64)
            self.relu = nn.ReLU()
            self.fc2 = nn.Linear(64, 1)

        def forward(self, x):
            return self.fc2(self.relu(self.fc1(x)))

    torch.manual_seed(0)
    model = MLP()
    criterion = nn.BCEWithLogitsLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.001)
    xt, yt = torch.tensor(x_train), torch.tensor(y_train).unsqueeze(1)
    xs, ys = torch.tensor(x_test), torch.tensor(y_test).unsqueeze(1)
    loader = DataLoader(TensorDataset(xt, yt), batch_size=32, shuffle=True)
    history = {k: [] for k in ("loss", "accuracy", "precision", "recall", "f1")}
    for _ in range(epochs):
        model.train()
        running = 0.0
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            running += loss.item()
        history["loss"].append(running / len(loader))
        model.eval()
        with torch.no_grad():
            preds = (torch.sigmoid(model(xs)) > 0.5).float()
        history["accuracy"].append(accuracy_score(ys, preds))
        history["precision"].append(precision_score(ys, preds, zero_division=0))
        history["recall"].append(recall_score(ys, preds, zero_division=0))
        history["f1"].append(f1_score(ys, preds, zero_division=0))
    return history


def sklearn_mlp(x_train, y_train, epochs: int) -> None:
    """scikit-learn's MLPClassifier for the same network, every epoch run (no early stopping)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        MLPClassifier(
            hidden_layer_sizes=(64,),
            solver="adam",
            learning_rate_init=0.001,
            batch_size=32,
            max_iter=epochs,
            early_stopping=False,
            n_iter_no_change=epochs + 1,
            tol=0.0,
            random_state=0,
        ).fit(x_train, y_train)


def panelmlp_models(x_train, y_train, x_test, y_test, k: int, epochs: int) -> None:
    """K copies of the model (different seeds via different split ids) in one stacked pass."""
    x = np.concatenate([x_train, x_test])
    y = np.concatenate([y_train, y_test]).astype(np.int64)
    train = np.r_[np.ones(len(x_train), bool), np.zeros(len(x_test), bool)]
    g = x.shape[1]
    data = ModelSet(
        x=x,
        mean=np.zeros((1, g)),
        scale=np.ones((1, g)),
        cols=np.tile(np.arange(g), (k, 1)),
        split=np.zeros(k, int),
        labels=y[None],
        label=np.zeros(k, int),
        stream=np.arange(k),
        streams=[(f"m{i}", 0) for i in range(k)],
        train=train[None],
        test=~train[None],
    )
    train_models(data, TrainSpec(hidden=[64], epochs=epochs, batch_size=32, lr=0.001, device="cpu"), threads=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 epochs and K up to 100")
    args = parser.parse_args()
    epochs = 200 if args.quick else 1000
    ks = [1, 10, 100] if args.quick else [1, 10, 100, 1000]
    torch.set_num_threads(1)
    d = data()
    times: dict[str, float] = {}
    print(f"machine: {machine()}; torch {torch.__version__}, 1 thread; {epochs} epochs, 60 train / 15 test samples")
    with timer(times, "tutorial"):
        tutorial_history(*d, epochs)
    with timer(times, "sklearn"):
        sklearn_mlp(d[0], d[1], epochs)
    per_model = {"tutorial loop": times["tutorial"], "sklearn MLPClassifier": times["sklearn"]}
    for k in ks:
        with timer(times, f"k{k}"):
            panelmlp_models(*d, k, epochs)
        per_model[f"panelmlp K={k}"] = times[f"k{k}"] / k
    print(f"{'contender':<24}{'s/model':>10}{'vs tutorial':>14}{'vs sklearn':>12}")
    for name, sec in per_model.items():
        print(
            f"{name:<24}{sec:>10.4f}{per_model['tutorial loop'] / sec:>13.1f}x{per_model['sklearn MLPClassifier'] / sec:>11.1f}x"
        )
    tut, skl = per_model["tutorial loop"], per_model["sklearn MLPClassifier"]
    one, hundred = per_model["panelmlp K=1"], per_model.get("panelmlp K=100")
    print(f"target K=1 >= 10x the tutorial: {tut / one >= 10}; K=1 faster than sklearn: {one < skl}")
    if hundred:
        print(f"target K=100 >= 100x the tutorial: {tut / hundred >= 100}; K=100 >= 10x sklearn: {skl / hundred >= 10}")


if __name__ == "__main__":
    main()
