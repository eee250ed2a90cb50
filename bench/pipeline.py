"""Wall time of the workflow on the real cohort against the tutorial's loop, and where the time goes.

In one invocation, each run in a fresh temporary directory, `snakemake --cores 2`:

1. the one-panel run: the default model and splits with one named 10-gene
   panel (the panel bench/screen.py draws; the default panels removed), timed
   job by job, alternately with the tutorial script (bench/tutorial.py) and,
   with ``--before TREE``, the same run of another project tree (e.g. the
   commit before a change: ``git archive HEAD | tar -x -C /tmp/before``).
   Target: the one-panel run takes at most 0.35x the tutorial. Each round
   also times the floor (:func:`floor_workflow`): the same five steps as
   empty rule scripts that only import what their step cannot do without
   (pyarrow and, through pyarrow's numpy bridge, pandas; torch for fit;
   scipy.special for compare and report), so the breakdown shows how far
   above any five-rule implementation's start-up cost the run lies;
2. the import time of each rule script (``python -X importtime``, a fresh
   process per script): Snakemake's script preamble and the library, and the
   heaviest third-party packages it pulls in;
3. unless ``--one-panel-only``: a fresh run of the default config and the
   number of models it trained (target: at most 0.6x the tutorial), a no-op
   rerun (must schedule 0 jobs), and the same config plus one panel (only the
   small named panels' fit job and the aggregate steps rerun).

How a run's wall time is broken down. The timed runs put a sitecustomize.py of
this script's own on PYTHONPATH (nothing of the project is changed). Each rule
script's process notes when it started (/proc), when its first library import
began (the end of Snakemake's script preamble), when ``panelmlp.runner.run``
was called (the library imports done) and when it exited. Snakemake's own
process notes when its main code returned. So each job splits into
``python + preamble``, ``imports`` and ``work``, and Snakemake's own time into
the start before the first job (imports, parsing the Snakefile, the DAG), the
gaps between jobs, the wrap-up after the last job, and the interpreter's exit.

    python bench/pipeline.py [--raw ../shared/data/gbm_data.csv] [--cores 2] [--repeat 3]
                             [--before /tmp/before] [--tree NAME=DIR[@PYTHON] ...] [--one-panel-only]

``@PYTHON`` runs that tree's workflow with another environment's interpreter,
e.g. this tree in an environment that also has the SLURM executor plugin
(requirements-slurm.txt), whose loading every Snakemake start pays.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import yaml
from _common import REPO, machine
from screen import gene_names, random_sets

TIMINGS_ENV = "PANELMLP_BENCH_TIMINGS"
"""The file the timed runs' processes append their marks to (one JSON line per process)."""

SITECUSTOMIZE = '''"""Written by bench/pipeline.py and put on PYTHONPATH of its timed runs only: marks for the breakdown."""
import json
import os
import sys
import time

_OUT = os.environ.get("PANELMLP_BENCH_TIMINGS")


def _process_start():
    """Wall-clock time this process started (/proc/self/stat), else now."""
    try:
        with open("/proc/self/stat") as handle:
            ticks = int(handle.read().rsplit(")", 1)[1].split()[19])
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
        return time.time() - age
    except (OSError, ValueError, IndexError, AttributeError):
        return time.time()


def _write(marks):
    with open(_OUT, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(marks) + "\\n")


def _rule_script():
    import importlib.abc
    import importlib.machinery

    marks = {"kind": "job", "script": os.path.basename(sys.argv[0]), "start": _process_start()}

    def wrap(module):
        original = module.run

        def run(log_files, *args, **kwargs):
            marks["run"] = time.time()
            marks["log"] = str(log_files[0]) if log_files else ""
            real_exit = os._exit

            def _exit(code):
                marks["exit"] = time.time()
                _write(marks)
                real_exit(code)

            os._exit = _exit
            return original(log_files, *args, **kwargs)

        module.run = run

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "panelmlp" and "library" not in marks:
                marks["library"] = time.time()
            if name != "panelmlp.runner":
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.loader is not None:
                execute = spec.loader.exec_module

                def exec_module(module):
                    execute(module)
                    wrap(module)

                spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, Finder())


def _snakemake_main():
    import threading

    marks = {"kind": "snakemake", "start": _process_start()}
    shutdown = threading._shutdown

    def _shutdown():
        marks["returned"] = time.time()
        _write(marks)
        shutdown()

    threading._shutdown = _shutdown


if _OUT and sys.argv:
    if "/.snakemake/scripts/" in sys.argv[0]:
        _rule_script()
    elif sys.argv[0] == "-m":
        _snakemake_main()
'''

RULE_SCRIPTS = ("clean", "split", "fit", "compare", "report")
"""The rule scripts of the one-panel run, in the order they run."""

