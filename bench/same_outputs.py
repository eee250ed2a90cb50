"""Before/after byte-identity of a run's outputs: run a project tree's workflow, compare two result trees.

A refactor that should change no number is checked by running the workflow of the old tree and of the
new tree on the same cohort and configs, then comparing every file the runs wrote. Files either match
byte for byte, or - where they carry wall-clock timings (fit.json's seconds, logs/, benchmarks/,
.snakemake/metadata/, and report.html should it ever show timing text) - match once the timing fields
are removed; the table says "bytes equal" or which fields were set aside. Parquet tables are compared
both by schema + values (pyarrow ``Table.equals``) and by bytes, and the table says which held.

    python bench/same_outputs.py run --tree /tmp/refwt --config config/config.yaml \
        config/examples/tuned.yaml --out /tmp/refruns [--cores 2] [--set model.epochs=200]
    python bench/same_outputs.py diff /tmp/refruns /tmp/afterruns

``run`` writes one fresh work directory per config, ``OUT/<name>`` (``default`` for the tree's
config/config.yaml, else the file's stem), with the snakemake output in ``OUT/<name>.log`` and the
exact command in ``OUT/<name>.cmd``. A relative config path is looked up in the tree first, then in
the current directory. ``diff`` takes two run directories (holding results/), two results/ folders,
or two parents of run directories (as ``run --out`` writes), and exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REAL_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "gbm_data.csv"
"""The real cohort, ../shared/data/gbm_data.csv next to the project root."""

TIMING_KEYS = frozenset({"seconds", "train_seconds", "train_gflops_per_s", "wall_seconds", "elapsed", "elapsed_s"})
"""JSON keys whose values are wall-clock measurements (the same run gives other values each time)."""

# Timing text: "1.23 s", "0:00:01", "12.3 GFLOP/s", log timestamps, dates; each replaced by a marker.
_TIMING_PATTERNS = (
    re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?"),  # timestamps
    re.compile(r"\b\d+:\d{2}:\d{2}(?:\.\d+)?\b"),  # h:m:s
    re.compile(r"-?\d+(?:\.\d+)?(?:e-?\d+)?\s*(?:s|ms|sec|seconds|min|GFLOP/s)\b"),  # durations, speeds
    re.compile(r'"(?:' + "|".join(sorted(TIMING_KEYS)) + r')"\s*:\s*-?[\d.eE+-]+'),  # embedded json
)


@dataclass(frozen=True)
class Row:
    """One line of the comparison table."""

    path: str
    same: bool
    what: str


def tree_config(tree: Path, name: str) -> Path:
    """The config file ``name``: absolute as given, else in ``tree``, else relative to the current dir."""
    path = Path(name)
    if path.is_absolute():
        return path
    if (tree / path).is_file():
        return (tree / path).resolve()
    return path.resolve()


def run_name(tree: Path, config: Path) -> str:
    """``default`` for the tree's config/config.yaml, else the config file's stem."""
    if config.resolve() == (tree / "config" / "config.yaml").resolve():
        return "default"
    return config.stem


def run_configs(tree: Path, configs: list[str], out: Path, cores: int, sets: list[str], csv: Path) -> int:
    """Run the workflow of ``tree`` once per config, one after another, each in a fresh ``out/<name>``."""
    tree = tree.resolve()
    if not (tree / "Snakefile").is_file():
        sys.exit(f"same_outputs: --tree {tree} holds no Snakefile; give the root of a panelmlp checkout")
    if not csv.is_file():
        sys.exit(f"same_outputs: --csv {csv} is not a file; give the cohort csv")
    out.mkdir(parents=True, exist_ok=True)
    failed = 0
    for name in configs:
        config = tree_config(tree, name)
        if not config.is_file():
            sys.exit(f"same_outputs: --config {name} is neither in {tree} nor a file here")
        work = out / run_name(tree, config)
        if work.exists():
            shutil.rmtree(work)
        cmd = [
            sys.executable,
            "-m",
            "snakemake",
            "--snakefile",
            str(tree / "Snakefile"),
            "--directory",
            str(work),
            "--cores",
            str(cores),
            "--configfile",
            str(config),
            "--config",
            f"raw_csv={csv}",
            *sets,
        ]
        line = "PYTHONHASHSEED=0 " + shlex.join(cmd)
        (out / f"{work.name}.cmd").write_text(f"cd {shlex.quote(str(tree))} && {line}\n")
        start = time.perf_counter()
        with open(out / f"{work.name}.log", "w") as log:
            proc = subprocess.run(
                cmd, cwd=tree, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONHASHSEED": "0"}
            )
        took = time.perf_counter() - start
        state = "ok" if proc.returncode == 0 else f"FAILED rc={proc.returncode}, see {out / work.name}.log"
        print(f"{work.name}: {took:.1f} s, {state}", flush=True)
        failed += proc.returncode != 0
    return 1 if failed else 0


SNAKEMAKE_VOLATILE_KEYS = frozenset({"starttime", "endtime", "job_hash"})
"""Keys of snakemake's .snakemake/metadata records that change from run to run (times, a Python hash)."""


