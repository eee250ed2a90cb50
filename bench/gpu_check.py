"""The fit step on a GPU against the CPU: same models, and how fast.

Run on a machine with CUDA (``python bench/gpu_check.py``; ``--devices cpu``
alone runs anywhere). A generated cohort (signal in SIG1 and SIG2) is cleaned
and split as the workflow does; then one collection part of gene sets is
fitted with ``model.device`` cpu and cuda, in the same invocation:

- agreement: the largest difference between the two devices in any MLP
  test-split ROC-AUC and in any checkpoint weight (float32 arithmetic in
  another order, so small but not zero differences are expected);
- speed: wall time of each fit and the training rate from fit.json, beside
  torch's own large-matmul rate on the same device;
- the code paths that only run on a device: early stopping, a grid, and
  permutation and random-panel nulls.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from _common import machine
from panelmlp.checkpoint import load_checkpoint
from panelmlp.fit import fit_unit
from panelmlp.io import clean_step
from panelmlp.splits import split_step
from panelmlp.synthetic import write_cohort

TARGET = {"column": "SMOKING_HISTORY", "classes": {"non-smoker": "non-smoker", "smoker": "smok"}, "positive": "smoker"}


def matmul_rate(device: str, n: int = 4096, repeat: int = 10) -> float:
    """torch's float32 GFLOP/s on an n x n x n product on ``device``."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeat / (time.perf_counter() - start) / 1e9


def prepare(work: Path, n_sets: int, n_genes: int) -> dict:
    """A cleaned, split generated cohort and a GMT of ``n_sets`` ten-gene sets (the first holds the signal)."""
    cohort = write_cohort(work / "cohort.csv", n_samples=200, n_genes=n_genes, n_malformed=2, seed=11)
    paths = {
        k: str(work / f) for k, f in {"cohort": "cohort.parquet", "splits": "s.parquet", "labels": "l.json"}.items()
    }
    clean_step(
        [str(cohort.path)],
        {},
        {"before_column": "PATIENT_ID"},
        "SAMPLE_ID",
        "impute",
        paths["cohort"],
        str(work / "q.tsv"),
        str(work / "c.json"),
    )
    split = {"test_size": 0.2, "random_state": 81, "cv_folds": 5, "cv_repeats": 2}
    split_step(paths["cohort"], "SAMPLE_ID", TARGET, split, paths["splits"], paths["labels"])
    rng = np.random.default_rng(0)
    noise = [f"G{i:05d}" for i in range(1, n_genes - 1)]
    lines = ["PLANTED\tsignal\tSIG1\tSIG2\t" + "\t".join(noise[:8])]
    for s in range(1, n_sets):
        lines.append(f"SET{s:04d}\tnoise\t" + "\t".join(rng.choice(noise, size=10, replace=False)))
    (work / "sets.gmt").write_text("\n".join(lines) + "\n")
    paths["gmt"] = str(work / "sets.gmt")
    paths["sets"] = ["PLANTED"] + [f"SET{s:04d}" for s in range(1, n_sets)]
    return paths


def fit(paths: dict, out: Path, device: str, model: dict, **kwargs) -> tuple[float, dict]:
    unit = {
        "name": "screen/part-001",
        "collection": "screen",
        "gmt": paths["gmt"],
        "sets": paths["sets"],
        "min_size": 2,
        "max_size": 500,
        "min_coverage": 0.8,
        "out_dir": str(out),
    }
    args = {"permutations": 0, "random_panels": 0, "logreg_c": 1.0, **kwargs}
    start = time.perf_counter()
    fit_unit(unit, paths["cohort"], paths["splits"], paths["labels"], model={**model, "device": device}, **args)
    seconds = time.perf_counter() - start
    return seconds, json.loads((out / "fit.json").read_text())


def agreement(a: Path, b: Path) -> tuple[float, float]:
    """Largest |difference| of MLP ROC-AUC over panels and splits, and of any checkpoint weight."""
    ma, mb = (pd.read_csv(p / "metrics.tsv", sep="\t") for p in (a, b))
    ma, mb = (m[m.model == "mlp"].set_index(["panel", "split_id"])["roc_auc"].sort_index() for m in (ma, mb))
    auc = float(np.nanmax(np.abs(ma.to_numpy() - mb.loc[ma.index].to_numpy())))
    weight = 0.0
    for ckpt in sorted((a / "checkpoints").rglob("*.pt")):
        other = b / ckpt.relative_to(a)
        sa, sb = load_checkpoint(ckpt)["state_dict"], load_checkpoint(other)["state_dict"]
        for key, value in sa.items():
            weight = max(weight, float((value.cpu() - sb[key].cpu()).abs().max()))
    return auc, weight


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"])
    parser.add_argument("--sets", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    print(machine())
    if "cuda" in args.devices:
        print(f"torch {torch.__version__}, GPU: {torch.cuda.get_device_name(0)}")
    model = {"hidden": [64], "epochs": args.epochs, "batch_size": 32, "lr": 0.001}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = prepare(work, args.sets, n_genes=300)
        cases = {
            "plain": ({}, {}),
            "nulls": ({}, {"permutations": 5, "random_panels": 50}),
            "early+grid": (
                {
                    "early_stopping": {"patience": 20, "validation_fraction": 0.2},
                    "grid": {"lr": [0.001, 0.01], "hidden": [[16], [64]]},
                    "inner_folds": 2,
                },
                {},
            ),
        }
        for case, (extra, kwargs) in cases.items():
            outs = []
            for d, device in enumerate(args.devices):
                out = work / f"{case}-{d}-{device}"
                seconds, info = fit(paths, out, device, {**model, **extra}, **kwargs)
                outs.append(out)
                rate = info.get("train_gflops_per_s") or (
                    info.get("train_flops", 0) / info["train_seconds"] / 1e9
                    if info.get("train_seconds")
                    else float("nan")
                )
                print(
                    f"{case:11s} {device:4s} {seconds:7.2f} s wall, train {info.get('train_seconds', float('nan')):7.2f} s,"
                    f" {rate:7.1f} GFLOP/s, models {info.get('models')}, device recorded: {info.get('device')}"
                )
            if len(outs) == 2:
                auc, weight = agreement(*outs)
                print(
                    f"{case:11s} {' vs '.join(args.devices)}: max |ROC-AUC diff| {auc:.2e}, max |weight diff| {weight:.2e}"
                )
    for device in args.devices:
        print(f"torch matmul 4096^3 float32 on {device}: {matmul_rate(device):.0f} GFLOP/s")


if __name__ == "__main__":
    main()