SNAKEMAKE_PARTS = (
    ("snakemake start (imports, Snakefile, DAG)", "before"),
    ("snakemake between jobs", "between"),
    ("snakemake wrap-up after the last job", "wrapup"),
    ("snakemake interpreter exit", "exit"),
)


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    """Wall seconds and output of a command that must succeed."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env)
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


def job_name(marks: dict) -> str:
    """A job's name from its log file: logs/clean.log -> clean, logs/fit/x.log -> fit/x."""
    log = marks.get("log") or marks["script"]
    name = log.split("logs/", 1)[-1]
    return name[: -len(".log")] if name.endswith(".log") else name


def breakdown(marks: list[dict], launched: float, ended: float) -> dict[str, float]:
    """Seconds per part of one timed run: Snakemake's own parts and each job's three parts."""
    main = next((m for m in marks if m["kind"] == "snakemake"), None)
    jobs = sorted((m for m in marks if m["kind"] == "job" and "exit" in m), key=lambda m: m["start"])
    parts: dict[str, float] = {"total": ended - launched}
    if not jobs or main is None:
        return parts
    busy, span_start, span_end = 0.0, jobs[0]["start"], jobs[0]["exit"]
    for job in jobs[1:]:  # union of the jobs' windows: jobs that overlap count once
        if job["start"] > span_end:
            busy += span_end - span_start
            span_start = job["start"]
        span_end = max(span_end, job["exit"])
    busy += span_end - span_start
    last_exit = max(j["exit"] for j in jobs)
    parts["before"] = jobs[0]["start"] - launched
    parts["between"] = (last_exit - jobs[0]["start"]) - busy
    parts["wrapup"] = main.get("returned", ended) - last_exit
    parts["exit"] = ended - main.get("returned", ended)
    for job in jobs:
        name = job_name(job)
        library = job.get("library", job["run"])
        parts[f"{name}|preamble"] = parts.get(f"{name}|preamble", 0.0) + library - job["start"]
        parts[f"{name}|imports"] = parts.get(f"{name}|imports", 0.0) + job["run"] - library
        parts[f"{name}|work"] = parts.get(f"{name}|work", 0.0) + job["exit"] - job["run"]
    return parts


def timed_run(tree: Path, work: Path, config: dict, python: str, cores: str) -> dict[str, float]:
    """A fresh run of ``tree``'s workflow with ``config`` over its default, broken down by part."""
    work.mkdir(parents=True)
    (work / "bench.yaml").write_text(yaml.safe_dump(config))
    hooks = work / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(SITECUSTOMIZE)
    timings = work / "timings.jsonl"
    env = {**os.environ, TIMINGS_ENV: str(timings)}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hooks), os.environ.get("PYTHONPATH", "")) if p)
    cmd = [python, "-m", "snakemake", "all", "--snakefile", str(tree / "Snakefile"), "--directory", str(work)]
    cmd += ["--cores", cores, "--configfile", str(work / "bench.yaml")]
    launched = time.time()
    run(cmd, tree, env)
    ended = time.time()
    marks = [json.loads(line) for line in timings.read_text().splitlines()]
    return breakdown(marks, launched, ended)


def print_breakdown(trees: dict[str, list[dict[str, float]]], tutorial: float) -> None:
    """Median seconds per part, one column per tree, and each tree's ratio to the tutorial."""
    names = list(trees)
    order = ["total", *(key for _, key in SNAKEMAKE_PARTS)]
    jobs: list[str] = []
    for runs in trees.values():
        for key in runs[0]:
            job = key.split("|")[0]
            if "|" in key and job not in jobs:
                jobs.append(job)

    def median(tree: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in trees[tree])

    width = 44
    print(f"{'part (median seconds)':<{width}}" + "".join(f"{n:>24}" for n in names))
    labels = {"total": "total wall", **{key: label for label, key in SNAKEMAKE_PARTS}}
    for key in order:
        print(f"{labels[key]:<{width}}" + "".join(f"{median(n, key):>24.2f}" for n in names))
    print(f"{'job: python+preamble / imports / work':<{width}}")
    for job in jobs:
        cells = []
        for n in names:
            pre, imp, wrk = (median(n, f"{job}|{p}") for p in ("preamble", "imports", "work"))
            cells.append(f"{pre + imp + wrk:5.2f} = {pre:.2f}/{imp:.2f}/{wrk:.2f}")
        print(f"{'  ' + job:<{width}}" + "".join(f"{c:>24}" for c in cells))
    for label, part in (
        ("all jobs: start-up (python+preamble+imports)", ("preamble", "imports")),
        ("all jobs: work", ("work",)),
    ):
        cells = [sum(median(n, f"{job}|{p}") for job in jobs for p in part) for n in names]
        print(f"{label:<{width}}" + "".join(f"{c:>24.2f}" for c in cells))
    print(f"{'tutorial script (median)':<{width}}{tutorial:>24.2f}")
    print(
        f"{'ratio one-panel run / tutorial (<= 0.35)':<{width}}"
        + "".join(f"{median(n, 'total') / tutorial:>24.2f}" for n in names)
    )


