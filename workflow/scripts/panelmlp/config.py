"""The config: how the defaults and a user's layers combine, text given its types, and checks that speak the user's language."""

from __future__ import annotations

import copy
import difflib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import jsonschema
import yaml

from .defaults import SCHEMA_PATH as SCHEMA_PATH
from .defaults import read_schema_file
from .defaults import schema_defaults as schema_defaults
from .defaults import with_defaults as with_defaults

REPLACE_KEYS: tuple[str, ...] = (
    "genes",
    "target.classes",
    "target.time",
    "panels.*",
    "model.early_stopping",
    "model.grid",
)
"""Keys whose value a config layer replaces whole; every other mapping is merged key by key.

A key is a dotted path; ``*`` stands for any one key (``panels.*``: each
panel, while ``panels`` itself merges, so a config file adds panels beside
the default ones). These are the values that are a choice between shapes
(``genes``: a column, a regex or a list; a panel: a list, a file, ``all`` or
a collection) or one whole set (the classes, the early-stopping settings, the
grid). Lists (``model.hidden``, ``evaluate.baselines``, ``predict_panels``, a
panel's genes) and single values always replace. config/README.md lists the
same keys; tests/test_config_replace.py keeps the two in step.
"""

RESET_WITH: dict[str, tuple[str, ...]] = {"target.classes": ("positive",)}
"""Sibling keys a layer's value of the key drops unless the same layer gives them too.

A layer that gives ``target.classes`` without ``target.positive`` drops the
earlier positive class (the default ``smoker`` is no class of another target):
with two classes the second one is then positive.
"""


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
    message = error.message
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        message += _unknown_key_hint(error.instance, error.schema, schema if not error.absolute_path else None)
    if error.validator in ("oneOf", "anyOf") and isinstance(error.validator_value, list):
        forms = [_form(branch) for branch in error.validator_value]
        message = f"{error.instance!r} is none of the accepted forms: {', '.join(forms[:-1])} or {forms[-1]}"
    return f"config {key}: {message}; see config/README.md"


def _unknown_key_hint(instance: Mapping, schema: Mapping, top: Mapping | None) -> str:
    """Where the unknown keys of ``instance`` were probably meant: a close known key, or a section that has it.

    ``top``: the whole schema when ``instance`` is the top level (then a key of
    a section, ``epochs``, points at ``model.epochs``).
    """
    known = list(schema.get("properties", {}))
    hints = []
    for key in (str(k) for k in instance if k not in known):
        close = difflib.get_close_matches(key, known, n=1)
        sections = (
            [name for name, sub in top.get("properties", {}).items() if key in (sub.get("properties") or {})]
            if top is not None
            else []
        )
        if sections:
            hints.append(f"{key}: it belongs in a section, {sections[0]}: {{{key}: ...}}")
        elif close:
            hints.append(f"{key}: did you mean {close[0]!r}?")
    return f" ({'; '.join(hints)})" if hints else ""


def _form(branch: Mapping) -> str:
    """One accepted form of a oneOf/anyOf value in words (``{regex: ...}``, ``a list``, ``auto``)."""
    if "enum" in branch:
        return " or ".join(str(v) for v in branch["enum"])
    kind = branch.get("type")
    if kind == "object" and branch.get("required"):
        return "{" + ", ".join(f"{name}: ..." for name in branch["required"]) + "}"
    words = {
        "object": "a mapping",
        "array": "a list",
        "string": "text",
        "null": "null",
        "integer": "a whole number",
        "number": "a number",
        "boolean": "true or false",
    }
    text = words.get(kind, str(kind)) if isinstance(kind, str) else " or ".join(words.get(k, k) for k in kind)
    if "minimum" in branch:
        text += f" >= {branch['minimum']}"
    return text


