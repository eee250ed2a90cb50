"""Gene-set screens on the real cohort: what many panels cost against one, and what their report weighs.

In one invocation, each a fresh `snakemake --cores 2` run of the whole workflow
(clean to report) in its own temporary folder, on the real cohort with the
default model (1,000 epochs, 5x2 CV):

1. the default config (3 named panels) and one named 10-gene panel;
2. collections of 1, 50 and 200 ten-gene sets (random genes of the cohort,
   seeded) as GMT files: wall time against (1)'s one panel. Target: 50 sets
   within 2x of one panel;
3. the null-model screen: 50 ten-gene sets with `evaluate.random_panels: 2000`,
   300 epochs and 5x1 CV. Target: at most 5 minutes;
4. every run's report: size, and load time in headless Chromium (median of
   fresh browsers; load event, and all figures shown at load drawn), against
   the 3-panel default report. Targets for 200 panels: at most 10 MB, load
   within 2x of the 3-panel report.

The one-panel run and the 50-set run are repeated alternately (``--repeat``,
default 3) and the median ratio is reported: on a shared 2-core machine one
run's wall time varies by 20-40%.

    python bench/screen.py [--raw ../shared/data/gbm_data.csv] [--sizes 1 50 200] [--repeat 3] [--skip-random] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
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


def random_sets(genes: list[str], n_sets: int, size: int = 10, seed: int = 0) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    return [[str(g) for g in rng.choice(genes, size, replace=False)] for _ in range(n_sets)]


def write_gmt(path: Path, sets: list[list[str]]) -> None:
    path.write_text("".join(f"SET_{i:04d}\tbench\t" + "\t".join(s) + "\n" for i, s in enumerate(sets)))


def run(work: Path, config: dict) -> float:
    """Wall seconds of a fresh run of the whole workflow with ``config`` merged over the default."""
    work.mkdir(parents=True, exist_ok=True)
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
    parser.add_argument("--runs", type=int, default=5, help="fresh browsers per report load time")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs of one panel and 50 sets")
    args = parser.parse_args()
    raw = Path(args.raw).resolve()
    genes = gene_names(raw)
    no_defaults = {"glial": None, "microglia": None, "all": None}
    print(f"machine: {machine()}; cohort {raw.name}, {len(genes)} genes")
    reports: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        wall = run(base / "default", {"raw_csv": str(raw)})
        reports["default, 3 panels"] = base / "default/results/report.html"
        print(f"default config, 3 named panels: {wall:.1f} s")
        one = {"raw_csv": str(raw), "panels": {**no_defaults, "one": random_sets(genes, 1)[0]}}
        fifty = {"raw_csv": str(raw), "panels": {**no_defaults, "sets": {"gmt": "sets.gmt"}}}
        pairs = []
        for i in range(args.repeat):
            work = base / f"pair{i}"
            work.mkdir()
            write_gmt(work / "sets.gmt", random_sets(genes, 50))
            single = run(work / "one", one)
            many = run(work, fifty)
            pairs.append((single, many))
            print(
                f"pair {i + 1}: one named 10-gene panel {single:.1f} s, 50 ten-gene sets {many:.1f} s: {many / single:.2f}x"
            )
        ratios = sorted(m / s for s, m in pairs)
        reference = statistics.median(s for s, _ in pairs)
        print(
            f"50 sets against one panel: median {statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}; target <= 2x)"
        )
        for n in args.sizes:
            work = base / f"sets{n}"
            work.mkdir()
            write_gmt(work / "sets.gmt", random_sets(genes, n))
            wall = run(work, {"raw_csv": str(raw), "panels": {**no_defaults, "sets": {"gmt": "sets.gmt"}}})
            reports[f"{n} sets"] = work / "results/report.html"
            print(f"collection of {n} ten-gene sets: {wall:.1f} s, {wall / reference:.2f}x the median one-panel run")
        if not args.skip_random:
            work = base / "random"
            work.mkdir()
            write_gmt(work / "sets.gmt", random_sets(genes, 50))
            config = {
                "raw_csv": str(raw),
                "panels": {**no_defaults, "sets": {"gmt": "sets.gmt"}},
                "model": {"epochs": 300},
                "split": {"cv_repeats": 1},
                "evaluate": {"random_panels": 2000},
            }
            wall = run(work, config)
            reports["50 sets + 2,000 random"] = work / "results/report.html"
            print(f"50 sets, 2,000 random panels, 300 epochs, 5x1 CV: {wall:.1f} s (target <= 300 s)")
        report_table(reports, args.runs)


def report_table(reports: dict[str, Path], runs: int) -> None:
    """Size and load time of every report, against the default 3-panel report."""
    sys.path.insert(0, str(REPO / "tests"))
    from chromium import CHROMIUM, load_times

    print(f"{'report':<26}{'MB':>7}{'load ms':>9}{'drawn ms':>10}{'vs 3 panels':>13}")
    if not Path(CHROMIUM).exists():
        for name, path in reports.items():
            print(f"{name:<26}{path.stat().st_size / 2**20:>7.2f}  (no chromium: load not measured)")
        return
    times = {name: load_times(path, runs=runs) for name, path in reports.items()}
    ref = times["default, 3 panels"]["ready_ms"]
    for name, path in reports.items():
        t = times[name]
        print(
            f"{name:<26}{path.stat().st_size / 2**20:>7.2f}{t['load_ms']:>9.0f}{t['ready_ms']:>10.0f}"
            f"{t['ready_ms'] / ref:>12.2f}x"
        )
    print("targets for 200 sets: <= 10 MB, drawn within 2x of the 3-panel report")


if __name__ == "__main__":
    main()