def package_times(lines: list[str]) -> dict[str, float]:
    """Cumulative ms of each third-party package, from ``-X importtime`` lines, where it is first entered."""
    totals: dict[str, float] = defaultdict(float)
    stack: list[tuple[int, str, bool]] = []  # (depth, package, inside Snakemake's own imports)
    for line in reversed(lines):  # a parent is printed after its children
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
        if not match:
            continue
        cumulative, depth, name = int(match.group(1)), len(match.group(2)), match.group(3)
        top = name.split(".")[0]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parent, in_snakemake = (stack[-1][1], stack[-1][2]) if stack else (None, False)
        in_snakemake = in_snakemake or top.startswith("snakemake")
        third_party = top not in sys.stdlib_module_names and top not in ("panelmlp", "_distutils_hack")
        if third_party and not in_snakemake and parent != top:
            totals[top] += cumulative / 1000
        stack.append((depth, top, in_snakemake))
    return totals


def import_times(tree: Path, python: str) -> dict[str, tuple[float, float, dict[str, float]]]:
    """Per rule script: ms of Snakemake's preamble import, ms of the script's own imports, heaviest packages."""
    out = {}
    for script in RULE_SCRIPTS:
        imports = [
            line
            for line in (tree / "workflow" / "scripts" / f"{script}.py").read_text().splitlines()
            if line.startswith(("import ", "from "))
        ]
        code = "import snakemake.script\n" + "\n".join(imports)
        proc = subprocess.run(
            [python, "-X", "importtime", "-c", code], cwd=tree / "workflow" / "scripts", capture_output=True, text=True
        )
        lines = proc.stderr.splitlines()
        top = [re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)", line) for line in lines]
        top = [(m.group(2), int(m.group(1)) / 1000) for m in top if m]
        preamble = sum(ms for name, ms in top if name.split(".")[0] == "snakemake")
        library = sum(ms for name, ms in top if name.split(".")[0] != "snakemake")
        out[script] = (preamble, library, package_times(lines))
    return out


def print_imports(trees: dict[str, Path], python: str) -> None:
    """Import ms per rule script and tree, with the three heaviest third-party packages."""
    print("\nimports of each rule script (fresh process, python -X importtime), ms:")
    results = {name: import_times(tree, python) for name, tree in trees.items()}
    for script in RULE_SCRIPTS:
        for name, times in results.items():
            preamble, library, packages = times[script]
            heavy = ", ".join(f"{p} {ms:.0f}" for p, ms in sorted(packages.items(), key=lambda kv: -kv[1])[:3])
            print(f"  {script:<11}{name:<13} preamble {preamble:5.0f}  library {library:5.0f}  ({heavy})")


FLOOR_STEPS = ("clean", "split", "fit", "compare", "report")
"""The floor workflow's chain: the one-panel run's five rules, in order, each needing the one before."""

FLOOR_SCRIPT = """import gc
import os

gc.disable()
import numpy as np
import pyarrow as pa
import pyarrow.parquet  # noqa: F401  (every step reads or writes parquet)

pa.array(np.zeros(1))  # pyarrow's numpy bridge imports pandas (its pandas shim): every step converting a column pays it
if snakemake.rule == "fit":
    import torch  # noqa: F401
if snakemake.rule in ("compare", "report"):
    from scipy.special import stdtrit  # noqa: F401  (the t quantile of every corrected interval)
open(snakemake.output[0], "w").close()
os._exit(0)  # as panelmlp.runner.run: no interpreter teardown
"""
"""A floor rule script: Snakemake's preamble, the imports its step cannot do without, no work."""


FLOOR_PROLOGUE = f"""import gc
import sys

sys.path.insert(0, {str(REPO / "workflow" / "scripts")!r})
from panelmlp.runner import exit_promptly


onsuccess:
    exit_promptly()


gc.freeze()


"""
"""The floor Snakefile's start: what the workflow's Snakefile does for a prompt exit (the same
:func:`panelmlp.runner.exit_promptly`), nothing else."""


def floor_workflow(work: Path) -> Path:
    """Write the floor workflow into ``work``: five chained rules with params (Snakemake hashes them, as it does
    the real rules'), each running :data:`FLOOR_SCRIPT`. Its wall time is what any five-rule implementation of
    the one-panel run pays before doing any work: Snakemake's start, five script processes and their imports."""
    work.mkdir(parents=True)
    (work / "step.py").write_text(FLOOR_SCRIPT)
    rules = ['rule all:\n    input:\n        "report.done",\n']
    for i, step in enumerate(FLOOR_STEPS):
        needs = f'    input:\n        "{FLOOR_STEPS[i - 1]}.done",\n' if i else ""
        rules.append(
            f'rule {step}:\n{needs}    output:\n        "{step}.done",\n    params:\n        n={i},\n'
            f'    log:\n        "logs/{step}.log",\n    script:\n        "step.py"\n'
        )
    (work / "Snakefile").write_text(FLOOR_PROLOGUE + "\n\n".join(rules))
    return work / "Snakefile"


