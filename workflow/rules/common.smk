import difflib
import math
import re
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from panelmlp.config import panel_name_clash
from panelmlp.errors import PanelMlpError
from panelmlp.gmt import read_gmt
from panelmlp.panels import panel_genes

GROUP_MAX_GENES = 500
"""Named panels of at most this many genes (lists and files) are fitted together in one job."""


def stop(message):
    """End the run before any job with one line on stderr, ``panelmlp error: ...`` (no traceback)."""
    print(f"panelmlp error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def training_env():
    """The conda env of torch steps: the CUDA build only when the config asks for cuda."""
    name = "torch-cuda" if config["model"]["device"] == "cuda" else "torch-cpu"
    return f"../../envs/{name}.yaml"


def gpus_for_training():
    """One GPU for the fit job when the configured device is cuda, else none."""
    return 1 if config["model"]["device"] == "cuda" else 0


def mem_mb(base):
    """Memory that grows with each retry of a job (attempt 1, 2, ...)."""
    return lambda wildcards, attempt: base * attempt


def two_files():
    """Whether the input is an expression matrix with a sample sheet (input.expression) rather than raw_csv."""
    return bool(config["input"].get("expression"))


def input_files():
    """The clean step's input files: the expression matrix and sample sheet, or raw_csv."""
    if two_files():
        return [config["input"]["expression"], config["input"]["samples"]]
    return [config["raw_csv"]]


def download_wanted():
    """The download rule exists only for the configured download target, and only while it is absent."""
    target = config["download"].get("path", "")
    return (
        not two_files()
        and bool(config["download"].get("url"))
        and os.path.normpath(config["raw_csv"]) == os.path.normpath(target)
        and not os.path.exists(target)
    )


def not_found(path, key):
    """One line for an input path that does not exist, with the closest existing names."""
    folder = os.path.dirname(path) or "."
    hint = ""
    if os.path.isdir(folder):
        close = difflib.get_close_matches(
            os.path.basename(path), os.listdir(folder), n=3
        )
        if close:
            hint = f" (closest in {folder}: {', '.join(close)})"
    elif folder != ".":
        hint = f" (the folder {folder} does not exist either)"
    stop(
        f"config {key}: {path} not found{hint}; fix the path, or leave raw_csv at "
        f"{config['download'].get('path', 'its default')} to download the default cohort"
    )


def project_path(path):
    """A relative input, panel or GMT path as given when it exists here (the working directory), else in the project folder.

    So a run kept apart with `snakemake --directory runs/NAME` still finds the
    project's data/ and config/ files; a path found in neither stays as given.
    """
    if not path or os.path.isabs(path) or os.path.exists(path):
        return path
    shipped = os.path.join(workflow.basedir, path)
    return shipped if os.path.exists(shipped) else path


def resolve_input_paths():
    """raw_csv, input.expression, input.samples and predict_csv through project_path()."""
    for key in ("raw_csv", "predict_csv"):
        if isinstance(config.get(key), str):
            config[key] = project_path(config[key])
    for key in ("expression", "samples"):
        if isinstance(config["input"].get(key), str):
            config["input"][key] = project_path(config["input"][key])


def check_inputs():
    """Stop before any job when an input file is missing (only the download target is fetched).

    Also when input.samples is set without input.expression (the sheet would be ignored).
    """
    if two_files():
        for key in ("expression", "samples"):
            path = config["input"].get(key)
            if not path:
                stop(
                    f"config input.{key}: not set; input.expression and input.samples go together"
                )
            if not os.path.exists(path):
                not_found(path, f"input.{key}")
            if os.path.isdir(path):
                stop(
                    f"config input.{key}: {path} is a folder; point it at the table file"
                )
    elif config["input"].get("samples"):
        stop(
            f"config input.samples: {config['input']['samples']!r} is set but input.expression is not, so it "
            "would be ignored and raw_csv read; set input.expression to the expression matrix it goes with, "
            "or remove input.samples for one table (raw_csv)"
        )
    elif not os.path.exists(config["raw_csv"]) and not download_wanted():
        not_found(config["raw_csv"], "raw_csv")
    elif os.path.isdir(config["raw_csv"]):
        stop(
            f"config raw_csv: {config['raw_csv']} is a folder; point it at the table file"
        )


def collection_units(name, spec, per_job):
    """A gene-set collection cut into parts of at most ``per_job`` sets, smallest sets first.

    Sets are ordered by listed size, so a part holds sets of similar size (little
    padding, few random-panel pools per part); the GMT file is read here, once.
    """
    gmt = project_path(spec["gmt"])
    try:
        sets = read_gmt(gmt)
    except PanelMlpError as exc:
        stop(f"config panels.{name}: {exc}")
    ordered = [s.name for s in sorted(sets, key=lambda s: (len(s.genes), s.line))]
    parts = math.ceil(len(ordered) / per_job)
    digits = max(3, len(str(parts)))
    units = {}
    for j in range(parts):
        unit = f"{name}/part-{j + 1:0{digits}d}"
        units[unit] = {
            "name": unit,
            "collection": name,
            "gmt": gmt,
            "sets": ordered[j * per_job : (j + 1) * per_job],
            "min_size": spec.get("min_size", 5),
            "max_size": spec.get("max_size", 500),
            "min_coverage": spec.get("min_coverage", 0.8),
            "out_dir": f"results/panels/{unit}",
        }
    return units


def listed_genes(spec, name=None):
    """How many genes a named panel lists (a list or a file), or None for ``all``.

    A panel file that is missing, a folder, not UTF-8, lists no gene or a gene
    twice stops the run here, naming the panel ``name`` (plan_units() reads every file first).
    """
    if isinstance(spec, list):
        return len(spec)
    if spec == "all":
        return None
    try:
        return len(panel_genes(name or spec, spec))
    except PanelMlpError as exc:
        stop(f"config panels.{name or spec}: {exc}")


def named_unit(name, panels):
    """A fit job for named panels, each written to its own folder."""
    return {
        "name": name,
        "collection": "",
        "panels": panels,
        "out_dirs": {panel: f"results/panels/{panel}" for panel in panels},
    }


def plan_units():
    """Output folders (a named panel, or a part of a collection) and the fit jobs that write them.

    Named panels of at most GROUP_MAX_GENES listed genes share one job, so a
    further small panel costs no further process; ``all`` and larger panels get
    a job each, so adding a small panel never retrains them.
    """
    folders, jobs, grouped = [], {}, {}
    per_job = config["resources"]["panels_per_job"]
    for name, spec in config["panels"].items():
        if spec is None:
            continue
        if isinstance(spec, dict):
            parts = collection_units(name, spec, per_job)
            folders += list(parts)
            jobs.update(parts)
            continue
        if isinstance(spec, str) and spec != "all":
            spec = project_path(spec)
        folders.append(name)
        size = listed_genes(spec, name)
        if size is not None and size <= GROUP_MAX_GENES:
            grouped[name] = spec
        else:
            jobs[name] = named_unit(name, {name: spec})
    return folders, jobs, (named_unit("named panels", grouped) if grouped else None)


def check_null_models():
    """Permutation and random-panel nulls are scored on CV splits: stop early when there are none."""
    wanted = [
        key
        for key in ("permutations", "random_panels")
        if config["evaluate"].get(key, 0) == "auto"
        or config["evaluate"].get(key, 0) > 0
    ]
    if wanted and config["split"].get("cv_repeats", 2) < 1:
        keys = " and ".join(f"evaluate.{k}" for k in wanted)
        stop(
            f"config {keys} need cross-validation splits, but split.cv_repeats is 0; "
            "set split.cv_repeats to 1 or more, or the null models to 0"
        )


def check_set_names():
    """Stop when a gene set of a collection has the name of a panel or collection under panels."""
    sets = {}
    for unit in UNITS.values():
        if unit["collection"]:
            gmt, names = sets.setdefault(unit["collection"], (unit["gmt"], []))
            names.extend(unit["sets"])
    clash = panel_name_clash(config["panels"], sets)
    if clash is not None:
        stop(clash)


check_null_models()
FOLDERS, UNITS, GROUPED = plan_units()
"""Output folders under results/panels/; fit jobs by unit (rule fit's wildcard); the small named panels' job."""
check_set_names()
resolve_input_paths()
check_inputs()


def check_importance_panels():
    """evaluate.importance names configured panels or sets of a collection: stop before any job otherwise.

    Whether a set survives the coverage and size filters is known only after
    fit; the importance job itself says so in one line.
    """
    known = [
        name
        for name, spec in config["panels"].items()
        if spec is not None and not isinstance(spec, dict)
    ]
    for unit in UNITS.values():
        if unit["collection"]:
            known += list(unit["sets"])
            known += [f"{unit['collection']}/{s}" for s in unit["sets"]]
    for name in config["evaluate"]["importance"]:
        if name not in known:
            close = difflib.get_close_matches(name, list(dict.fromkeys(known)), n=3)
            hint = f" (closest: {', '.join(close)})" if close else ""
            stop(
                f"config evaluate.importance: {name!r} is not a panel of this run{hint}; "
                "name a panel of config panels or a set of a collection (as set or collection/set), or leave it out"
            )


check_importance_panels()


wildcard_constraints:
    unit="|".join(map(re.escape, UNITS)) if UNITS else "^$",


def fit_threads(wildcards):
    """Threads of a fit job: a collection part steps many models at once and gains from more than one."""
    unit = UNITS[wildcards.unit]
    return config["resources"][
        "collection_threads" if unit["collection"] else "train_threads"
    ]


def job_files(unit):
    """The panel or GMT files of a fit job: its inputs, so editing one reruns the job."""
    if unit["collection"]:
        return [unit["gmt"]]
    return [s for s in unit["panels"].values() if isinstance(s, str) and s != "all"]


def unit_files(wildcards):
    return job_files(UNITS[wildcards.unit])


def unit_outputs(name):
    """One output file of every folder."""
    return [f"results/panels/{folder}/{name}" for folder in FOLDERS]


def grouped_outputs(name):
    """One output file of every folder of the small named panels' job."""
    return [f"results/panels/{panel}/{name}" for panel in GROUPED["panels"]]


def predict_report_inputs(kind):
    """The report's prediction inputs (kind "metrics": every metrics table; "summary": the JSON summary).

    None without a usable predict_csv; PREDICT_PLAN and the others are set by predict.smk.
    """
    if not config.get("predict_csv") or PREDICT_CSV_PROBLEM:
        return []
    if kind == "summary":
        return [f"results/predictions/{PREDICT_NAME}.json"]
    return [entry["metrics"] for entry in PREDICT_PLAN]
