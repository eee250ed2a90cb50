"""Gene-set screens on the real cohort: what a collection of many panels costs against one panel.

In one invocation, each a fresh `snakemake --cores 2` run of the whole workflow
(clean to report) in its own temporary folder, on the real cohort with the
default model (1,000 epochs, 5x2 CV):

1. one named 10-gene panel (the reference);
2. collections of 1, 50 and 200 ten-gene sets (random genes of the cohort,
   seeded), as GMT files: wall time and its ratio to (1). Target: 50 sets
   within 2x of one panel;
3. the null-model screen: 50 ten-gene sets with `evaluate.random_panels: 2000`,
   300 epochs and 5x1 CV. Target: at most 5 minutes.

    python bench/screen.py [--raw ../shared/data/gbm_data.csv] [--sizes 1 50 200] [--skip-random]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml
from _common import REPO, machine


def gene_names(raw: Path) -> list[str]:
    """The cohort's expression columns: every header field left of PATIENT_ID."""
    header = raw.open(encoding="utf-8").readline().rstrip("\n").split(",")
    return header[: header.index("PATIENT_ID")]


def write_gmt(path: Path, genes: list[str], n_sets: int, size: int = 10, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    lines = [f"SET_{i:04d}\tbench\t" + "\t".join(rng.choice(genes, size, replace=False)) for i in range(n_sets)]
    path.write_text("\n".join(lines) + "\n")


def run(work: Path, config: dict) -> float:
    """Wall seconds of a fresh run of the whole workflow with ``config`` merged over the default."""
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    cmd += ["--cores", "2", "--configfile", str(work / "bench.yaml"), "--quiet", "all"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-5000:])
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(REPO.parent / "shared" / "data" / "gbm_data.csv"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 50, 200])
    parser.add_argument("--skip-random", action="store_true", help="skip the 2,000-random-panel screen")
    args = parser.parse_args()
    raw = Path(args.raw).resolve()
    genes = gene_names(raw)
    no_defaults = {"glial": None, "microglia": None, "all": None}
    print(f"machine: {machine()}; cohort {raw.name}, {len(genes)} genes")
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        one = base / "one"
        one.mkdir()
        panel = list(np.random.default_rng(0).choice(genes, 10, replace=False))
        reference = run(one, {"raw_csv": str(raw), "panels": {**no_defaults, "one": panel}})
        print(f"one named 10-gene panel: {reference:.1f} s")
        for n in args.sizes:
            work = base / f"sets{n}"
            work.mkdir()
            write_gmt(work / "sets.gmt", genes, n)
            wall = run(work, {"raw_csv": str(raw), "panels": {**no_defaults, "sets": {"gmt": "sets.gmt"}}})
            target = " (target <= 2x)" if n == 50 else ""
            print(f"collection of {n} ten-gene sets: {wall:.1f} s, {wall / reference:.2f}x one panel{target}")
        if not args.skip_random:
            work = base / "random"
            work.mkdir()
            write_gmt(work / "sets.gmt", genes, 50)
            config = {
                "raw_csv": str(raw),
                "panels": {**no_defaults, "sets": {"gmt": "sets.gmt"}},
                "model": {"epochs": 300},
                "split": {"cv_repeats": 1},
                "evaluate": {"random_panels": 2000},
            }
            wall = run(work, config)
            print(f"50 sets, 2,000 random panels, 300 epochs, 5x1 CV: {wall:.1f} s (target <= 300 s)")


if __name__ == "__main__":
    main()
