"""Gene-set screens on the real cohort: what many panels cost against one, their memory, and what their report weighs.

In one invocation, each a fresh `snakemake --cores 2` run of the whole workflow
(clean to report) in its own temporary folder, on the real cohort with the
default model (1,000 epochs, 5x2 CV) unless said otherwise:

1. the default config (3 named panels): the reference of the report figures;
2. the screen ratio: a run whose only panel is one named 10-gene panel, and
   a run whose only panels are 50 ten-gene sets of one GMT file, alternately
   (``--repeat`` pairs, default 3), and the median of the pairs' ratios.
   Target: <= 2x. Each run's trained panels are counted in its summary.tsv,
   so the reference cannot hold more than the one panel;
3. collections of ``--sizes`` ten-gene sets (default 1 and 200; ``--sizes
   5000`` is the MSigDB-size screen): wall time against the median 50-set run.
   Target at 5,000 sets: <= 60x (100x the sets);
4. the null-model screen: 200 ten-gene sets with ``evaluate.random_panels:
   2000`` (all sets of size 10 share one pool), 300 epochs and 5x1 CV.
   Target: <= 3x the median 50-set run;
5. every run's jobs: the peak memory of each (Snakemake's benchmark
   ``max_rss``; it samples every 0.5 s in a job's first 30 s, every 30 s
   after). Target: <= 1.5 GB for every job;
6. every run's report: size, and load time in headless Chromium (median of
   fresh browsers; load event, and all figures shown at load drawn), against
   the 3-panel default report. Targets: <= 20 MB, drawn within 2x the 3-panel
   report's time (a screen of more than 200 sets details only the sets a
   reader needs; every set has its row in the searchable ranked table).

On a shared 2-core machine one run's wall time varies by 20-40%; the pairs
of (2) put both runs of a ratio under the same load.

    python bench/screen.py [--raw ../shared/data/gbm_data.csv] [--sizes 1 200] [--repeat 3] [--skip-random] [--runs 5]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from _common import REPO, machine

MEMORY_TARGET_MB = 1536
"""Most peak memory (max_rss) any job of a screen may take: 1.5 GB."""

NO_DEFAULTS = {"glial": None, "microglia": None, "all": None}
"""The default config's panels, left out (a null panel is no panel)."""


@dataclass
class Run:
    """One fresh workflow run: wall seconds, trained panels, and each job's benchmark (seconds, max_rss MB)."""

    wall: float
    panels: int
    jobs: dict[str, tuple[float, float]] = field(default_factory=dict)
    report: Path | None = None

    def peak(self) -> tuple[str, float]:
        """The job with the largest max_rss, and that peak in MB."""
        if not self.jobs:
            return "?", float("nan")
        job = max(self.jobs, key=lambda j: self.jobs[j][1])
        return job, self.jobs[job][1]

    def memory_line(self) -> str:
        """Peak memory of each rule's largest job, and how many jobs exceed the target."""
        peaks: dict[str, float] = {}
        for job, (_seconds, mb) in self.jobs.items():
            rule = job.split("/", 1)[0]
            peaks[rule] = max(peaks.get(rule, 0.0), mb)
        over = sum(mb > MEMORY_TARGET_MB for _s, mb in self.jobs.values())
        by_rule = ", ".join(f"{rule} {mb:.0f}" for rule, mb in sorted(peaks.items(), key=lambda kv: -kv[1]))
        return f"peak memory MB: {by_rule} ({len(self.jobs)} jobs, {over} over {MEMORY_TARGET_MB} MB)"

    def seconds_by_rule(self) -> str:
        """Job seconds summed per rule (fit parts together), largest first."""
        total: dict[str, float] = {}
        for job, (seconds, _mb) in self.jobs.items():
            rule = job.split("/", 1)[0]
            total[rule] = total.get(rule, 0.0) + seconds
        return ", ".join(f"{rule} {s:.1f} s" for rule, s in sorted(total.items(), key=lambda kv: -kv[1]))


def gene_names(raw: Path) -> list[str]:
    """The cohort's expression columns: every header field left of PATIENT_ID."""
    header = raw.open(encoding="utf-8").readline().rstrip("\n").split(",")
    return header[: header.index("PATIENT_ID")]


def random_sets(genes: list[str], n_sets: int, size: int = 10, seed: int = 0) -> list[list[str]]:
    """``n_sets`` gene sets of ``size`` distinct genes of the cohort (seeded: the same sets every invocation)."""
    rng = np.random.default_rng(seed)
    return [[str(g) for g in rng.choice(genes, size, replace=False)] for _ in range(n_sets)]


def write_gmt(path: Path, sets: list[list[str]]) -> None:
    """A GMT file of the sets, named SET_0000, SET_0001, ..."""
    path.write_text("".join(f"SET_{i:04d}\tbench\t" + "\t".join(s) + "\n" for i, s in enumerate(sets)))


def panels_trained(work: Path) -> int:
    """Panels with MLP rows in the run's summary.tsv."""
    with (work / "results/metrics/summary.tsv").open(encoding="utf-8") as handle:
        rows = csv.DictReader(handle, delimiter="\t")
        return len({(r["collection"], r["panel"]) for r in rows if r["model"] == "mlp"})


