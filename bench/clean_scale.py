"""How the clean step scales with the width of the cohort, and what quoted text costs it.

Generates synthetic cohorts in the real file's schema (2,000 samples; 1,000,
5,000 and 20,000 genes; a few malformed lines each) and measures, each in a
fresh subprocess so peak memory is the step's own, the wall time and peak RSS
of the clean step against `pyarrow.csv.read_csv` of the same file (skipping
the malformed lines it cannot read). Targets: time within 2x, peak memory
above the import baseline within 3x of the float32 expression matrix. The
whole workflow at this size is bench/scale.py.

Then the quoting pair (issue 13, part 2): a 1,000 x 20,000 cohort whose every
line holds its smoking history as a double-quoted field (R's write.csv quotes
every text field), one of them with a comma inside, against the same file
with the quote characters removed (that line is then one of the unquoted
free-text commas the reader repairs). The two runs alternate, ``--repeats``
pairs. Targets: quoted peak RSS <= 1.5 GB and time <= 1.3x the unquoted file.

    python bench/clean_scale.py [--genes 1000 5000 20000] [--samples 2000]
    python bench/clean_scale.py --only-quoted [--quoted 1000 20000] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import os
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
cpu0 = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
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
usage = resource.getrusage(resource.RUSAGE_SELF)
cpu = usage.ru_utime + usage.ru_stime - cpu0
print(json.dumps({{"wall": wall, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024, "base_mb": base / 1024}}))
"""


def child(task: str, args: dict) -> dict:
    code = CHILD.format(scripts=str(REPO / "workflow" / "scripts"))
    proc = subprocess.run([sys.executable, "-c", code, task, json.dumps(args)], capture_output=True, text=True)
    if proc.returncode:
        sys.exit(proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_quoting_pair(folder: Path, n_samples: int, n_genes: int) -> tuple[Path, Path]:
    """The same cohort twice: smoking history double-quoted on every line (one with a comma inside), and unquoted.

    The history is the clinical field three from the end (see
    :func:`panelmlp.synthetic.write_cohort`); every sample has one.
    """
    from panelmlp.synthetic import SMOKER_TEXTS, write_cohort

    source = folder / "source.csv"
    write_cohort(source, n_samples=n_samples, n_genes=n_genes, missing_history=0, n_malformed=0, seed=1)
    quoted, plain = folder / "quoted.csv", folder / "unquoted.csv"
    with (
        open(source, encoding="utf-8") as lines,
        open(quoted, "w", encoding="utf-8") as q,
        open(plain, "w", encoding="utf-8") as u,
    ):
        header = next(lines)
        q.write(header)
        u.write(header)
        for number, line in enumerate(lines, start=2):
            head, history, *tail = line.rstrip("\n").rsplit(",", 3)
            if number == 2:
                history = SMOKER_TEXTS[2]  # "Current reformed smoker, more than 15 years "
            q.write(",".join([head, f'"{history}"', *tail]) + "\n")
            u.write(",".join([head, history, *tail]) + "\n")
    source.unlink()
    return quoted, plain


def quoting_pair(tmp: Path, n_samples: int, n_genes: int, repeats: int) -> None:
    """The clean step on the quoted and the unquoted file, alternating, with the ratios."""
    folder = tmp / "quoting"
    folder.mkdir()
    quoted, plain = write_quoting_pair(folder, n_samples, n_genes)
    print(
        f"\nquoting: {n_samples:,} samples x {n_genes:,} genes, {quoted.stat().st_size / 2**20:.0f} MB; "
        "every line's smoking history double-quoted (one with a comma inside) vs the same file without the quotes"
    )
    print(
        f"{'pair':>4} {'load':>5} {'unquoted s':>10} {'quoted s':>9} {'ratio':>6} {'unq. cpu s':>10} {'q. cpu s':>9} "
        f"{'cpu ratio':>9} {'unquoted MB':>11} {'quoted MB':>9} {'repaired':>8}"
    )
    ratios, cpu_ratios, peaks = [], [], []
    for pair in range(1, repeats + 1):
        out = {}
        for name, csv in (("unquoted", plain), ("quoted", quoted)):
            paths = {
                k: str(folder / f"{name}.{v}")
                for k, v in {"cohort": "parquet", "quarantine": "tsv", "json": "json"}.items()
            }
            out[name] = child("clean", {"csv": str(csv), **paths})
            out[name]["acc"] = json.loads(Path(paths["json"]).read_text())
        for name in out:  # every line must be read, none quarantined: the pair compares like with like
            acc = out[name]["acc"]
            if acc["quarantined"] or acc["rows_in_cohort"] != n_samples:
                sys.exit(f"{name}: {acc['rows_in_cohort']} rows, {acc['quarantined']} quarantined")
        u, q = out["unquoted"], out["quoted"]
        ratios.append(q["wall"] / u["wall"])
        cpu_ratios.append(q["cpu"] / u["cpu"])
        peaks.append(q["peak_mb"])
        print(
            f"{pair:>4} {os.getloadavg()[0]:>5.1f} {u['wall']:>10.2f} {q['wall']:>9.2f} {ratios[-1]:>5.2f}x "
            f"{u['cpu']:>10.2f} {q['cpu']:>9.2f} {cpu_ratios[-1]:>8.2f}x {u['peak_mb']:>11.0f} {q['peak_mb']:>9.0f} "
            f"{u['acc']['repaired']:>4}/{q['acc']['repaired']}"
        )
    print(
        f"quoted / unquoted wall time: {min(ratios):.2f}-{max(ratios):.2f}x (target <= 1.3x), CPU time "
        f"{min(cpu_ratios):.2f}-{max(cpu_ratios):.2f}x; quoted peak RSS {max(peaks):.0f} MB (target <= 1,536 MB).\n"
        "MB: the process's peak RSS, imports included; cpu: user + system time of all threads (less swayed than\n"
        "wall time by other work on the machine); load: 1-minute load average after the pair; "
        "repaired: lines repaired, unquoted/quoted"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--genes", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--quoted", type=int, nargs=2, default=[1000, 20000], metavar=("SAMPLES", "GENES"))
    parser.add_argument("--repeats", type=int, default=2, help="quoted/unquoted pairs")
    parser.add_argument("--only-quoted", action="store_true", help="skip the width scan")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "workflow" / "scripts"))
    from panelmlp.synthetic import write_cohort

    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.only_quoted:
            quoting_pair(Path(tmp), *args.quoted, args.repeats)
            return
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
        quoting_pair(Path(tmp), *args.quoted, args.repeats)


if __name__ == "__main__":
    main()
