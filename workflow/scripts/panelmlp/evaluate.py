"""Scoring every split's test rows: the trained MLP and the baselines, side by side."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from .baselines import logreg_proba, majority_proba
from .checkpoint import load_checkpoint, predict_scaled
from .metrics import classification_metrics, predicted_classes
from .scaling import read_scaled

log = logging.getLogger("panelmlp")


def evaluate_step(
    scaled: str, checkpoints_dir: str, panel: str, metrics_out: str, predictions_out: str, logreg_c: float = 1.0
) -> pd.DataFrame:
    """Checkpoints + scaled.parquet -> metrics.tsv and predictions.parquet, MLP and baselines alike."""
    table, meta = read_scaled(scaled)
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
            "majority": majority_proba(y_train, len(test), n_classes),
            "logreg": logreg_proba(x_train, y_train, x_test, n_classes, c=logreg_c),
        }
        for name, proba in probas.items():
            values = classification_metrics(y_test, proba)
            rows.append(
                {
                    "panel": panel,
                    "model": name,
                    "split_id": split_id,
                    "kind": part["kind"].iloc[0],
                    "n_train": len(train),
                    "n_test": len(test),
                    **values,
                }
            )
            predicted = predicted_classes(proba)
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
            if n_classes > 2:
                for c, name_c in enumerate(classes):
                    pred[f"prob_{name_c}"] = proba[:, c]
            preds.append(pred)
    metrics = pd.DataFrame(rows)
    metrics.to_csv(metrics_out, sep="\t", index=False, float_format="%.6g")
    pd.concat(preds, ignore_index=True).to_parquet(predictions_out, index=False)
    return metrics
