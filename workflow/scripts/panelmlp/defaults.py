"""Config defaults, read from the schema: the one place every default lives.

Kept apart from :mod:`panelmlp.config` (which validates with jsonschema) so
that every step can fill defaults with nothing but PyYAML.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from functools import cache
from pathlib import Path

import yaml

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "schemas" / "config.schema.yaml"
"""The config schema: the one place every default lives."""


def schema_defaults(section: str, schema_path: str | Path = SCHEMA_PATH) -> dict:
    """The schema's default of every key of a config section that has one (``split``, ``model``, ...).

    Library functions called without Snakemake (tests, notebooks) fill what
    they were not given from here, so no default is written down twice.
    """
    properties = _schema(str(schema_path))["properties"][section].get("properties", {})
    return {key: copy.deepcopy(spec["default"]) for key, spec in properties.items() if "default" in spec}


def with_defaults(section: str, values: Mapping | None) -> dict:
    """``values`` of a config section over the schema's defaults of that section."""
    return {**schema_defaults(section), **dict(values or {})}


def schema_default(key: str, schema_path: str | Path = SCHEMA_PATH) -> object:
    """The schema's default of one dotted key (``model.inner_folds``, ``model.early_stopping.patience``).

    A key inside an object that may be null (``model.early_stopping``) keeps
    its default as ``x-default``: a ``default`` there would make Snakemake's
    ``validate()`` fill it into a null value and fail. A key without either is
    an error: a library caller must not invent one.
    """
    node: dict = _schema(str(schema_path))
    for part in key.split("."):
        properties = node.get("properties", {})
        if part not in properties:
            raise KeyError(f"{key}: not a key of the config schema")
        node = properties[part]
    for name in ("default", "x-default"):
        if name in node:
            return copy.deepcopy(node[name])
    raise KeyError(f"{key}: the config schema gives no default")


def read_schema_file(path: str | Path) -> dict:
    """The config schema as a dict: parsed once per process (libyaml's parser where PyYAML has it), a fresh copy each call.

    The Snakefile, the config checks and the planners all read it; PyYAML's pure-Python parser takes
    about 45 ms each time.
    """
    return copy.deepcopy(_schema(str(Path(path).resolve())))


@cache
def _schema(path: str) -> dict:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return yaml.load(Path(path).read_text(encoding="utf-8"), Loader=loader)
