"""The HTML report, built from small synthetic step outputs written in tmp_path.

Nothing here reads results/ of a real run; the inputs are made with pandas in
the formats the steps write (clean.json, quarantine.tsv, labels.json, each
panel's scaled.parquet, history.parquet, metrics.tsv, predictions.parquet,
permutations.parquet, and summary.tsv from :func:`panelmlp.compare.summarise`).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

SCRIPTS = Path(__file__).resolve().parents[1] / "workflow" / "scripts"
if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

from panelmlp import compare, plots, scaling  # noqa: E402
from panelmlp.report import SECTIONS, build_report, fmt  # noqa: E402

HISTORY_COLUMNS = ("train_loss", "test_loss", "accuracy", "precision", "recall", "f1", "roc_auc")
PLOTLY_MARKER = "plotly.js v"
"""Appears once in plotly.js's licence header, so counts how often the bundle is embedded."""


def _metrics(y: np.ndarray, proba: np.ndarray) -> dict[str, float]:
    """metrics.tsv's columns for one split, computed with numpy (scikit-learn's checks are slow for a test).

    Positive-class precision/recall/F1/ROC-AUC/PR-AUC (the last class against
    the rest), plus confusion counts for two classes; close enough to the real
    metrics for the report, which only displays them.
    """
    pred = proba.argmax(axis=1)
    pos = proba.shape[1] - 1
    truth, called, score = y == pos, pred == pos, proba[:, pos]
    tp, fp = int(np.sum(truth & called)), int(np.sum(~truth & called))
    fn, tn = int(np.sum(truth & ~called)), int(np.sum(~truth & ~called))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    n_pos, n_neg = int(truth.sum()), int((~truth).sum())
    auc = (rankdata(score)[truth].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg) if n_pos and n_neg else np.nan
    hits = truth[np.argsort(-score, kind="stable")]
    ap = float(np.mean((np.cumsum(hits) / np.arange(1, len(hits) + 1))[hits])) if n_pos else np.nan
    denom = np.sqrt(float((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    out = {
        "accuracy": float(np.mean(pred == y)),
        "balanced_accuracy": float(np.mean([np.mean(pred[y == c] == c) for c in np.unique(y)])),
        "precision": precision,
        "recall": recall,
        "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "roc_auc": float(auc),
        "pr_auc": ap,
        "mcc": (tp * tn - fp * fn) / denom if denom else 0.0,
    }
    if proba.shape[1] == 2:
        out.update({"tp": tp, "fp": fp, "tn": tn, "fn": fn})
    return out


def _splits(labels: pd.Series, codes: dict[str, int], folds: int = 5) -> pd.DataFrame:
    """A holdout split (last quarter tests) and ``folds`` interleaved CV folds of the labelled samples."""
    ids = labels.index.to_numpy()
    n = len(ids)
    parts = []
    test = np.zeros(n, dtype=bool)
    test[-n // 4 :] = True
    parts.append(("holdout", "holdout", ids[~test], ids[test]))
    for f in range(folds):
        test = np.arange(n) % folds == f
        parts.append((f"cv_r1_f{f + 1}", "cv", ids[~test], ids[test]))
    frames = [
        pd.DataFrame(
            {
                "split_id": s,
                "kind": k,
                "sample_id": np.concatenate([tr, te]),
                "role": ["train"] * len(tr) + ["test"] * len(te),
            }
        )
        for s, k, tr, te in parts
    ]
    table = pd.concat(frames, ignore_index=True)
    table["label"] = table["sample_id"].map(labels)
    table["y"] = table["label"].map(codes).astype("int64")
    return table


def _panel(
    root: Path,
    name: str,
    n_genes: int,
    signal: float,
    classes: list[str],
    labels: pd.Series,
    permutations: int,
    seed: int,
) -> dict[str, str]:
    """Write one panel's five outputs; ``signal`` separates the classes' probabilities (0: none)."""
    rng = np.random.default_rng(seed)
    codes = {c: i for i, c in enumerate(classes)}
    genes = [f"{name.upper()}{i}" for i in range(n_genes)]
    y_all = labels.map(codes).to_numpy()
    matrix = pd.DataFrame(
        rng.normal(size=(len(labels), n_genes)) + signal * y_all[:, None], index=labels.index, columns=genes
    )
    table, scalers = scaling.scale_panel(matrix, _splits(labels, codes), genes)
    out = root / "panels" / name
    out.mkdir(parents=True)
    paths = {
        k: str(out / f"{k}.{'tsv' if k == 'metrics' else 'parquet'}")
        for k in ("scaled", "history", "metrics", "predictions", "permutations")
    }
    positive = classes[-1]
    scaling.write_scaled(
        table, scalers, genes, {"panel": name, "classes": classes, "positive": positive}, paths["scaled"]
    )

    rows, preds, history = [], [], []
    n_classes = len(classes)
    for split_id, part in table.groupby("split_id", sort=False):
        train, test = part[part["role"] == "train"], part[part["role"] == "test"]
        y_test = test["y"].to_numpy()
        onehot = np.eye(n_classes)[y_test]
        for model in ("mlp", "majority", "logreg"):
            if model == "majority":
                prior = np.bincount(train["y"], minlength=n_classes) / len(train)
                proba = np.tile(prior, (len(test), 1))
            else:
                logits = 3.0 * signal * onehot + rng.normal(scale=1.0, size=onehot.shape)
                proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
            kind = part["kind"].iloc[0]
            values = _metrics(y_test, proba)
            rows.append(
                {
                    "panel": name,
                    "model": model,
                    "split_id": split_id,
                    "kind": kind,
                    "n_train": len(train),
                    "n_test": len(test),
                    **values,
                }
            )
            predicted = proba.argmax(axis=1)
            preds.append(
                pd.DataFrame(
                    {
                        "panel": name,
                        "model": model,
                        "split_id": split_id,
                        "kind": kind,
                        "sample_id": test["sample_id"].to_numpy(),
                        "true_label": [classes[i] for i in y_test],
                        "predicted_label": [classes[i] for i in predicted],
                        "probability": proba[:, -1] if n_classes == 2 else proba.max(axis=1),
                    }
                )
            )
        epochs = np.arange(1, 31)
        frame = pd.DataFrame({"split_id": split_id, "kind": part["kind"].iloc[0], "epoch": epochs})
        frame["train_loss"] = (0.7 * np.exp(-epochs / 10)).astype(np.float32)
        frame["test_loss"] = (0.7 - 0.2 * signal + 0.005 * epochs).astype(np.float32)
        for column in HISTORY_COLUMNS[2:]:
            frame[column] = np.clip(0.5 + 0.4 * signal + rng.normal(scale=0.05, size=len(epochs)), 0, 1).astype(
                np.float32
            )
        frame["device"] = "cpu"
        history.append(frame)
    metrics = pd.DataFrame(rows)
    metrics.to_csv(paths["metrics"], sep="\t", index=False, float_format="%.6g")
    pd.concat(preds, ignore_index=True).to_parquet(paths["predictions"], index=False)
    pd.concat(history, ignore_index=True).to_parquet(paths["history"], index=False)
    cv_ids = [s for s in table["split_id"].unique() if s != "holdout"]
    perm = pd.DataFrame(
        [
            {"split_id": s, "permutation": p, **{c: float(rng.uniform(0.35, 0.65)) for c in HISTORY_COLUMNS}}
            for p in range(1, permutations + 1)
            for s in cv_ids
        ],
        columns=["split_id", "permutation", *HISTORY_COLUMNS],
    )
    perm.to_parquet(paths["permutations"], index=False)
    return paths


def make_inputs(root: Path, panels: dict[str, tuple[int, float, int]], classes: list[str]) -> tuple[dict, pd.DataFrame]:
    """Every report input under ``root``; ``panels`` maps name -> (genes, signal, permutations)."""
    n = 48
    ids = [f"S{i:03d}" for i in range(n)]
    labels = pd.Series([classes[i % len(classes)] if i % 4 else classes[0] for i in range(n)], index=ids)
    root.mkdir(parents=True, exist_ok=True)
    accounting = {
        "file": "data/raw/synthetic.csv",
        "lines_read": n + 3,
        "header_lines": 1,
        "blank_lines": 0,
        "data_lines": n + 2,
        "parsed_as_is": n - 2,
        "repaired": 2,
        "quarantined": 2,
        "rows_in_cohort": n,
        "repaired_lines": [5, 17],
        "quarantined_lines": [9, 33],
        "n_columns": 20,
        "n_genes": 12,
        "gene_columns": {"first": "A0", "last": "B6"},
        "row_order": "file order",
    }
    (root / "clean.json").write_text(json.dumps(accounting), encoding="utf-8")
    quarantine = pd.DataFrame(
        {
            "line": [9, 33],
            "sample_id": ["Q1", "Q2"],
            "reason": ["wrong number of fields (25, expected 20)", "duplicate sample id"],
            "text": ["Q1,1,2,<b>x</b>", "Q2," + "9," * 80],
        }
    )
    quarantine.to_csv(root / "quarantine.tsv", sep="\t", index=False)
    counts = labels.value_counts()
    label_info = {
        "target": "CONDITION",
        "samples": n + 6,
        "labelled": n,
        "missing_label": 5,
        "unmatched_label": 1,
        "unmatched_values": {"unsure": 1},
        "classes": classes,
        "positive": classes[-1],
        "class_counts": {c: int(counts[c]) for c in classes},
        "splits": {"cv": 5, "holdout": 1},
    }
    (root / "labels.json").write_text(json.dumps(label_info), encoding="utf-8")
    written = {
        name: _panel(root, name, g, s, classes, labels, p, seed)
        for seed, (name, (g, s, p)) in enumerate(panels.items())
    }
    metrics = pd.concat([pd.read_csv(w["metrics"], sep="\t") for w in written.values()], ignore_index=True)
    perms = {name: pd.read_parquet(w["permutations"]) for name, w in written.items()}
    summary = compare.summarise(metrics, perms)
    summary.to_csv(root / "summary.tsv", sep="\t", index=False, float_format="%.6g")
    inputs: dict = {
        "accounting": str(root / "clean.json"),
        "quarantine": str(root / "quarantine.tsv"),
        "labels": str(root / "labels.json"),
        "summary": str(root / "summary.tsv"),
    }
    for key in ("scaled", "history", "metrics", "predictions", "permutations"):
        inputs[key] = [written[name][key] for name in panels]
    return inputs, pd.read_csv(root / "summary.tsv", sep="\t")


CONFIG = {
    "panels": {"strong": ["A0", "A1", "A2"], "flat": "all"},
    "evaluate": {"permutations": 19},
    "report": {"pairplot_max_genes": 5},
}


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, pd.DataFrame, dict, Path]:
    """A two-class run: panel 'strong' with planted signal and permutations, panel 'flat' with none."""
    root = tmp_path_factory.mktemp("binary")
    inputs, summary = make_inputs(root / "results", {"strong": (3, 1.5, 19), "flat": (7, 0.0, 0)}, ["ctrl", "case"])
    out = root / "report.html"
    build_report(inputs, ["strong", "flat"], CONFIG, str(out))
    return out.read_text(encoding="utf-8"), summary, inputs, out


def verdict_block(text: str, panel: str) -> str:
    """The HTML of one panel's verdict box."""
    match = re.search(rf'<div class="verdict [^"]*" data-panel="{panel}">(.*?)</div>', text, re.S)
    assert match, f"no verdict for {panel}"
    return match.group(1)


def test_single_self_contained_file(binary: tuple) -> None:
    text, _, _, out = binary
    assert out.exists() and out.stat().st_size > 1_000_000
    assert text.count(PLOTLY_MARKER) == 1
    assert not re.search(r"<script[^>]*\bsrc\s*=", text, re.I)
    assert not re.search(r"<link[^>]*href\s*=\s*[\"']?(https?:)?//", text, re.I)
    assert not re.search(r"@import|url\(\s*[\"']?(https?:)?//", text.split("<script", 1)[0])
    assert "Plotly.newPlot" in text


def test_sections_present_in_order(binary: tuple) -> None:
    text = binary[0]
    positions = [text.find(f"<h2>{title}</h2>") for _, title in SECTIONS]
    assert all(p > 0 for p in positions), [t for (_, t), p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    for anchor, _ in SECTIONS:
        assert f'href="#{anchor}"' in text


def test_verdicts_honest(binary: tuple) -> None:
    text = binary[0]
    null = verdict_block(text, "flat")
    assert "No evidence of signal" in null and "includes 0.5" in null
    assert "No permutation test was run" in null
    strong = verdict_block(text, "strong")
    assert "Evidence of signal" in strong and "no evidence" not in strong.lower()
    assert "Permutation test: p = " in strong
    assert "1 of 2 panel(s) show evidence of signal" in text
    assert "Null result" not in text


def test_summary_numbers_appear(binary: tuple) -> None:
    text, summary, _, _ = binary
    row = summary[(summary["panel"] == "strong") & (summary["model"] == "mlp") & (summary["metric"] == "roc_auc")].iloc[
        0
    ]
    assert row["ci_low"] > 0.5
    for value in (row["cv_mean"], row["ci_low"], row["ci_high"]):
        assert fmt(value) in text
    null = summary[(summary["panel"] == "flat") & (summary["model"] == "mlp") & (summary["metric"] == "roc_auc")].iloc[
        0
    ]
    assert null["ci_low"] <= 0.5 <= null["ci_high"]
    assert f"{fmt(null['cv_mean'])} ({fmt(null['ci_low'])} to {fmt(null['ci_high'])})" in text
    majority = summary[
        (summary["panel"] == "flat") & (summary["model"] == "majority") & (summary["metric"] == "accuracy")
    ].iloc[0]
    assert f"<b>{fmt(majority['cv_mean'])}</b> for the majority baseline" in text


def test_figures_and_notes(binary: tuple) -> None:
    text = binary[0]
    for fig_id in (
        "fig-balance",
        "fig-pair-strong",
        "fig-pair-flat",
        "fig-train-strong",
        "fig-rocpr-flat",
        "fig-confusion-strong",
        "fig-comparison",
        "fig-perm-strong",
    ):
        assert f'id="{fig_id}"' in text
    assert 'id="fig-perm-flat"' not in text
    assert "Showing the first 5 of the panel's 7 genes" in text
    assert "duplicate sample id" in text and "Q1,1,2,&lt;b&gt;x&lt;/b&gt;" in text
    assert "5, 17" in text
    assert "mean ± 1 standard deviation" in text
    assert "pairplot_max_genes: 5" in text


def test_three_classes_no_permutations_deterministic(tmp_path: Path) -> None:
    inputs, _ = make_inputs(tmp_path / "results", {"p3": (4, 0.0, 0)}, ["a", "b", "c"])
    out, again = tmp_path / "report.html", tmp_path / "again.html"
    build_report(inputs, ["p3"], {"report": {}}, str(out))
    build_report(inputs, ["p3"], {"report": {}}, str(again))
    text = out.read_text(encoding="utf-8")
    assert again.read_text(encoding="utf-8") == text
    assert text.count(PLOTLY_MARKER) == 1
    assert "two classes only" in text and 'id="fig-rocpr-p3"' not in text
    assert 'id="fig-confusion-p3"' in text
    assert "Null result" in text
    assert "No permutation test was run" in text.split('<section id="permutation">', 1)[1]


def test_class_balance_counts_missing() -> None:
    fig = plots.class_balance({"ctrl": 30, "case": 10}, missing=4, positive="case")
    assert list(fig.data[0].x) == ["ctrl", "case (positive)", "no label (left out)"]
    assert list(fig.data[0].y) == [30, 10, 4]
