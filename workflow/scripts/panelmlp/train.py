"""Training many small MLPs as one stacked model.

Every model of a panel (one per split, plus permutation nulls) is trained in the
same pass: one forward and backward per step for all K models, each model with
its own initial weights, its own shuffled minibatches and its own training-set
size. A model's randomness comes only from its own seed (the run seed, its split
and its permutation index), and a model that has run out of minibatches in an
epoch is left untouched (no optimiser step), so a model trained inside a batch of
K follows the same trajectory as the same model trained alone.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .checkpoint import save_checkpoint
from .model import StackedMLP, init_weights, loss_and_grad, output_size, state_dict_of
from .scaling import read_scaled

log = logging.getLogger("panelmlp")

HISTORY_METRICS = ("train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc")
"""Per-epoch quantities of every model, in the order of :attr:`TrainResult.history`'s last axis."""


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


def model_seed(seed: int, split_id: str, permutation: int) -> np.random.SeedSequence:
    """The seed of one model, from the run seed, its split and its permutation (0 = real labels)."""
    return np.random.SeedSequence([seed, zlib.crc32(split_id.encode()), permutation])


@dataclass
class ModelSet:
    """What K models train on.

    ``x`` is ``[S, N, G]``: the N samples standardised for each of S splits.
    Model k uses ``x[split_index[k]]``, labels ``y[k]`` (``[K, N]`` integer
    classes; permuted for nulls), trains on rows ``train[k]`` and is scored on rows
    ``test[k]`` (boolean ``[K, N]``). ``keys[k]`` is ``(split_id, permutation)``.
    """

    x: np.ndarray
    y: np.ndarray
    train: np.ndarray
    test: np.ndarray
    split_index: np.ndarray
    keys: list[tuple[str, int]]
    n_classes: int = 2


@dataclass
class TrainResult:
    """Trained stack and its per-epoch history ``[epochs, K, len(HISTORY_METRICS)]``."""

    stack: StackedMLP
    history: np.ndarray
    keys: list[tuple[str, int]]
    device: str
    test_scores: np.ndarray
    """Final positive-class probability (two classes) or class probabilities, ``[K, T(, C)]``, on padded test rows."""
    test_index: np.ndarray
    """``[K, T]`` row index of the padded test rows; -1 pads."""


