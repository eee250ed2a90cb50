"""Small generated runs in the workflow's output layout, for the report tests (no tests in this module).

:func:`make_run` writes what the report rule reads: clean.json,
quarantine.tsv, labels.json, cohort.parquet, splits.parquet, and per unit
panels.tsv, history.parquet, metrics.tsv, predictions.parquet and
nulls.parquet; then summary.tsv and panels.tsv through the real
:func:`panelmlp.compare.compare_step`. Probabilities are drawn so that a
panel's ``signal`` separates the classes (0: none); metrics come from the real
:func:`panelmlp.metrics.classification_metrics`. Fast enough for 200 panels.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from panelmlp import compare
from panelmlp.metrics import classification_metrics, predicted_classes

HISTORY_METRICS = ("train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc")
SAMPLE_ID = "SAMPLE_ID"


@dataclass
class Spec:
    """One panel of a generated run."""

    name: str
    n_genes: int = 5
    signal: float = 0.0
    collection: str = ""


@dataclass
class Skipped:
    """A gene set of a collection that the filters leave out."""

    name: str
    collection: str
    n_listed: int
    n_found: int
    reason: str


def _labels(n: int, classes: Sequence[str]) -> pd.Series:
    """Class of each sample, the first class the most common."""
    ids = [f"S{i:03d}" for i in range(n)]
    return pd.Series([classes[i % len(classes)] if i % 4 else classes[0] for i in range(n)], index=ids)


def _splits(labels: pd.Series, classes: Sequence[str], folds: int = 5) -> pd.DataFrame:
    """A holdout split (last quarter tests) and ``folds`` interleaved CV folds of the samples."""
    ids = labels.index.to_numpy()
    n = len(ids)
    parts = [("holdout", "holdout", np.arange(n) >= n - n // 4)]
    parts += [(f"cv_r1_f{f + 1}", "cv", np.arange(n) % folds == f) for f in range(folds)]
    frames = [
        pd.DataFrame(
            {
                "split_id": s,
                "kind": k,
                "sample_id": np.concatenate([ids[~test], ids[test]]),
                "role": ["train"] * int((~test).sum()) + ["test"] * int(test.sum()),
            }
        )
        for s, k, test in parts
    ]
    table = pd.concat(frames, ignore_index=True)
    table["label"] = table["sample_id"].map(labels)
    table["y"] = table["label"].map({c: i for i, c in enumerate(classes)}).astype("int64")
    return table


def _write_common(root: Path, labels: pd.Series, classes: Sequence[str], n_genes: int, quarantined: int) -> None:
    """clean.json, quarantine.tsv, labels.json, cohort.parquet and splits.parquet."""
    n = len(labels)
    lines = [9, 33, 41, 57, 60][:quarantined] + list(range(200, 200 + max(0, quarantined - 5)))
    accounting = {
        "file": "data/raw/synthetic.csv",
        "lines_read": n + 1 + quarantined,
        "header_lines": 1,
        "blank_lines": 0,
        "data_lines": n + quarantined,
        "parsed_as_is": n - 2,
        "repaired": 2,
        "quarantined": quarantined,
        "rows_in_cohort": n,
        "repaired_lines": [5, 17],
        "quarantined_lines": lines,
        "n_columns": n_genes + 3,
        "n_genes": n_genes,
        "gene_columns": {"first": "G0000", "last": f"G{n_genes - 1:04d}"},
        "row_order": "file order",
    }
    (root / "clean.json").write_text(json.dumps(accounting), encoding="utf-8")
    quarantine = pd.DataFrame(
        {
            "line": lines,
            "sample_id": [f"Q{i}" for i in range(quarantined)],
            "reason": ["wrong number of fields (25, expected 20)", "duplicate sample id"] * (quarantined // 2)
            + ["duplicate sample id"] * (quarantined % 2),
            "text": ["Q1,1,2,<b>x</b>"] + ["Q2," + "9," * 80] * (quarantined - 1),
        }
    )
    quarantine.to_csv(root / "quarantine.tsv", sep="\t", index=False)
    counts = labels.value_counts()
    info = {
        "target": "CONDITION",
        "samples": n + 6,
        "labelled": n,
        "missing_label": 5,
        "unmatched_label": 1,
        "unmatched_values": {"unsure": 1},
        "classes": list(classes),
        "positive": classes[-1],
        "class_counts": {c: int(counts[c]) for c in classes},
        "splits": {"cv": 5, "holdout": 1},
    }
    (root / "labels.json").write_text(json.dumps(info), encoding="utf-8")
    rng = np.random.default_rng(0)
    genes = {f"G{j:04d}": rng.normal(5.0, 2.0, size=n).astype(np.float32) for j in range(n_genes)}
    table = pa.table({SAMPLE_ID: labels.index.tolist(), **genes})
    table = table.replace_schema_metadata(
        {b"panelmlp.sample_id": SAMPLE_ID.encode(), b"panelmlp.genes": json.dumps(list(genes)).encode()}
    )
    pq.write_table(table, root / "cohort.parquet")
    _splits(labels, classes).to_parquet(root / "splits.parquet", index=False)


def _proba(rng: np.random.Generator, y: np.ndarray, n_classes: int, signal: float) -> np.ndarray:
    """Class probabilities that favour the true class by ``signal``."""
    logits = 3.0 * signal * np.eye(n_classes)[y] + rng.normal(size=(len(y), n_classes))
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


@dataclass
class Split:
    """One split's training labels and test samples, as arrays."""

    split_id: str
    kind: str
    train_y: np.ndarray
    test_ids: np.ndarray
    test_y: np.ndarray