def strip_keys(value: object, keys: frozenset[str]) -> object:
    """``value`` (parsed JSON) without the dict entries named in ``keys``, at any depth."""
    if isinstance(value, dict):
        return {k: strip_keys(v, keys) for k, v in value.items() if k not in keys}
    if isinstance(value, list):
        return [strip_keys(v, keys) for v in value]
    return value


def strip_timing_text(text: str) -> str:
    """``text`` with timestamps, durations, speeds and JSON timing fields replaced by ``<t>``."""
    for pattern in _TIMING_PATTERNS:
        text = pattern.sub("<t>", text)
    return text


def first_difference(a: str, b: str) -> str:
    """Where two texts first differ: the line number and both lines (shortened around the change)."""
    lines_a, lines_b = a.splitlines(), b.splitlines()
    for number, (la, lb) in enumerate(zip(lines_a, lines_b, strict=False), start=1):
        if la != lb:
            at = next(i for i, (x, y) in enumerate(zip(la + "\0", lb + "\1", strict=False)) if x != y)
            lo = max(0, at - 40)
            return f"line {number}: {la[lo : at + 40]!r} vs {lb[lo : at + 40]!r}"
    return f"{len(lines_a)} vs {len(lines_b)} lines"


def json_difference(a: object, b: object, where: str = "") -> str:
    """The first key path at which two parsed JSON values differ, with both values (shortened)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{where}/{key}: only in {'A' if key in a else 'B'}"
            if a[key] != b[key]:
                return json_difference(a[key], b[key], f"{where}/{key}")
        return f"{where or '/'}: key order"
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return json_difference(x, y, f"{where}[{i}]")
    return f"{where or '/'}: {str(a)[:60]} vs {str(b)[:60]}"


def compare_parquet(a: Path, b: Path, same_bytes: bool) -> Row:
    """Schema + values by ``pyarrow.Table.equals`` and bytes; which columns differ when values do.

    ``Table.equals`` calls a NaN unequal to itself, so a table with NaN (the epochs after early
    stopping in history.parquet) is compared column by column with NaN equal to NaN.
    """
    import numpy as np
    import pyarrow.parquet as pq

    ta, tb = pq.read_table(a), pq.read_table(b)
    bytes_note = "bytes " + ("equal" if same_bytes else "DIFFER")
    if ta.equals(tb, check_metadata=True):
        return Row("", same_bytes, f"values+schema equal (Table.equals), {bytes_note}")
    if not ta.schema.equals(tb.schema, check_metadata=False):
        return Row("", False, f"schema differs: {ta.schema} vs {tb.schema}".replace("\n", " ")[:300])
    if ta.num_rows != tb.num_rows:
        return Row("", False, f"rows differ: {ta.num_rows} vs {tb.num_rows}, {bytes_note}")
    notes = []
    for name in ta.column_names:
        ca, cb = ta.column(name), tb.column(name)
        if ca.equals(cb):
            continue
        try:
            va = np.asarray(ca.to_numpy(zero_copy_only=False), dtype=float)
            vb = np.asarray(cb.to_numpy(zero_copy_only=False), dtype=float)
        except (TypeError, ValueError):
            notes.append(name)
            continue
        unequal = ~((va == vb) | (np.isnan(va) & np.isnan(vb)))
        if unequal.any():
            both = np.isfinite(va) & np.isfinite(vb) & unequal
            gap = f"max |diff| {float(np.max(np.abs(va[both] - vb[both]))):.3g}, " if both.any() else ""
            notes.append(f"{name} ({gap}{int(unequal.sum())} of {len(va)} rows)")
    if notes:
        return Row("", False, f"values differ in {', '.join(notes)}; {bytes_note}"[:300])
    if not ta.schema.equals(tb.schema, check_metadata=True):
        return Row("", False, f"values equal (NaN = NaN), schema metadata differs, {bytes_note}")
    return Row("", same_bytes, f"values+schema equal (NaN = NaN), {bytes_note}")


def compare_checkpoint(a: Path, b: Path) -> Row:
    """Bytes differ: load both torch checkpoints and say whether the tensors and the rest are equal."""
    import torch

    def walk(x: object, y: object, where: str) -> str | None:
        if isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor):
            if x.shape != y.shape or x.dtype != y.dtype:
                return f"{where}: {tuple(x.shape)} {x.dtype} vs {tuple(y.shape)} {y.dtype}"
            if not torch.equal(x, y):
                return f"{where}: max |diff| {float((x.double() - y.double()).abs().max()):.3g}"
            return None
        if isinstance(x, dict) and isinstance(y, dict):
            if list(x) != list(y):
                return f"{where}: keys {list(x)[:6]} vs {list(y)[:6]}"
            return next((d for k in x if (d := walk(x[k], y[k], f"{where}/{k}"))), None)
        if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)) and len(x) == len(y):
            return next(
                (d for i, (u, v) in enumerate(zip(x, y, strict=True)) if (d := walk(u, v, f"{where}[{i}]"))), None
            )
        return None if x == y else f"{where}: {str(x)[:60]} vs {str(y)[:60]}"

    try:
        found = walk(torch.load(a, weights_only=False), torch.load(b, weights_only=False), "")
    except Exception as error:  # any unreadable checkpoint is reported, not raised
        return Row("", False, f"bytes differ; not loadable: {error}"[:200])
    return Row("", False, "bytes DIFFER, contents equal" if found is None else f"contents differ at {found}")


_TREE_PATH = re.compile(r'/[^"\s]*?/(?=(?:config|workflow)/)')
"""An absolute path up to a project tree's config/ or workflow/ folder (when the tree is not known)."""


