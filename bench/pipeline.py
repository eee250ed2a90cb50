"""Wall time of the whole workflow on the real cohort, against the tutorial's single model.

In one invocation, in a fresh temporary directory:
1. a fresh `snakemake --cores 2` run of the default config on the real cohort,
   and the number of models it trained;
2. the tutorial script (bench/tutorial.py) run once on the same file;
3. a no-op rerun: its wall time and the jobs it scheduled (must be 0);
4. the same config plus one panel: the jobs that reran (only that panel's
   fit job and the aggregate steps).

Target: the fresh run takes at most 0.6x the tutorial script.

    python bench/pipeline.py [--raw ../shared/data/gbm_data.csv] [--cores 2]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, machine


def run(cmd: list[str], cwd: Path) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return wall, proc.stdout + proc.stderr


def job_counts(log: str) -> dict[str, int]:
    """The 'Job stats' table snakemake prints: jobs per rule (empty when nothing ran)."""
    if "Nothing to be done" in log:
        return {}
    table = log.split("Job stats:", 1)[1].split("\n\n", 1)[0]
    counts = {}
    for line in table.splitlines():
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if match and match.group(1) != "total":
            counts[match.group(1)] = int(match.group(2))
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(REPO.parent / "shared" / "data" / "gbm_data.csv"))
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    raw = str(Path(args.raw).resolve())
    smk = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", args.cores]
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config").mkdir()
        (work / "config" / "panels").mkdir()
        for panel in (REPO / "config" / "panels").glob("*.txt"):
            (work / "config" / "panels" / panel.name).write_text(panel.read_text())
        base = [*smk, "--directory", str(work), "--config", f"raw_csv={raw}"]

        fresh, log = run(base, REPO)
        models = sum(1 for _ in (work / "results" / "panels").glob("*/checkpoints/*/*.pt"))
        print(
            f"fresh pipeline run: {fresh:.1f} s wall, {sum(job_counts(log).values())} jobs, {models} MLPs trained "
            f"(+ {2 * models} baseline fits)"
        )

        tutorial, _ = run(
            [sys.executable, str(REPO / "bench" / "tutorial.py"), raw, str(work / "tutorial.html")], REPO / "bench"
        )
        print(f"tutorial script, one model: {tutorial:.1f} s wall")
        print(f"ratio pipeline / tutorial: {fresh / tutorial:.2f} (target <= 0.6)")

        noop, log = run(base, REPO)
        print(f"no-op rerun: {noop:.1f} s wall, {sum(job_counts(log).values())} jobs scheduled (target 0)")

        extra = work / "extra.yaml"
        extra.write_text("panels:\n  astro: [GFAP, CLU, HEPACAM, SLC1A3]\n")
        added, log = run([*base, "--configfile", str(extra)], REPO)
        print(
            f"one panel added: {added:.1f} s wall, jobs rerun: {job_counts(log)} "
            "(target: the small named panels' fit job, compare, report)"
        )


if __name__ == "__main__":
    main()