def _padded_index(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per model, the indices of its True rows, padded with 0 (and a validity mask)."""
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
    """Adam (torch's defaults: betas 0.9/0.999, eps 1e-8) or SGD, per model, on one flat buffer.

    All weights and biases of the stack are views into one ``[K, P]`` tensor, so an
    update is a handful of operations whatever the depth of the network. Each
    model keeps its own step count; a model not active in a step keeps its weights
    and moments unchanged.
    """

    def __init__(self, stack: StackedMLP, spec: TrainSpec) -> None:
        if spec.optimizer not in ("adam", "sgd"):
            raise ValueError(f"optimizer must be adam or sgd, not {spec.optimizer!r}")
        params = stack.params
        self.flat = torch.cat([p.flatten(1) for p in params], dim=1)
        offset = 0
        views = []
        for p in params:
            size = p[0].numel()
            views.append(self.flat[:, offset : offset + size].view(p.shape))
            offset += size
        stack.weights = views[0::2]
        stack.biases = views[1::2]
        self.spec = spec
        self.adam = spec.optimizer == "adam"
        self.m = torch.zeros_like(self.flat)
        self.v = torch.zeros_like(self.flat) if self.adam else None
        self.steps = np.zeros(self.flat.shape[0], dtype=np.int64)

    def step(self, grads: list[torch.Tensor], active: np.ndarray | None) -> None:
        """One update from per-tensor gradients; ``active`` (bool per model) is None when all models step."""
        spec = self.spec
        g = torch.cat([x.flatten(1) for x in grads], dim=1)
        if spec.weight_decay:
            g.add_(self.flat, alpha=spec.weight_decay)
        self.steps += 1 if active is None else active
        device, dtype = self.flat.device, self.flat.dtype
        gate = None if active is None else torch.tensor(active, device=device).view(-1, 1)
        if self.adam:
            beta1, beta2, eps = 0.9, 0.999, 1e-8
            if gate is None and self.steps.min() == self.steps.max():
                t = int(self.steps[0])
                self.m.lerp_(g, 1 - beta1)
                self.v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
                denom = self.v.sqrt().div_((1 - beta2**t) ** 0.5).add_(eps)
                self.flat.addcdiv_(self.m, denom, value=-spec.lr / (1 - beta1**t))
                return
            t = torch.tensor(np.maximum(self.steps, 1), dtype=dtype, device=device).view(-1, 1)
            m = self.m.lerp(g, 1 - beta1)
            v = self.v.mul(beta2).addcmul_(g, g, value=1 - beta2)
            if gate is not None:
                m = torch.where(gate, m, self.m)
                v = torch.where(gate, v, self.v)
            self.m.copy_(m)
            self.v.copy_(v)
            update = (spec.lr / (1 - beta1**t)) * m / (v.sqrt() / torch.sqrt(1 - beta2**t) + eps)
            self.flat.sub_(update if gate is None else torch.where(gate, update, 0.0))
            return
        if spec.momentum:
            first = torch.tensor(self.steps == 1, device=device).view(-1, 1)
            new = torch.where(first, g, spec.momentum * self.m + g)
            self.m.copy_(new if gate is None else torch.where(gate, new, self.m))
            g = self.m
        self.flat.sub_(spec.lr * (g if gate is None else torch.where(gate, g, 0.0)))


def _epoch_orders(rngs: list[np.random.Generator], train: np.ndarray, epochs: int, width: int) -> np.ndarray:
    """Shuffled training rows of each model for a block of epochs: ``[K, epochs, width]``.

    Each model draws one uniform key per row from its own generator; sorting the
    keys, with non-training rows pushed last, gives a uniform permutation of its
    training rows.
    """
    out = np.empty((len(rngs), epochs, width), dtype=np.int64)
    for k, rng in enumerate(rngs):
        keys = rng.random((epochs, train.shape[1]))
        keys[:, ~train[k]] = 2.0
        out[k] = np.argsort(keys, axis=1, kind="stable")[:, :width]
    return out


def batched_metrics(prob: torch.Tensor, y: torch.Tensor, valid: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Accuracy, precision, recall, F1 and ROC-AUC of every model, ``[K, 5]``.

    ``prob`` is the positive-class probability ``[K, T]`` for two classes
    (threshold 0.5) or class probabilities ``[K, T, C]``; ``y`` the true classes,
    ``valid`` marks real (not padded) rows. Two classes: the positive class's
    precision, recall and F1, zero when undefined, as scikit-learn's
    ``zero_division=0``; ROC-AUC from the Mann-Whitney statistic with ties
    counted half, NaN when a class is absent. More classes: macro averages and
    one-vs-rest macro ROC-AUC.
    """
    v = valid.to(prob.dtype)
    n = v.sum(dim=1).clamp(min=1)
    if n_classes == 2:
        pred = (prob >= 0.5).to(prob.dtype)
        truth = y.to(prob.dtype)
        accuracy = ((pred == truth).to(prob.dtype) * v).sum(1) / n
        precision, recall, f1 = _prf(pred * v, truth * v)
        auc = _auc(prob, truth * v, (1 - truth) * v)
        return torch.stack([accuracy, precision, recall, f1, auc], dim=1)
    pred = prob.argmax(dim=-1)
    accuracy = ((pred == y).to(prob.dtype) * v).sum(1) / n
    parts = []
    for c in range(n_classes):
        pc_ = (pred == c).to(prob.dtype) * v
        tc = (y == c).to(prob.dtype) * v
        p, r, f = _prf(pc_, tc)
        parts.append(torch.stack([p, r, f, _auc(prob[..., c], tc, (1 - tc) * v)], dim=1))
    macro = torch.stack(parts).mean(dim=0)
    return torch.cat([accuracy[:, None], macro], dim=1)


def _prf(pred: torch.Tensor, truth: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    tp = (pred * truth).sum(1)
    predicted = pred.sum(1)
    actual = truth.sum(1)
    precision = torch.where(predicted > 0, tp / predicted.clamp(min=1), 0.0)
    recall = torch.where(actual > 0, tp / actual.clamp(min=1), 0.0)
    denom = predicted + actual
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), 0.0)
    return precision, recall, f1


def _auc(score: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    greater = (score[:, :, None] > score[:, None, :]).to(score.dtype)
    ties = (score[:, :, None] == score[:, None, :]).to(score.dtype)
    weight = pos[:, :, None] * neg[:, None, :]
    pairs = weight.sum(dim=(1, 2))
    wins = ((greater + 0.5 * ties) * weight).sum(dim=(1, 2))
    return torch.where(pairs > 0, wins / pairs.clamp(min=1), torch.nan)


def _dropout_masks(
    rngs: list[np.random.Generator],
    n_train: np.ndarray,
    bs: int,
    steps: int,
    hidden: Sequence[int],
    keep: float,
    dtype: torch.dtype,
    device: torch.device,
) -> list[torch.Tensor]:
    """One epoch of inverted-dropout masks per hidden layer, ``[K, steps, bs, h]``.

    Each model draws exactly the masks of its own minibatches from its own
    generator, so its masks do not depend on the models beside it.
    """
    out = []
    for h in hidden:
        masks = np.zeros((len(rngs), steps, bs, h), dtype=np.float32)
        for k, rng in enumerate(rngs):
            own = -(-int(n_train[k]) // bs)
            masks[k, :own] = (rng.random((own, bs, h)) < keep) / keep
        out.append(torch.tensor(masks, dtype=dtype, device=device))
    return out


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits.squeeze(-1))
    return torch.softmax(logits, dim=-1)


def train_models(data: ModelSet, spec: TrainSpec, threads: int | None = None, epoch_block: int = 50) -> TrainResult:
    """Train all K models of ``data`` together; see the module docstring.

    Deterministic on CPU for a given ``spec.seed``. ``threads`` caps torch's
    intra-op threads (the rule's ``threads``).
    """
    if threads:
        torch.set_num_threads(threads)
    device = resolve_device(spec.device)
    dtype = torch.float32
    k_models = len(data.keys)
    n_in = data.x.shape[2]
    sizes = [n_in, *spec.hidden, output_size(data.n_classes)]
    seeds = [model_seed(spec.seed, split, perm) for split, perm in data.keys]
    init_rngs = [np.random.default_rng(s.spawn(2)[0]) for s in seeds]
    shuffle_rngs = [np.random.default_rng(s.spawn(2)[1]) for s in seeds]
    layers = [init_weights(rng, sizes) for rng in init_rngs]
    weights = [
        torch.tensor(np.stack([m[i][0] for m in layers]), dtype=dtype, device=device) for i in range(len(sizes) - 1)
    ]
    biases = [
        torch.tensor(np.stack([m[i][1] for m in layers])[:, None, :], dtype=dtype, device=device)
        for i in range(len(sizes) - 1)
    ]
    stack = StackedMLP(weights, biases, spec.activation, spec.dropout, data.n_classes)
    optimizer = _Optimizer(stack, spec)

    x = torch.tensor(data.x, dtype=dtype, device=device)
    split_of = torch.tensor(data.split_index, dtype=torch.long, device=device)
    y = torch.tensor(data.y, dtype=torch.long, device=device)
    n_train = data.train.sum(axis=1)
    if (n_train == 0).any():
        raise ValueError("every model needs at least one training row")
    width = int(n_train.max())
    bs = spec.batch_size
    steps_per_epoch = -(-width // bs)
    n_train_t = torch.tensor(n_train, dtype=dtype, device=device)
    test_index, test_valid = _padded_index(data.test)
    test_idx = torch.tensor(test_index, device=device)
    test_ok = torch.tensor(test_valid, device=device)
    x_test = x[split_of[:, None], test_idx]
    y_test = y.gather(1, test_idx)
    n_test = test_ok.sum(1).clamp(min=1).to(dtype)
    rows = torch.arange(k_models, device=device)[:, None]
    drop_rngs = [np.random.default_rng(s.spawn(3)[2]) for s in seeds] if spec.dropout > 0 else None
    keep = 1.0 - spec.dropout

    # Per step of an epoch: which batch slots hold a real row of each model.
    step_valid, step_n, step_active = [], [], []
    for step in range(steps_per_epoch):
        slots = step * bs + np.arange(min(bs, width - step * bs))
        valid = slots[None, :] < n_train[:, None]
        step_valid.append(torch.tensor(valid, dtype=dtype, device=device))
        step_n.append(torch.tensor(np.maximum(valid.sum(1), 1), dtype=dtype, device=device))
        active = valid.any(axis=1)
        step_active.append(None if active.all() else active)
    test_logits = torch.empty((spec.epochs, *x_test.shape[:2], sizes[-1]), dtype=dtype, device=device)
    train_loss = torch.zeros((spec.epochs, k_models), dtype=dtype, device=device)

    with torch.inference_mode():
        for block_start in range(0, spec.epochs, epoch_block):
            block = min(epoch_block, spec.epochs - block_start)
            orders = torch.tensor(_epoch_orders(shuffle_rngs, data.train, block, width), device=device)
            x_block = x[split_of[:, None, None], orders]
            y_block = y[rows[:, :, None], orders]
            if data.n_classes == 2:
                y_block = y_block.to(dtype)
            for e in range(block):
                epoch = block_start + e
                epoch_masks = (
                    _dropout_masks(drop_rngs, n_train, bs, steps_per_epoch, spec.hidden, keep, dtype, device)
                    if drop_rngs
                    else None
                )
                for step in range(steps_per_epoch):
                    xb = x_block[:, e, step * bs : (step + 1) * bs]
                    yb = y_block[:, e, step * bs : (step + 1) * bs]
                    masks = None
                    if epoch_masks is not None:
                        masks = [m[:, step, : xb.shape[1]] for m in epoch_masks]
                    logits, cache = stack.forward(xb, masks)
                    row_loss, grad = loss_and_grad(logits, yb, step_valid[step], step_n[step])
                    train_loss[epoch] += row_loss.sum(1)
                    optimizer.step(stack.backward(grad, cache, masks), step_active[step])
                test_logits[epoch] = stack.forward(x_test)[0]

        train_loss /= n_train_t
        history = torch.empty((spec.epochs, k_models, len(HISTORY_METRICS)), dtype=dtype, device=device)
        history[:, :, 0] = train_loss
        chunk = max(1, 2_000_000 // max(1, k_models * x_test.shape[1] ** 2))
        for start in range(0, spec.epochs, chunk):
            logits = test_logits[start : start + chunk].flatten(0, 1)
            n_ep = logits.shape[0] // k_models
            yt = y_test.repeat(n_ep, 1)
            ok = test_ok.repeat(n_ep, 1)
            test_rows, _ = loss_and_grad(logits, yt, ok.to(dtype), n_test.repeat(n_ep))
            history[start : start + n_ep, :, 1] = (test_rows.sum(1) / n_test.repeat(n_ep)).view(n_ep, k_models)
            metrics = batched_metrics(_probabilities(logits), yt, ok, data.n_classes)
            history[start : start + n_ep, :, 2:] = metrics.view(n_ep, k_models, -1)
        prob = _probabilities(test_logits[-1])

    return TrainResult(
        stack=stack,
        history=history.cpu().numpy(),
        keys=list(data.keys),
        device=str(device),
        test_scores=prob.detach().cpu().numpy(),
        test_index=np.where(test_valid, test_index, -1),
    )


def permuted_labels(y: np.ndarray, train: np.ndarray, seed: int, split_id: str, permutation: int) -> np.ndarray:
    """Labels with the training rows' labels shuffled among themselves (a permutation null)."""
    rng = np.random.default_rng(model_seed(seed, split_id, permutation).spawn(4)[3])
    out = y.copy()
    rows = np.flatnonzero(train)
    out[rows] = y[rng.permutation(rows)]
    return out


def model_set_from_scaled(
    table, genes: Sequence[str], n_classes: int, permutations: int = 0, seed: int = 0
) -> ModelSet:
    """Build the K models of a panel from its scaled table (see :mod:`panelmlp.scaling`).

    One model per split, then ``permutations`` label-shuffled copies of every
    cross-validation split. Samples are aligned across splits by sample id.
    """
    split_ids = list(dict.fromkeys(table["split_id"]))
    samples = sorted(set(table["sample_id"]))
    position = {s: i for i, s in enumerate(samples)}
    n, g = len(samples), len(genes)
    x = np.zeros((len(split_ids), n, g), dtype=np.float32)
    y = np.zeros((len(split_ids), n), dtype=np.int64)
    train = np.zeros((len(split_ids), n), dtype=bool)
    test = np.zeros((len(split_ids), n), dtype=bool)
    kinds = {}
    for s, (split_id, rows) in enumerate(table.groupby("split_id", sort=False)):
        idx = rows["sample_id"].map(position).to_numpy()
        x[s, idx] = rows[list(genes)].to_numpy(dtype=np.float32)
        y[s, idx] = rows["y"].to_numpy()
        train[s, idx] = (rows["role"] == "train").to_numpy()
        test[s, idx] = (rows["role"] == "test").to_numpy()
        kinds[split_id] = rows["kind"].iloc[0]
    keys = [(sid, 0) for sid in split_ids]
    split_index = list(range(len(split_ids)))
    ys, trains, tests = list(y), list(train), list(test)
    for p in range(1, permutations + 1):
        for s, sid in enumerate(split_ids):
            if kinds[sid] != "cv":
                continue
            keys.append((sid, p))
            split_index.append(s)
            ys.append(permuted_labels(y[s], train[s], seed, sid, p))
            trains.append(train[s])
            tests.append(test[s])
    return ModelSet(
        x=x,
        y=np.stack(ys),
        train=np.stack(trains),
        test=np.stack(tests),
        split_index=np.array(split_index),
        keys=keys,
        n_classes=n_classes,
    )


def train_step(
    scaled: str,
    model: Mapping,
    permutations: int,
    history_out: str,
    checkpoints_dir: str,
    permutations_out: str,
    threads: int = 1,
) -> None:
    """scaled.parquet -> one checkpoint per split, history.parquet, permutations.parquet.

    All models of the panel (every split, and ``permutations`` label-shuffled
    copies of every cross-validation split) train together in one stacked pass.
    """
    table, meta = read_scaled(scaled)
    genes, classes = meta["genes"], meta["classes"]
    spec = TrainSpec.from_config(dict(model))
    data = model_set_from_scaled(table, genes, len(classes), permutations=permutations, seed=spec.seed)
    log.info(
        "train: %d models (%d splits x real labels, %d permuted), device %s",
        len(data.keys),
        sum(p == 0 for _, p in data.keys),
        sum(p > 0 for _, p in data.keys),
        spec.device,
    )
    result = train_models(data, spec, threads=threads)
    epochs = np.arange(1, spec.epochs + 1)
    frames = []
    perm_rows = []
    kinds = table.groupby("split_id", sort=False)["kind"].first()
    out_dir = Path(checkpoints_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hyper = {k: v for k, v in vars(spec).items()}
    for k, (split_id, perm) in enumerate(result.keys):
        if perm == 0:
            frame = pd.DataFrame(result.history[:, k, :], columns=list(HISTORY_METRICS))
            frame.insert(0, "epoch", epochs)
            frame.insert(0, "kind", kinds[split_id])
            frame.insert(0, "split_id", split_id)
            frame["device"] = result.device
            frames.append(frame)
            scaler = meta["scalers"][split_id]
            save_checkpoint(
                out_dir / f"{split_id}.pt",
                state_dict_of(result.stack, k, spec.hidden),
                genes,
                scaler["mean"],
                scaler["scale"],
                classes,
                meta["positive"],
                hyper,
                split_id,
                result.device,
            )
        else:
            final = dict(zip(HISTORY_METRICS, result.history[-1, k, :].tolist(), strict=True))
            perm_rows.append({"split_id": split_id, "permutation": perm, **final})
    pd.concat(frames, ignore_index=True).to_parquet(history_out, index=False)
    perm_frame = pd.DataFrame(perm_rows, columns=["split_id", "permutation", *HISTORY_METRICS]).astype(
        {"split_id": "string", "permutation": "int64", **dict.fromkeys(HISTORY_METRICS, "float64")}
    )
    perm_frame.to_parquet(permutations_out, index=False)