def _split_arrays(splits: pd.DataFrame) -> list[Split]:
    """The split table as one :class:`Split` per split, read once for all panels."""
    out = []
    for split_id, part in splits.groupby("split_id", sort=False):
        train, test = part[part["role"] == "train"], part[part["role"] == "test"]
        ids, y = test["sample_id"].to_numpy(dtype=object), test["y"].to_numpy()
        out.append(Split(str(split_id), str(part["kind"].iloc[0]), train["y"].to_numpy(), ids, y))
    return out


class UnitTables:
    """A unit's metrics rows, and its predictions and history as columns of arrays (one DataFrame each at the end)."""

    def __init__(self, classes: Sequence[str]) -> None:
        self.classes = list(classes)
        self.metrics: list[dict] = []
        self.predictions: dict[str, list] = {}
        self.history: dict[str, list] = {}

    @staticmethod
    def _add(columns: dict[str, list], **values: object) -> None:
        for name, value in values.items():
            columns.setdefault(name, []).append(value)

    def panel(self, spec: Spec, splits: Sequence[Split], epochs: int, seed: int) -> None:
        """Every split and model of one panel."""
        rng = np.random.default_rng(seed)
        names = np.asarray(self.classes, dtype=object)
        for sp in splits:
            for model in ("mlp", "majority", "logreg"):
                if model == "majority":
                    prior = np.bincount(sp.train_y, minlength=len(names)) / len(sp.train_y)
                    proba = np.tile(prior, (len(sp.test_y), 1))
                else:
                    proba = _proba(rng, sp.test_y, len(names), spec.signal)
                key = {"collection": spec.collection, "panel": spec.name, "model": model, "split_id": sp.split_id}
                key["kind"] = sp.kind
                sizes = {"n_train": len(sp.train_y), "n_test": len(sp.test_y)}
                self.metrics.append(key | sizes | classification_metrics(sp.test_y, proba))
                n = len(sp.test_y)
                columns = {k: np.full(n, v, dtype=object) for k, v in key.items()}
                columns |= {"sample_id": sp.test_ids, "true_label": names[sp.test_y]}
                columns["predicted_label"] = names[predicted_classes(proba)]
                columns["probability"] = proba[:, -1] if len(names) == 2 else proba.max(axis=1)
                if len(names) > 2:
                    columns |= {f"prob_{c}": proba[:, i] for i, c in enumerate(names)}
                self._add(self.predictions, **columns)
            self._add(self.history, **_history(spec, sp.split_id, sp.kind, epochs, rng))

    def write(self, out: Path) -> None:
        """metrics.tsv, predictions.parquet and history.parquet of the unit."""
        pd.DataFrame(self.metrics).to_csv(out / "metrics.tsv", sep="\t", index=False, float_format="%.6g")
        frame = {k: np.concatenate(v) for k, v in self.predictions.items()}
        pd.DataFrame(frame).to_parquet(out / "predictions.parquet", index=False)
        history = pd.DataFrame({k: np.concatenate(v) for k, v in self.history.items()})
        for column in ("collection", "panel", "split_id", "kind", "device"):
            history[column] = history[column].astype("category")
        history.to_parquet(out / "history.parquet", index=False)