def unrooted(text: str, tree: str) -> str:
    """``text`` with the project tree's absolute path replaced by ``<tree>/``.

    The tree is read from the ``<run>.cmd`` beside the run; without one, any absolute path up to a
    ``config/`` or ``workflow/`` folder is taken for the tree.
    """
    if tree:
        return text.replace(tree.rstrip("/") + "/", "<tree>/")
    return _TREE_PATH.sub("<tree>/", text)


def compare_file(rel: str, a: Path, b: Path, trees: tuple[str, str]) -> Row:
    """Compare one file present in both trees: bytes first, then the comparison its kind allows."""
    raw_a, raw_b = a.read_bytes(), b.read_bytes()
    same = raw_a == raw_b
    top = rel.split("/", 1)[0]
    if rel.endswith(".parquet"):
        row = compare_parquet(a, b, same)
        return Row(rel, row.same, row.what)
    if same:
        return Row(rel, True, "bytes equal")
    if rel.endswith(".pt"):
        row = compare_checkpoint(a, b)
        return Row(rel, row.same, row.what)
    text_a, text_b = raw_a.decode("utf-8", "replace"), raw_b.decode("utf-8", "replace")
    if top == ".snakemake":
        # Snakemake's records name the project tree that ran (inputs under it) and the job times.
        text_a, text_b = unrooted(text_a, trees[0]), unrooted(text_b, trees[1])
        try:
            ja = strip_keys(json.loads(text_a), SNAKEMAKE_VOLATILE_KEYS)
            jb = strip_keys(json.loads(text_b), SNAKEMAKE_VOLATILE_KEYS)
        except json.JSONDecodeError:
            return Row(rel, False, "differs: " + first_difference(text_a, text_b))
        if ja == jb:
            return Row(rel, True, "equal apart from times, job hash and tree path")
        return Row(rel, False, "differs: " + json_difference(ja, jb))
    if rel.endswith(".json"):
        try:
            ja, jb = json.loads(text_a), json.loads(text_b)
        except json.JSONDecodeError:
            return Row(rel, False, "differs (not JSON): " + first_difference(text_a, text_b))
        if ja == jb:
            return Row(rel, False, "same values, bytes DIFFER (formatting)")
        sa, sb = strip_keys(ja, TIMING_KEYS), strip_keys(jb, TIMING_KEYS)
        if sa == sb:
            return Row(rel, True, "equal apart from timing fields")
        return Row(rel, False, "differs: " + json_difference(sa, sb))
    if top == "benchmarks":  # every column is a measurement (time, memory, I/O): only the header must match
        head_a, head_b = text_a.split("\n", 1)[0], text_b.split("\n", 1)[0]
        if head_a == head_b:
            return Row(rel, True, "equal apart from measurements (header equal)")
        return Row(rel, False, f"header differs: {head_a!r} vs {head_b!r}")
    if top == "logs" or rel.endswith("report.html"):
        na, nb = strip_timing_text(text_a), strip_timing_text(text_b)
        if na == nb:
            return Row(rel, True, "equal apart from timing text")
        return Row(rel, False, "differs: " + first_difference(na, nb))
    return Row(rel, False, "bytes DIFFER: " + first_difference(text_a, text_b))


