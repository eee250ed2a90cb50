import math
import re
import os
import sys

sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from panelmlp.errors import PanelMlpError
from panelmlp.gmt import read_gmt


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


def raw_csv_missing():
    return not os.path.exists(config["raw_csv"])


def panel_path(spec):
    """A panel or GMT file, relative to the working directory or else to the workflow."""
    if os.path.exists(spec) or os.path.isabs(spec):
        return spec
    shipped = os.path.join(workflow.basedir, spec)
    return shipped if os.path.exists(shipped) else spec


def collection_units(name, spec, per_job):
    """A gene-set collection cut into parts of at most ``per_job`` sets, smallest sets first.

    Sets are ordered by listed size, so a part holds sets of similar size (little
    padding, few random-panel pools per part); the GMT file is read here, once.
    """
    gmt = panel_path(spec["gmt"])
    try:
        sets = read_gmt(gmt)
    except PanelMlpError as exc:
        raise WorkflowError(f"panelmlp error: config panels.{name}: {exc}") from None
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
        }
    return units


def all_units():
    """Every fit job: one per named panel, and one per part of each collection."""
    units = {}
    per_job = config["resources"]["panels_per_job"]
    for name, spec in config["panels"].items():
        if spec is None:
            continue
        if isinstance(spec, dict):
            units.update(collection_units(name, spec, per_job))
            continue
        if isinstance(spec, str) and spec != "all":
            spec = panel_path(spec)
        units[name] = {"name": name, "collection": "", "panel": name, "spec": spec}
    return units


UNITS = all_units()
"""Fit jobs by unit name (a panel name, or ``collection/part-NNN``); a panel set to null is left out."""


wildcard_constraints:
    unit="|".join(map(re.escape, UNITS)) if UNITS else "^$",


def fit_threads(wildcards):
    """Threads of a fit job: a collection part steps many models at once and gains from more than one."""
    unit = UNITS[wildcards.unit]
    return config["resources"][
        "collection_threads" if unit["collection"] else "train_threads"
    ]


def unit_files(wildcards):
    """A unit's panel or GMT file is an input of its fit job, so editing it reruns the unit."""
    unit = UNITS[wildcards.unit]
    if unit["collection"]:
        return [unit["gmt"]]
    spec = unit["spec"]
    return [spec] if isinstance(spec, str) and spec != "all" else []


def unit_outputs(name):
    """One output file of every unit."""
    return [f"results/panels/{unit}/{name}" for unit in UNITS]
