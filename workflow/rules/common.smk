import difflib
import gc
import re
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from panelmlp.errors import PanelMlpError
from panelmlp.runner import exit_promptly
from panelmlp.units import check_importance, check_set_names, plan_units


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


check_null_models()
# The fit jobs are planned in panelmlp.units (testable without Snakemake); a problem stops here in one line.
try:
    PLAN = plan_units(config, project_path)
    check_set_names(config["panels"], PLAN)
except PanelMlpError as exc:
    stop(str(exc))
FOLDERS = list(PLAN.folders)
"""Output folders under results/panels/: a named panel, or a part of a collection."""
UNITS = {name: unit.as_params() for name, unit in PLAN.jobs.items()}
"""Rule fit's jobs by unit (its wildcard), as the plain data of params.unit (predict.smk reads them too)."""
GROUPED = PLAN.grouped
"""The small named panels' job (a panelmlp.units.Unit), or None."""
resolve_input_paths()
check_inputs()
try:
    check_importance(config["evaluate"]["importance"], config["panels"], PLAN)
except PanelMlpError as exc:
    stop(str(exc))


wildcard_constraints:
    unit="|".join(map(re.escape, UNITS)) if UNITS else "^$",


def fit_threads(wildcards):
    """Threads of a fit job: resources.collection_threads for a collection part, train_threads otherwise."""
    unit = PLAN.jobs[wildcards.unit]
    return config["resources"][
        "collection_threads" if unit.is_collection else "train_threads"
    ]


def unit_files(wildcards):
    """The panel or GMT files of a fit job: its inputs, so editing one reruns the job."""
    return PLAN.jobs[wildcards.unit].files()


def unit_outputs(name):
    """One output file of every folder."""
    return [f"results/panels/{folder}/{name}" for folder in FOLDERS]


def grouped_outputs(name):
    """One output file of every folder of the small named panels' job."""
    return [f"results/panels/{panel}/{name}" for panel in GROUPED.panel_names]


def predict_report_inputs(kind):
    """The report's prediction inputs (kind "metrics": every metrics table; "summary": the JSON summary).

    None without a usable predict_csv; PREDICT_PLAN and the others are set by predict.smk.
    """
    if not config.get("predict_csv") or PREDICT_CSV_PROBLEM:
        return []
    if kind == "summary":
        return [f"results/predictions/{PREDICT_NAME}.json"]
    return [entry["metrics"] for entry in PREDICT_PLAN]


onsuccess:
    exit_promptly()


onerror:
    exit_promptly()


# Everything made so far (Snakemake, pandas, the plan) lives to the end of the process: keep the
# garbage collector from walking it again at every full collection and at exit (a no-op run too).
gc.freeze()