def listed_files(root: Path) -> dict[str, Path]:
    """The files of a work directory to compare, by relative path.

    Snakemake's bookkeeping other than its per-output records (metadata/) is left out: log file
    names are timestamps, and scripts/, incomplete/, locks/ and the like are transient.
    """
    found = {}
    for path in sorted(root.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(root).as_posix()
        if rel.startswith(".snakemake/") and not rel.startswith(".snakemake/metadata/"):
            continue
        found[rel] = path
    return found


def tree_of(run: Path) -> str:
    """The project tree a run used, read from the ``<run>.cmd`` that ``run`` wrote beside it ("" if none)."""
    cmd = run.parent / f"{run.name}.cmd"
    if cmd.is_file():
        words = shlex.split(cmd.read_text())
        if "--snakefile" in words:
            return str(Path(words[words.index("--snakefile") + 1]).parent)
    return ""


def shown(rel: str) -> str:
    """The path to print: snakemake names its records by the base64 of the output path; decode it."""
    head, sep, name = rel.partition(".snakemake/metadata/")
    if not sep:
        return rel
    try:
        return f"{head}.snakemake/metadata/<{base64.urlsafe_b64decode(name).decode()}>"
    except (ValueError, UnicodeDecodeError):
        return rel


def compare_runs(a: Path, b: Path) -> list[Row]:
    """Every file of two work directories (or two results/ folders), compared."""
    files_a, files_b = listed_files(a), listed_files(b)
    trees = (tree_of(a), tree_of(b))
    rows = []
    for rel in sorted(set(files_a) | set(files_b)):
        if rel not in files_b:
            rows.append(Row(shown(rel), False, "only in A"))
        elif rel not in files_a:
            rows.append(Row(shown(rel), False, "only in B"))
        else:
            row = compare_file(rel, files_a[rel], files_b[rel], trees)
            rows.append(Row(shown(rel), row.same, row.what))
    return rows


def run_pairs(a: Path, b: Path) -> list[tuple[str, Path | None, Path | None]]:
    """Pairs of work directories: ``a`` and ``b`` themselves, or their subfolders holding results/ by name."""
    if (a / "results").is_dir() or a.name == "results" or not a.is_dir():
        return [(a.name if a.name == b.name else f"{a.name} vs {b.name}", a, b)]
    runs_a = {p.name: p for p in a.iterdir() if (p / "results").is_dir()}
    runs_b = {p.name: p for p in b.iterdir() if (p / "results").is_dir()}
    return [(name, runs_a.get(name), runs_b.get(name)) for name in sorted(set(runs_a) | set(runs_b))]


def diff_command(a: Path, b: Path) -> int:
    """Print the comparison table of two result trees; 0 when all files are the same apart from timings."""
    if not a.is_dir() or not b.is_dir():
        sys.exit(f"same_outputs: diff needs two folders; {a if not a.is_dir() else b} is not one")
    print(f"A = {a}\nB = {b}")
    verdicts = []
    for name, run_a, run_b in run_pairs(a, b):
        if run_a is None or run_b is None:
            verdicts.append((name, False, f"run only in {'A' if run_b is None else 'B'}"))
            continue
        rows = compare_runs(run_a, run_b)
        width = max([len(row.path) for row in rows] + [4])
        print(f"\n== {name}: {run_a} vs {run_b}")
        print(f"{'file':<{width}}  {'':7}  what")
        for row in rows:
            print(f"{row.path:<{width}}  {'same' if row.same else 'DIFFERS':7}  {row.what}")
        bad = [row for row in rows if not row.same]
        results = [row for row in rows if row.path.startswith("results/") or a.name == "results"]
        summary = (
            f"identical apart from timings ({len(rows)} files, {len(results)} under results/)"
            if not bad
            else f"{len(bad)} of {len(rows)} files differ ({sum(r in bad for r in results)} under results/)"
        )
        verdicts.append((name, not bad, summary))
    print("\n== summary")
    for name, ok, summary in verdicts:
        print(f"{name}: {'SAME' if ok else 'DIFFERS'}: {summary}")
    return 0 if all(ok for _, ok, _ in verdicts) else 1


def config_sets(items: list[str]) -> list[str]:
    """``--config`` arguments for dotted ``key.sub=value`` overrides, merged per top-level key.

    Snakemake reads each ``key=value`` as YAML, so ``model.epochs=200`` and ``model.lr=0.01`` become
    one ``model={epochs: 200, lr: 0.01}`` (the workflow layers it key by key onto the config).
    """
    import yaml

    merged: dict[str, object] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            sys.exit(f"same_outputs: --set {item!r} is not key.sub=value; e.g. --set model.epochs=200")
        parts = key.split(".")
        node = merged
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
            if not isinstance(node, dict):
                sys.exit(f"same_outputs: --set {item!r} nests under a key already given a value")
        node[parts[-1]] = yaml.safe_load(value)  # type: ignore[index]
    return [
        f"{key}={value if not isinstance(value, (dict, list)) else yaml.safe_dump(value, default_flow_style=True).strip()}"
        for key, value in merged.items()
    ]


def main(argv: list[str] | None = None) -> int:
    """Command line: ``run`` or ``diff``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run the workflow of a project tree for each config")
    run.add_argument("--tree", type=Path, required=True, help="root of the project checkout whose code runs")
    run.add_argument("--config", nargs="+", required=True, help="config files, one run each")
    run.add_argument("--out", type=Path, required=True, help="parent of the fresh work directories")
    run.add_argument("--cores", type=int, default=2)
    run.add_argument("--csv", type=Path, default=REAL_CSV, help="the cohort (default: the real one)")
    run.add_argument("--set", action="append", default=[], help="extra --config key=value, e.g. model.epochs=200")
    diff = sub.add_parser("diff", help="compare two result trees file by file")
    diff.add_argument("a", type=Path)
    diff.add_argument("b", type=Path)
    args = parser.parse_args(argv)
    if args.command == "run":
        sets = config_sets(args.set)
        return run_configs(args.tree, args.config, args.out, args.cores, sets, args.csv)
    return diff_command(args.a, args.b)


if __name__ == "__main__":
    sys.exit(main())
