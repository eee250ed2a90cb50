"""How the clean step scales with the width of the cohort.

Generates synthetic cohorts in the real file's schema (2,000 samples; 1,000,
5,000 and 20,000 genes; a few malformed lines each) and measures, each in a
fresh subprocess so peak memory is the step's own, the wall time and peak RSS
of the clean step against `pyarrow.csv.read_csv` of the same file (skipping
the malformed lines it cannot read). Targets: time within 2x, peak memory
above the import baseline within 3x of the float32 expression matrix. The
whole workflow at this size is bench/scale.py.

    python bench/clean_scale.py [--genes 1000 5000 20000] [--samples 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import REPO, machine

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, {scripts!r})
task, args = sys.argv[1], json.loads(sys.argv[2])
import pyarrow.csv, pyarrow.parquet
import pandas, numpy
from panelmlp.io import clean_step
def rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
base = rss_kb()
start = time.perf_counter()
if task == "pyarrow":
    skip = pyarrow.csv.ParseOptions(invalid_row_handler=lambda row: "skip")
    pyarrow.csv.read_csv(args["csv"], parse_options=skip)
elif task == "pyarrow_blocks":
    from panelmlp.io import block_size_for
    skip = pyarrow.csv.ParseOptions(invalid_row_handler=lambda row: "skip")
    blocks = pyarrow.csv.ReadOptions(block_size=block_size_for(args["csv"]))
    pyarrow.csv.read_csv(args["csv"], read_options=blocks, parse_options=skip)
else:
    clean_step([args["csv"]], {{}}, {{"before_column": "PATIENT_ID"}}, "SAMPLE_ID", "impute", args["cohort"], args["quarantine"], args["json"])
wall = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({{"wall": wall, "peak_mb": peak / 1024, "base_mb": base / 1024}}))
"""


def child(task: str, args: dict) -> dict:
    code = CHILD.format(scripts=str(REPO / "workflow" / "scripts"))
    proc = subprocess.run([sys.executable, "-c", code, task, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--samples", type=int, default=2000)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from panelmlp.synthetic import write_cohort

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        # Fixed cost of the step (code paths, thread pools, allocator), from a 10-gene, 20-sample file.
        tiny = Path(tmp) / "tiny"
        tiny.mkdir()
        write_cohort(tiny / "cohort.csv", n_samples=20, n_genes=10, n_malformed=1, seed=1)
        names = {"csv": "cohort.csv", "cohort": "cohort.parquet", "quarantine": "q.tsv", "json": "clean.json"}
        fixed = child("clean", {k: str(tiny / v) for k, v in names.items()})
        fixed_mb = fixed["peak_mb"] - fixed["base_mb"]
        print(f"fixed memory of the clean step (tiny file): {fixed_mb:.0f} MB")
        print(
            f"{'genes':>6} {'csv MB':>7} {'matrix MB':>9} {'arrow s':>8} {'arrow* s':>8} {'clean s':>8} "
            f"{'vs arrow':>8} {'vs arrow*':>9} {'arrow MB':>8} {'arrow* MB':>9} {'clean MB':>8} {'vs matrix':>9} {'net x':>6}"
        )
        for n_genes in args.genes:
            work = Path(tmp) / str(n_genes)
            work.mkdir()
            csv = work / "cohort.csv"
            write_cohort(csv, n_samples=args.samples, n_genes=n_genes, n_malformed=5, seed=1)
            paths = {
                k: str(work / v)
                for k, v in {
                    "csv": "cohort.csv",
                    "cohort": "cohort.parquet",
                    "quarantine": "q.tsv",
                    "json": "clean.json",
                }.items()
            }
            arrow = child("pyarrow", paths)
            blocks = child("pyarrow_blocks", paths)
            clean = child("clean", paths)
            matrix_mb = args.samples * n_genes * 4 / 2**20
            mem = {
                name: r["peak_mb"] - r["base_mb"]
                for name, r in (("arrow", arrow), ("blocks", blocks), ("clean", clean))
            }
            print(
                f"{n_genes:>6} {csv.stat().st_size / 2**20:>7.0f} {matrix_mb:>9.0f} {arrow['wall']:>8.2f} {blocks['wall']:>8.2f} "
                f"{clean['wall']:>8.2f} {clean['wall'] / arrow['wall']:>7.2f}x {clean['wall'] / blocks['wall']:>8.2f}x "
                f"{mem['arrow']:>8.0f} {mem['blocks']:>9.0f} {mem['clean']:>8.0f} {mem['clean'] / matrix_mb:>8.2f}x {(mem['clean'] - fixed_mb) / matrix_mb:>5.2f}x"
            )
    print(
        "arrow = pyarrow.csv.read_csv with default options; arrow* = with the block size the clean step uses.\n"
        "clean: time vs pyarrow (target <= 2x); memory above the post-import baseline vs the float32 matrix\n"
        "(target <= 3x); net x: the same less the clean step's fixed memory on a tiny file"
    )


if __name__ == "__main__":
    main()
