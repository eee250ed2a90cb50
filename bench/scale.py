"""The workflow at TCGA size: 1,000 samples x 20,000 genes, the `all` panel, 5x2 CV, 200 epochs.

In one invocation:
1. generate the cohort (bench's generator, panelmlp.synthetic.write_cohort);
2. run `snakemake` on it with the `all` panel only, and read every job's wall
   time and peak memory (max_rss) from benchmarks/*.tsv; the size of
   results/panels/all/ against results/clean/cohort.parquet;
3. read the fit job's achieved training GFLOP/s (fit.json: matrix-product work
   of training and per-epoch scoring over the training loop's wall time), and
   measure, in this same process, torch's batched-matmul GFLOP/s on the same
   shapes with the same threads: the forward product [K, 32, G] x [K, G, H], the
   weight gradient [K, G, 32] x [K, 32, H] and the test-set product
   [K, T, G] x [K, G, H]. Targets: every job's max_rss <= 1,500 MB, the panel
   folder <= 1.5x the cohort parquet, training >= 50% of the matmul rate.

    python bench/scale.py [--samples 1000] [--genes 20000] [--epochs 200] [--threads 2] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO, machine


def folder_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 2**20


def read_benchmarks(work: Path) -> dict[str, dict[str, float]]:
    """Wall seconds and max_rss (MB) of every job, from snakemake's benchmark files."""
    out = {}
    for path in sorted((work / "benchmarks").rglob("*.tsv")):
        header, values = path.read_text().strip().splitlines()[:2]
        row = dict(zip(header.split("\t"), values.split("\t"), strict=True))
        out[str(path.relative_to(work / "benchmarks").with_suffix(""))] = {
            "s": float(row["s"]),
            "max_rss": float(row["max_rss"]),
        }
    return out


def matmul_gflops(k: int, g: int, h: int, b: int, t: int, steps: int, threads: int, device: str) -> float:
    """torch's batched-matmul rate (GFLOP/s) on the fit job's shapes, in its mix of one epoch.

    An epoch of training is ``steps`` forward products ``[k, b, g] x [k, g, h]``
    and as many weight gradients ``[k, g, b] x [k, b, h]``, then one scoring
    product ``[k, t, g] x [k, g, h]`` of the test rows; each is timed alone and
    the rate is the epoch's work over the sum of those times.
    """
    import torch

    torch.set_num_threads(threads)
    dev = torch.device(device)
    x = torch.randn(k, b, g, device=dev)
    w = torch.randn(k, g, h, device=dev)
    grad = torch.randn(k, b, h, device=dev)
    out = torch.empty(k, g, h, device=dev)
    xt = torch.randn(k, t, g, device=dev)

    def seconds(fn) -> float:
        fn()
        reps = 8
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(reps):
            fn()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / reps

    forward = seconds(lambda: torch.bmm(x, w))
    gradient = seconds(lambda: torch.bmm(x.transpose(1, 2), grad, out=out))
    scoring = seconds(lambda: torch.bmm(xt, w))
    flops = 2.0 * k * g * h * (2 * steps * b + t)
    return flops / (steps * (forward + gradient) + scoring) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--genes", type=int, default=20000)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--keep", help="keep the run in this folder instead of a temporary one")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from panelmlp.synthetic import write_cohort

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.keep) if args.keep else Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        write_cohort(work / "cohort.csv", n_samples=args.samples, n_genes=args.genes, n_malformed=5, seed=1)
        print(f"generated {args.samples} x {args.genes} cohort in {time.perf_counter() - start:.1f} s")
        config = {
            "raw_csv": str(work / "cohort.csv"),
            "panels": {"glial": None, "microglia": None, "all": "all"},
            "model": {"epochs": args.epochs, "device": args.device},
            "resources": {"train_threads": args.threads, "train_mem_mb": 4000},
        }
        (work / "bench.yaml").write_text(yaml.safe_dump(config))
        cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
        cmd += ["--cores", str(args.threads), "--configfile", str(work / "bench.yaml"), "--quiet", "all"]
        start = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        if proc.returncode:
            sys.exit(proc.stdout[-3000:] + proc.stderr[-5000:])
        jobs = read_benchmarks(work)
        print(f"workflow: {wall:.1f} s wall for {len(jobs)} jobs")
        print(f"{'job':<22}{'s':>9}{'max_rss MB':>12}")
        for name, row in jobs.items():
            print(f"{name:<22}{row['s']:>9.1f}{row['max_rss']:>12.0f}")
        peak = max(r["max_rss"] for r in jobs.values())
        cohort_mb = (work / "results/clean/cohort.parquet").stat().st_size / 2**20
        panel_mb = folder_mb(work / "results/panels/all")
        fit = json.loads((work / "results/panels/all/fit.json").read_text())
        labelled = json.loads((work / "results/splits/labels.json").read_text())["labelled"]
        n_test = -(-labelled // 5)
        steps = -(-(labelled - n_test) // 32)
        reference = matmul_gflops(11, args.genes, 64, 32, n_test, steps, args.threads, fit["device"])
        print(f"largest max_rss: {peak:.0f} MB (target <= 1500)")
        print(
            f"results/panels/all: {panel_mb:.1f} MB, cohort.parquet {cohort_mb:.1f} MB: "
            f"{panel_mb / cohort_mb:.2f}x (target <= 1.5x)"
        )
        achieved = fit["train_gflops_per_s"]
        print(
            f"training on {fit['device']}, {args.threads} thread(s): {fit['train_seconds']:.1f} s, {fit['train_gflop']:.0f} GFLOP, "
            f"{achieved:.1f} GFLOP/s; torch bmm on the same shapes: {reference:.1f} GFLOP/s; "
            f"{achieved / reference:.0%} of it (target >= 50%)"
        )


if __name__ == "__main__":
    main()
