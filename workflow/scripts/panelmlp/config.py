"""Config checks that speak the user's language."""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml


def config_error(config: Mapping, schema_path: str | Path) -> str | None:
    """One line naming the first bad config key and what is wrong, or None if the config is valid.

    Snakemake's own message on a schema violation is the schema dump; this is
    the line a user needs: ``config model.activation: 'swish' is not one of [...]``.
    """
    schema = read_schema(schema_path)
    errors = jsonschema.Draft202012Validator(schema).iter_errors(dict(config))
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"config {key}: {error.message}; see config/README.md"


def read_schema(schema_path: str | Path) -> dict:
    """The config schema as a dict."""
    return yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))


YAML_NULLS = frozenset({"null", "Null", "NULL", "~"})
"""Spellings of null in YAML."""

_UNCHANGED = object()
"""Marker: a text value that no conversion turns into something the schema accepts."""


def coerce_config(config: dict, schema: dict) -> None:
    """Turn text values into the types the schema declares, in place.

    Snakemake reads nested ``--config`` values as text: ``--config
    model='{epochs: 200}'`` gives ``{"epochs": "200"}``. Wherever the schema
    expects an integer, number, boolean, null, array or object and the value
    is a string, the string is read as YAML (``"200"`` -> 200, ``"1e-3"`` ->
    0.001, ``"true"`` -> True, ``"null"`` -> None, ``"[GFAP, SOX2]"`` -> a
    list) and kept when the result has a type the schema declares there. A
    string the schema accepts as a string (its type includes ``string``, or
    it is one of an ``enum``) stays a string, and a string that converts to
    nothing acceptable is left as is, so validation names it in one line.

    Walks ``properties``, ``patternProperties``, ``additionalProperties``,
    ``prefixItems``/``items``, ``allOf`` and, for ``oneOf``/``anyOf``, the
    branch the value fits. Mutates ``config`` (and its nested dicts and lists).
    """
    result = _coerce(config, schema)
    if result is not config:  # only when the top-level schema chose a branch on a copy
        config.clear()
        config.update(result)


def _types(schema: dict) -> list[str]:
    declared = schema.get("type", [])
    return [declared] if isinstance(declared, str) else list(declared)


def _is_type(value, name: str) -> bool:
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "null":
        return value is None
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    return True  # a type this check does not know: no objection


def _same(a, b) -> bool:
    """JSON equality: True is not 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _fits(value, schema) -> bool:
    """Whether ``value`` has a type (and enum/const value) the schema allows; ranges and patterns are not checked."""
    if not isinstance(schema, dict):
        return schema is not False
    if "const" in schema and not _same(value, schema["const"]):
        return False
    if "enum" in schema and not any(_same(value, option) for option in schema["enum"]):
        return False
    types = _types(schema)
    if types and not any(_is_type(value, name) for name in types):
        return False
    if not all(_fits(value, sub) for sub in schema.get("allOf", [])):
        return False
    return all(any(_fits(value, sub) for sub in schema[key]) for key in ("oneOf", "anyOf") if key in schema)


def _from_text(text: str, schema: dict):
    """``text`` read as an integer, number or YAML value the schema allows there, else ``_UNCHANGED``."""
    # int() and float() before YAML 1.1 for numbers: "010" is 10 (not 8) and "1e-3" is a number (not text)
    for parse in (int, float, yaml.safe_load):
        try:
            candidate = parse(text)
        except (ValueError, yaml.YAMLError):
            continue
        if not isinstance(candidate, str) and _fits(candidate, schema):
            return candidate
    return _UNCHANGED


def _coerce(value, schema):
    """``value`` with its text converted where ``schema`` expects another type (containers change in place)."""
    if not isinstance(schema, dict):
        return value
    if isinstance(value, str):
        if value in YAML_NULLS and _fits(None, schema):
            return None  # "null" on the command line means null wherever null is allowed (a panel left out)
        if _fits(value, schema):
            return value
        converted = _from_text(value, schema)
        if converted is _UNCHANGED:
            return value
        value = converted
    if not isinstance(value, dict | list):
        return value
    if isinstance(value, dict):
        _coerce_members(value, schema)
    else:
        _coerce_items(value, schema)
    for sub in schema.get("allOf", []):
        value = _coerce(value, sub)
    for key in ("oneOf", "anyOf"):
        if key in schema:
            value = _coerce_branch(value, schema[key])
    return value


def _coerce_members(value: dict, schema: dict) -> None:
    properties = schema.get("properties", {})
    patterns = schema.get("patternProperties", {})
    extra = schema.get("additionalProperties")
    for key in list(value):
        subs = [properties[key]] if key in properties else []
        subs += [sub for pattern, sub in patterns.items() if re.search(pattern, str(key))]
        if not subs and isinstance(extra, dict):
            subs = [extra]
        for sub in subs:
            value[key] = _coerce(value[key], sub)


def _coerce_items(value: list, schema: dict) -> None:
    prefix = schema.get("prefixItems", [])
    items = schema.get("items")
    if isinstance(items, list):  # draft 4-7 tuple form
        prefix, items = items, schema.get("additionalItems")
    for i in range(len(value)):
        sub = prefix[i] if i < len(prefix) else items
        if isinstance(sub, dict):
            value[i] = _coerce(value[i], sub)


def _coerce_branch(value, branches: list):
    """``value`` coerced by the ``oneOf``/``anyOf`` branch it belongs to (tried on copies)."""
    candidates = [branch for branch in branches if _fits(value, branch)]
    if not candidates:
        return value
    if len(candidates) == 1:
        return _coerce(value, candidates[0])
    trials = [_coerce(copy.deepcopy(value), branch) for branch in candidates]
    for branch, trial in zip(candidates, trials, strict=True):
        if jsonschema.Draft202012Validator(branch).is_valid(trial):
            return trial
    for branch, trial in zip(candidates, trials, strict=True):
        if _keys_match(value, branch):
            return trial
    return trials[0]


def _keys_match(value, branch) -> bool:
    """For an object: the branch's required keys are present and, if it allows no others, there are none."""
    if not isinstance(value, dict) or not isinstance(branch, dict):
        return False
    if not set(branch.get("required", [])) <= set(value):
        return False
    if branch.get("additionalProperties") is False and not branch.get("patternProperties"):
        return set(value) <= set(branch.get("properties", {}))
    return True