def job_benchmarks(work: Path) -> dict[str, tuple[float, float]]:
    """Every job's benchmark file (benchmarks/**.tsv): its seconds and max_rss in MB."""
    out = {}
    for path in sorted((work / "benchmarks").rglob("*.tsv")):
        with path.open(encoding="utf-8") as handle:
            row = next(csv.DictReader(handle, delimiter="\t"))
        rss = float(row["max_rss"]) if row.get("max_rss") not in (None, "", "-", "NA") else float("nan")
        out[str(path.relative_to(work / "benchmarks").with_suffix(""))] = (float(row["s"]), rss)
    return out


def run(work: Path, config: dict, expect: int) -> Run:
    """A fresh run of the whole workflow with ``config`` merged over the default; it must train ``expect`` panels."""
    work.mkdir(parents=True, exist_ok=True)
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work)]
    cmd += ["--cores", "2", "--configfile", str(work / "bench.yaml"), "--quiet", "rules", "--", "all"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(proc.stdout[-3000:] + proc.stderr[-5000:])
    trained = panels_trained(work)
    if trained != expect:
        sys.exit(f"{work}: trained {trained} panels, expected {expect}: the benchmark would compare the wrong runs")
    return Run(wall, trained, job_benchmarks(work), work / "results/report.html")


def collection(raw: Path, genes: list[str], work: Path, n: int, **extra: dict) -> Run:
    """A run whose only panels are ``n`` ten-gene sets of one GMT file (``extra``: config sections merged in)."""
    work.mkdir(parents=True, exist_ok=True)
    write_gmt(work / "sets.gmt", random_sets(genes, n))
    return run(work, {"raw_csv": str(raw), "panels": {**NO_DEFAULTS, "sets": {"gmt": "sets.gmt"}}, **extra}, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(REPO.parent / "shared" / "data" / "gbm_data.csv"))
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=[1, 200], help="collection sizes besides 50 (5000: MSigDB size)"
    )
    parser.add_argument("--skip-random", action="store_true", help="skip the 200-set, 2,000-random-panel screen")
    parser.add_argument("--runs", type=int, default=5, help="fresh browsers per report load time")
    parser.add_argument("--repeat", type=int, default=3, help="paired runs of one panel and 50 sets")
    args = parser.parse_args()
    raw = Path(args.raw).resolve()
    genes = gene_names(raw)
    print(f"machine: {machine()}; cohort {raw.name}, {len(genes)} genes", flush=True)
    runs: dict[str, Run] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        runs["default, 3 panels"] = run(base / "default", {"raw_csv": str(raw)}, 3)
        print(f"default config, 3 named panels: {runs['default, 3 panels'].wall:.1f} s", flush=True)
        one = {"raw_csv": str(raw), "panels": {**NO_DEFAULTS, "one": random_sets(genes, 1)[0]}}
        pairs = []
        for i in range(args.repeat):
            single = run(base / f"one{i}", one, 1)
            many = collection(raw, genes, base / f"fifty{i}", 50)
            pairs.append((single, many))
            print(
                f"pair {i + 1}: one named 10-gene panel (the run's only panel) {single.wall:.1f} s, "
                f"50 ten-gene sets {many.wall:.1f} s: {many.wall / single.wall:.2f}x",
                flush=True,
            )
        runs["one panel"], runs["50 sets"] = pairs[-1]
        ratios = sorted(m.wall / s.wall for s, m in pairs)
        fifty = statistics.median(m.wall for _s, m in pairs)
        print(
            f"50 sets against one panel: median {statistics.median(ratios):.2f}x (range {ratios[0]:.2f}-{ratios[-1]:.2f}; "
            f"target <= 2x); median 50-set run {fifty:.1f} s, one-panel run {statistics.median(s.wall for s, _m in pairs):.1f} s",
            flush=True,
        )
        print(f"  50 sets: {pairs[-1][1].memory_line()}; job seconds: {pairs[-1][1].seconds_by_rule()}", flush=True)
        for n in (n for n in args.sizes if n != 50):
            result = collection(raw, genes, base / f"sets{n}", n)
            runs[f"{n} sets"] = result
            target = " (target <= 60x)" if n >= 5000 else ""
            print(
                f"collection of {n} ten-gene sets: {result.wall:.1f} s, {result.wall / fifty:.2f}x the median 50-set run{target}",
                flush=True,
            )
            print(f"  {result.memory_line()}; job seconds: {result.seconds_by_rule()}", flush=True)
        if not args.skip_random:
            extra = {"model": {"epochs": 300}, "split": {"cv_repeats": 1}, "evaluate": {"random_panels": 2000}}
            result = collection(raw, genes, base / "random", 200, **extra)
            runs["200 sets + 2,000 random"] = result
            print(
                f"200 sets, 2,000 random panels (one shared pool), 300 epochs, 5x1 CV: {result.wall:.1f} s, "
                f"{result.wall / fifty:.2f}x the median 50-set run (target <= 3x)",
                flush=True,
            )
            print(f"  {result.memory_line()}; job seconds: {result.seconds_by_rule()}", flush=True)
        over = [(name, *r.peak()) for name, r in runs.items() if r.peak()[1] > MEMORY_TARGET_MB]
        print(
            "every job of every run within 1.5 GB"
            if not over
            else "over 1.5 GB: " + "; ".join(f"{n}: {j} {mb:.0f} MB" for n, j, mb in over)
        )
        report_table({name: r.report for name, r in runs.items() if r.report is not None}, args.runs)


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
    print("targets: <= 20 MB, drawn within 2x of the 3-panel report")


if __name__ == "__main__":
    main()