def duplicate_key_problem(path: str | Path) -> str | None:
    """One line when a config file gives a key twice in one mapping, or None.

    YAML keeps the last of two equal keys without a word, so a second
    ``model:`` section would silently drop the first; this names both lines.
    A file that is not YAML is left to Snakemake, which has refused it already.
    """
    try:
        root = yaml.compose(Path(path).read_text(encoding="utf-8-sig"), Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        return None
    todo = [(root, "")]
    while todo:
        node, where = todo.pop()
        if isinstance(node, yaml.MappingNode):
            seen: dict[str, int] = {}
            for key, value in node.value:
                name = str(key.value)
                line = key.start_mark.line + 1
                if name in seen:
                    full = f"{where}.{name}" if where else name
                    return (
                        f"config file {path} line {line}: key {full!r} is given twice (first on line {seen[name]}); "
                        "YAML would keep only the last, so merge the two into one"
                    )
                seen[name] = line
                todo.append((value, f"{where}.{name}" if where else name))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend((item, where) for item in node.value)
    return None


def read_schema(schema_path: str | Path) -> dict:
    """The config schema as a dict (a fresh copy of the one parse per process)."""
    return read_schema_file(schema_path)


def replaces(path: Sequence[str]) -> bool:
    """Whether a layer's value at ``path`` (keys from the top) replaces the earlier value whole."""
    return any(_matches(path, key.split(".")) for key in REPLACE_KEYS)


def _matches(path: Sequence[str], pattern: Sequence[str]) -> bool:
    return len(path) == len(pattern) and all(p in ("*", str(k)) for k, p in zip(path, pattern, strict=True))


def _plain(value):
    """A deep copy with every mapping a dict (Snakemake hands ``--config`` over as a read-only mapping)."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def merge_layer(config: dict, layer: Mapping, path: Sequence[str] = ()) -> None:
    """Apply one config layer (a ``--configfile`` or the ``--config`` values) to ``config``, in place.

    Mappings merge key by key, as Snakemake merges them, except at the keys
    of ``REPLACE_KEYS``, where the layer's value replaces the earlier one
    whole; any other value (a list, a number, text, null) replaces. A key of
    ``RESET_WITH`` drops its listed siblings unless the layer gives them too.
    ``path`` is where ``config`` and ``layer`` sit in the whole config.
    """
    for key, value in layer.items():
        here = (*path, str(key))
        if isinstance(value, Mapping) and isinstance(config.get(key), dict) and not replaces(here):
            merge_layer(config[key], value, here)
        else:
            config[key] = _plain(value)
        for pattern, siblings in RESET_WITH.items():
            if _matches(here, pattern.split(".")):
                for sibling in siblings:
                    if sibling not in layer:
                        config.pop(sibling, None)


def layer_config(defaults: Mapping, layers: Iterable[Mapping]) -> dict:
    """The config: ``defaults`` with each layer applied in order by :func:`merge_layer`.

    The layers are the ``--configfile`` files in the order given, then the
    ``--config`` values (a profile's ``configfile`` and ``config`` arrive as
    the same). Neither argument is changed.
    """
    config = _plain(defaults)
    for layer in layers:
        merge_layer(config, layer)
    return config


PANEL_NAME_CHARS = "A-Za-z0-9_.-"
"""Characters of a panel name (a folder under results/panels/ and a wildcard value), as a regex class."""

PANEL_NAME = re.compile(f"^(?![.-])[{PANEL_NAME_CHARS}]+$")
"""A valid panel name; the schema's ``panels.propertyNames`` pattern is the same (a test checks)."""


def config_problem(config: Mapping) -> str | None:
    """One line for a config fault the schema misses or words poorly, or None.

    Run on the merged, coerced config before the schema check, so it looks
    only at values of the expected type and leaves the rest to
    :func:`config_error`. Faults: a panel named with characters a folder name
    cannot safely have, a panel that lists no genes or a gene twice, no panel left (every
    panel null), a model without hidden layers (in ``model.hidden`` or a grid
    point), fewer than two classes, a positive class that is not a class, and a
    regex (``genes.regex``, a class of ``target.classes``) that does not
    compile.
    """
    for check in (_panels_problem, _hidden_problem, _target_problem, _regex_problem):
        message = check(config)
        if message is not None:
            return f"{message}; see config/README.md"
    return None


def _panels_problem(config: Mapping) -> str | None:
    panels = config.get("panels")
    if not isinstance(panels, Mapping):
        return None
    for name, spec in panels.items():
        name = str(name)
        if not PANEL_NAME.match(name):
            return f"config panels: {_bad_name(name)}"
        if isinstance(spec, list) and not spec:
            return (
                f"config panels.{name}: the panel lists no genes; list at least one gene "
                f"({name}: [GFAP, SOX2]), or give a one-gene-per-line file, all, or null to leave it out"
            )
        if isinstance(spec, list):
            joined = next((g for g in spec if isinstance(g, str) and re.search(r"[,;\t]", g)), None)
            if joined is not None:
                return (
                    f"config panels.{name}: {joined!r} holds several names; give each gene as its own list item "
                    "([GFAP, SOX2], not ['GFAP, SOX2'])"
                )
            repeated = sorted({str(g) for g in spec if spec.count(g) > 1})
            if repeated:
                return f"config panels.{name}: genes listed twice: {repeated}; list each gene once"
    if all(spec is None for spec in panels.values()):
        left_out = ", ".join(str(name) for name in panels) or "none configured"
        return (
            f"config panels: no panel left: every panel is null ({left_out}); keep or add at least one, "
            "e.g. panels: {mine: [GFAP, SOX2]} or all: all"
        )
    return None


def _bad_name(name: str) -> str:
    """Why ``name`` is not a panel name, and a name that would do."""
    if not name:
        return "a panel has an empty name; name it with letters, digits, _ . or -"
    bad = sorted({c for c in name if not re.fullmatch(f"[{PANEL_NAME_CHARS}]", c)})
    fixed = re.sub(f"[^{PANEL_NAME_CHARS}]", "_", name).lstrip(".-") or "panel"
    what = f"has {' '.join(repr(c) for c in bad)}, which" if bad else f"starts with {name[0]!r}, which"
    return (
        f"the panel name {name!r} {what} a panel name cannot have (it names a folder under results/panels/); "
        f"use letters, digits, _ . and -, not starting with . or -, e.g. {fixed!r}"
    )


def _no_layers(hidden) -> bool:
    return isinstance(hidden, list) and not hidden


_NO_LAYERS = (
    "has no hidden layer, which makes the model a linear one (a logistic or linear regression, which the logreg "
    "and ridge baselines already fit); give at least one layer size, e.g. [64]"
)


def _hidden_problem(config: Mapping) -> str | None:
    model = config.get("model")
    if not isinstance(model, Mapping):
        return None
    if _no_layers(model.get("hidden")):
        return f"config model.hidden: [] {_NO_LAYERS}"
    grid = model.get("grid")
    points = grid.get("hidden") if isinstance(grid, Mapping) else None
    if isinstance(points, list):
        for i, hidden in enumerate(points):
            if _no_layers(hidden):
                return f"config model.grid.hidden.{i}: [] {_NO_LAYERS}"
    return None


SURVIVAL_EXAMPLE = (
    "target: {kind: survival, event: {column: VITAL_STATUS, event: deceased, censored: living}, "
    "time: {event: PATH_DIAG_TO_DEATH_DAYS, censored: PATH_DIAG_TO_LAST_CONTACT_DAYS}}"
)
"""A survival target written out, for messages (see config/examples/survival.yaml)."""


def _target_problem(config: Mapping) -> str | None:
    target = config.get("target")
    if isinstance(target, Mapping) and target.get("kind") == "survival":
        missing = [key for key in ("event", "time") if not target.get(key)]
        if missing:
            keys = " and ".join(f"target.{key}" for key in missing)
            return f"config {keys}: a survival target needs an event column and a time; e.g. {SURVIVAL_EXAMPLE}"
        return None
    if not isinstance(target, Mapping) or target.get("kind", "classification") != "classification":
        return None
    classes = target.get("classes")
    if not isinstance(classes, Mapping):
        return None
    names = [str(name) for name, pattern in classes.items() if pattern is not None]
    if len(names) < 2:
        return (
            f"config target.classes: {len(names)} class(es) {names}; give at least two, "
            "as label: regex (e.g. {left: ^left$, right: ^right$})"
        )
    positive = target.get("positive")
    if isinstance(positive, str) and positive not in names:
        return (
            f"config target.positive: {positive!r} is not one of target.classes {names}; name one of them, "
            "or leave it out (with two classes the second one is positive)"
        )
    return None


def _regex_problem(config: Mapping) -> str | None:
    """The first of ``genes.regex`` and the class patterns of ``target.classes`` that is not a valid regex."""
    patterns: list[tuple[str, object]] = []
    genes = config.get("genes")
    if isinstance(genes, Mapping) and "regex" in genes:
        patterns.append(("genes.regex", genes["regex"]))
    target = config.get("target")
    classes = target.get("classes") if isinstance(target, Mapping) else None
    if isinstance(classes, Mapping) and target.get("kind", "classification") == "classification":
        patterns += [(f"target.classes.{name}", pattern) for name, pattern in classes.items()]
    event = target.get("event") if isinstance(target, Mapping) and target.get("kind") == "survival" else None
    if isinstance(event, Mapping):
        patterns += [(f"target.event.{key}", event.get(key)) for key in ("event", "censored")]
    for key, pattern in patterns:
        if not isinstance(pattern, str):
            continue  # the schema check names a value of the wrong type
        try:
            re.compile(pattern)
        except re.error as exc:
            return (
                f"config {key}: {pattern!r} is not a valid regular expression ({exc}); fix it, or escape "
                "characters such as ( [ + * ? with a backslash to match them literally"
            )
    return None


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