def floor_run(work: Path, python: str, cores: str) -> float:
    """Wall seconds of a fresh run of the floor workflow in ``work``."""
    snakefile = floor_workflow(work)
    wall, _ = run(
        [python, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(work), "--cores", cores], work
    )
    return wall


def one_panel(raw: str, args: argparse.Namespace, python: str) -> None:
    """The one-panel run of each tree, alternately with the tutorial, broken down by part."""
    panel = random_sets(gene_names(Path(raw)), 1)[0]
    config = {"raw_csv": raw, "panels": {"glial": None, "microglia": None, "all": None, "one": panel}}
    trees = {"this tree": REPO}
    pythons = {"this tree": python}
    if args.before:
        trees["before"] = Path(args.before).resolve()
    for item in args.tree:
        name, _, spec = item.partition("=")
        path, _, own_python = spec.partition("@")
        trees[name] = Path(path).resolve()
        if own_python:
            pythons[name] = own_python
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
    tutorials = []
    floors = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            for name, tree in trees.items():
                work = Path(tmp) / f"{name.replace(' ', '-').replace(',', '')}-{i}"
                parts = timed_run(tree, work, config, pythons.get(name, python), args.cores)
                runs[name].append(parts)
            wall, _ = run([python, str(REPO / "bench" / "tutorial.py"), raw, str(Path(tmp) / "t.html")], REPO / "bench")
            tutorials.append(wall)
            floors.append(floor_run(Path(tmp) / f"floor-{i}", python, args.cores))
            print(
                f"round {i + 1}: tutorial {wall:.2f} s; "
                + ", ".join(f"{n} {r[-1]['total']:.2f} s ({r[-1]['total'] / wall:.2f}x)" for n, r in runs.items())
            )
    print(f"\none-panel run: the real cohort, default model, one 10-gene panel; median of {args.repeat}")
    print_breakdown(runs, statistics.median(tutorials))
    floor = statistics.median(floors)
    print(
        f"{'floor: five empty rule scripts, same imports':<44}{floor:>24.2f}   "
        f"({floor / statistics.median(tutorials):.2f}x the tutorial; see floor_workflow)"
    )
    print_imports(trees, python)


def default_runs(raw: str, args: argparse.Namespace, python: str) -> None:
    """The default config: a fresh run against the tutorial, a no-op rerun, one panel added."""
    smk = [python, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", args.cores]
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
            f"\ndefault config, fresh run: {fresh:.1f} s wall, {sum(job_counts(log).values())} jobs, "
            f"{models} MLPs trained (+ {2 * models} baseline fits)"
        )
        tutorial, _ = run(
            [python, str(REPO / "bench" / "tutorial.py"), raw, str(work / "tutorial.html")], REPO / "bench"
        )
        print(f"tutorial script, one model: {tutorial:.1f} s wall")
        print(f"ratio default run / tutorial: {fresh / tutorial:.2f} (target <= 0.6)")

        noop, log = run(base, REPO)
        print(f"no-op rerun: {noop:.1f} s wall, {sum(job_counts(log).values())} jobs scheduled (target 0)")

        extra = work / "extra.yaml"
        extra.write_text("panels:\n  astro: [GFAP, CLU, HEPACAM, SLC1A3]\n")
        added, log = run([*base, "--configfile", str(extra)], REPO)
        print(
            f"one panel added: {added:.1f} s wall, jobs rerun: {job_counts(log)} "
            "(target: the small named panels' fit job and the steps after it)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(REPO.parent / "shared" / "data" / "gbm_data.csv"))
    parser.add_argument("--cores", default="2")
    parser.add_argument("--repeat", type=int, default=3, help="rounds of one-panel run(s) and tutorial")
    parser.add_argument("--before", help="another project tree whose one-panel run is timed alongside")
    parser.add_argument(
        "--tree",
        action="append",
        default=[],
        metavar="NAME=DIR[@PYTHON]",
        help="one more tree to time (with another environment's python: e.g. one with the SLURM plugin installed)",
    )
    parser.add_argument("--one-panel-only", action="store_true", help="skip the default-config runs")
    args = parser.parse_args()
    raw = str(Path(args.raw).resolve())
    print(f"machine: {machine()}")
    one_panel(raw, args, sys.executable)
    if not args.one_panel_only:
        default_runs(raw, args, sys.executable)


if __name__ == "__main__":
    main()
