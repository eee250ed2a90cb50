import os

PANELS = [name for name, spec in config["panels"].items() if spec is not None]
"""Panels to run; a panel set to null (e.g. in an extra --configfile) is left out."""


wildcard_constraints:
    panel="|".join(PANELS) if PANELS else "^$",


def training_env():
    """The conda env of torch steps: the CUDA build only when the config asks for cuda."""
    name = "torch-cuda" if config["model"]["device"] == "cuda" else "torch-cpu"
    return f"../../envs/{name}.yaml"


def gpus_for_training():
    """One GPU for the train job when the configured device is cuda, else none."""
    return 1 if config["model"]["device"] == "cuda" else 0


def mem_mb(base):
    """Memory that grows with each retry of a job (attempt 1, 2, ...)."""
    return lambda wildcards, attempt: base * attempt


def raw_csv_missing():
    return not os.path.exists(config["raw_csv"])


def panel_path(spec):
    """A panel file, relative to the working directory or else to the workflow."""
    if os.path.exists(spec) or os.path.isabs(spec):
        return spec
    shipped = os.path.join(workflow.basedir, spec)
    return shipped if os.path.exists(shipped) else spec


def panel_spec(wildcards):
    spec = config["panels"][wildcards.panel]
    if isinstance(spec, str) and spec != "all":
        return panel_path(spec)
    return spec


def panel_file(wildcards):
    """A panel kept in a file is an input of its scale job, so editing it reruns the panel."""
    spec = panel_spec(wildcards)
    return [spec] if isinstance(spec, str) and spec != "all" else []