def _history(spec: Spec, split_id: str, kind: str, epochs: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-epoch losses and metrics of one split: falling training loss, flat noisy test metrics."""
    epoch = np.arange(1, epochs + 1)
    names = {"collection": spec.collection, "panel": spec.name, "split_id": split_id, "kind": kind, "device": "cpu"}
    columns: dict[str, np.ndarray] = {k: np.full(epochs, v, dtype=object) for k, v in names.items()}
    columns["epoch"] = epoch.astype(np.int32)
    columns["train_loss"] = (0.7 * np.exp(-epoch / (epochs / 3))).astype(np.float32)
    columns["test_loss"] = (0.7 - 0.2 * spec.signal + 0.1 * epoch / epochs).astype(np.float32)
    for column in HISTORY_METRICS[2:]:
        noise = rng.normal(scale=0.05, size=epochs)
        columns[column] = np.clip(0.5 + 0.3 * spec.signal + noise, 0, 1).astype(np.float32)
    return columns


def _nulls(
    specs: Sequence[Spec], cv_ids: Sequence[str], permutations: int, random_panels: int, seed: int
) -> pd.DataFrame:
    """Permutation replicates of each panel and random-gene-set replicates of each size (the same draws in every unit)."""
    rows = []
    rng = np.random.default_rng(seed)
    for spec in specs:
        for r in range(1, permutations + 1):
            for s in cv_ids:
                rows.append(("permutation", spec.collection, spec.name, spec.n_genes, r, s, rng.uniform(0.3, 0.7)))
    for size in sorted({s.n_genes for s in specs}):
        pool = np.random.default_rng(size)
        for r in range(1, random_panels + 1):
            for s in cv_ids:
                rows.append(("random", "", "", size, r, s, pool.uniform(0.3, 0.7)))
    frame = pd.DataFrame(rows, columns=["kind", "collection", "panel", "size", "replicate", "split_id", "roc_auc"])
    for column in HISTORY_METRICS[:-1]:
        frame[column] = 0.5
    return frame.astype({"kind": "string", "collection": "string", "panel": "string", "split_id": "string"})


def _panel_rows(
    unit: str, specs: Sequence[Spec], skipped: Sequence[Skipped], genes: dict[str, list[str]]
) -> pd.DataFrame:
    """The unit's panels.tsv: kept panels and skipped gene sets."""
    rows = [
        {"unit": unit, "collection": s.collection, "panel": s.name, "directory": s.name, "description": f"set {s.name}"}
        | {"n_listed": s.n_genes, "n_found": s.n_genes, "coverage": 1.0, "status": "kept", "reason": "", "hint": ""}
        | {"genes": " ".join(genes[s.name]), "genes_missing": ""}
        for s in specs
    ]
    rows += [
        {"unit": unit, "collection": k.collection, "panel": k.name, "directory": k.name, "description": ""}
        | {"n_listed": k.n_listed, "n_found": k.n_found, "coverage": k.n_found / k.n_listed, "status": "skipped"}
        | {"reason": k.reason, "hint": "", "genes": "", "genes_missing": "NOPE1 NOPE2"}
        for k in skipped
    ]
    return pd.DataFrame(rows)


def _units(specs: Sequence[Spec], per_unit: int) -> list[tuple[str, list[Spec]]]:
    """One unit per named panel, and parts of at most ``per_unit`` sets per collection."""
    units = [(s.name, [s]) for s in specs if not s.collection]
    for collection in dict.fromkeys(s.collection for s in specs if s.collection):
        members = [s for s in specs if s.collection == collection]
        for j in range(0, len(members), per_unit):
            units.append((f"{collection}/part-{j // per_unit + 1:03d}", members[j : j + per_unit]))
    return units


def make_run(
    root: Path,
    specs: Sequence[Spec],
    classes: Sequence[str] = ("ctrl", "case"),
    *,
    n_samples: int = 48,
    epochs: int = 30,
    permutations: int = 0,
    random_panels: int = 0,
    skipped: Sequence[Skipped] = (),
    quarantined: int = 2,
    per_unit: int = 100,
) -> dict:
    """Write a whole run under ``root`` and return the report rule's inputs."""
    root.mkdir(parents=True, exist_ok=True)
    labels = _labels(n_samples, classes)
    n_genes = max(40, max(s.n_genes for s in specs) + 5)
    _write_common(root, labels, classes, n_genes, quarantined)
    splits = pd.read_parquet(root / "splits.parquet")
    cv_ids = [s for s in splits["split_id"].unique() if s != "holdout"]
    split_arrays = _split_arrays(splits)
    genes = {s.name: [f"G{(3 * i + j) % n_genes:04d}" for j in range(s.n_genes)] for i, s in enumerate(specs)}
    paths: dict[str, list[str]] = {k: [] for k in ("panels", "history", "metrics", "predictions", "nulls")}
    units = _units(specs, per_unit)
    first: dict[str, str] = {}
    for unit, members in units:
        first.setdefault(members[0].collection, unit)
    for u, (unit, members) in enumerate(units):
        out = root / "panels" / unit
        out.mkdir(parents=True)
        tables = UnitTables(classes)
        for i, spec in enumerate(members):
            tables.panel(spec, split_arrays, epochs, seed=1000 * u + i)
        tables.write(out)
        gone = [k for k in skipped if first.get(k.collection) == unit]
        _panel_rows(unit, members, gone, genes).to_csv(out / "panels.tsv", sep="\t", index=False)
        _nulls(members, cv_ids, permutations, random_panels, seed=u).to_parquet(out / "nulls.parquet", index=False)
        for key, name in (("panels", "panels.tsv"), ("history", "history.parquet"), ("metrics", "metrics.tsv")):
            paths[key].append(str(out / name))
        paths["predictions"].append(str(out / "predictions.parquet"))
        paths["nulls"].append(str(out / "nulls.parquet"))
    (root / "metrics").mkdir(exist_ok=True)
    compare.compare_step(
        paths["panels"],
        paths["metrics"],
        paths["nulls"],
        str(root / "metrics" / "summary.tsv"),
        str(root / "metrics" / "panels.tsv"),
        permutations,
        random_panels,
    )
    inputs: dict = {
        "accounting": str(root / "clean.json"),
        "quarantine": str(root / "quarantine.tsv"),
        "labels": str(root / "labels.json"),
        "cohort": str(root / "cohort.parquet"),
        "splits": str(root / "splits.parquet"),
        "summary": str(root / "metrics" / "summary.tsv"),
        "panels": str(root / "metrics" / "panels.tsv"),
    }
    inputs |= {k: paths[k] for k in ("history", "metrics", "predictions", "nulls")}
    return inputs


def many_specs(n: int, n_genes: int = 10, collection: str = "sets", strong: int = 1) -> list[Spec]:
    """``n`` gene sets of a collection, the first ``strong`` with a planted signal."""
    return [Spec(f"SET_{i + 1:03d}", n_genes, 1.5 if i < strong else 0.0, collection) for i in range(n)]
