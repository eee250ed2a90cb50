"""Workflow steps that need torch: train and evaluate.

Each function reads its step's inputs, calls the library and writes the outputs,
so a step runs and is tested without Snakemake. Rule scripts call one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from . import baselines, scaling
from .checkpoint import load_checkpoint, predict_scaled, save_checkpoint
from .metrics import classification_metrics
from .model import state_dict_of
from .train import HISTORY_METRICS, TrainSpec, model_set_from_scaled, train_models

log = logging.getLogger("panelmlp")


def train_step(
    scaled: str, model: Mapping, permutations: int, history_out: str, checkpoints_dir: str, permutations_out: str, threads: int = 1
) -> None:
    """scaled.parquet -> one checkpoint per split, history.parquet, permutations.parquet.

    All models of the panel (every split, and ``permutations`` label-shuffled
    copies of every cross-validation split) train together in one stacked pass.
    """
    table, meta = scaling.read_scaled(scaled)
    genes, classes = meta["genes"], meta["classes"]
    spec = TrainSpec.from_config(dict(model))
    data = model_set_from_scaled(table, genes, len(classes), permutations=permutations, seed=spec.seed)
    log.info("train: %d models (%d splits x real labels, %d permuted), device %s", len(data.keys), sum(p == 0 for _, p in data.keys), sum(p > 0 for _, p in data.keys), spec.device)
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
    perm_frame = pd.DataFrame(perm_rows, columns=["split_id", "permutation", *HISTORY_METRICS])
    perm_frame.to_parquet(permutations_out, index=False)


def evaluate_step(scaled: str, checkpoints_dir: str, panel: str, metrics_out: str, predictions_out: str, logreg_c: float = 1.0) -> pd.DataFrame:
    """Checkpoints + scaled.parquet -> metrics.tsv and predictions.parquet, MLP and baselines alike."""
    table, meta = scaling.read_scaled(scaled)
    genes, classes = meta["genes"], meta["classes"]
    n_classes = len(classes)
    rows, preds = [], []
    for split_id, part in table.groupby("split_id", sort=False):
        train = part[part["role"] == "train"]
        test = part[part["role"] == "test"]
        x_train, x_test = train[genes].to_numpy(np.float64), test[genes].to_numpy(np.float64)
        y_train, y_test = train["y"].to_numpy(), test["y"].to_numpy()
        checkpoint = load_checkpoint(Path(checkpoints_dir) / f"{split_id}.pt")
        probas = {
            "mlp": predict_scaled(checkpoint, x_test.astype(np.float32)),
            "majority": baselines.majority_proba(y_train, len(test), n_classes),
            "logreg": baselines.logreg_proba(x_train, y_train, x_test, n_classes, c=logreg_c),
        }
        for name, proba in probas.items():
            values = classification_metrics(y_test, proba)
            rows.append({"panel": panel, "model": name, "split_id": split_id, "kind": part["kind"].iloc[0], "n_train": len(train), "n_test": len(test), **values})
            predicted = proba.argmax(axis=1) if n_classes > 2 else (proba[:, 1] >= 0.5).astype(int)
            pred = pd.DataFrame(
                {
                    "panel": panel,
                    "model": name,
                    "split_id": split_id,
                    "kind": part["kind"].iloc[0],
                    "sample_id": test["sample_id"].to_numpy(),
                    "true_label": [classes[i] for i in y_test],
                    "predicted_label": [classes[i] for i in predicted],
                    "probability": proba[:, -1] if n_classes == 2 else proba.max(axis=1),
                }
            )
            preds.append(pred)
    metrics = pd.DataFrame(rows)
    metrics.to_csv(metrics_out, sep="\t", index=False, float_format="%.6g")
    pd.concat(preds, ignore_index=True).to_parquet(predictions_out, index=False)
    return metrics
