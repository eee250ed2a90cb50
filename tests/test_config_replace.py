"""How config values combine: the defaults, then each ``--configfile``, then ``--config``.

Sections merge key by key; the keys of ``panelmlp.config.REPLACE_KEYS`` (a choice
between shapes or one whole set) are replaced whole by the value a user gives,
through either route. Every key documented in config/README.md is run with a
non-default value through both routes (with Snakemake's own parsers, as the
Snakefile reads them), and a few real ``snakemake`` runs check the Snakefile
end to end. Config faults stop the dry run with one ``panelmlp error:`` line.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import immutables
import jsonschema
import pytest
import yaml
from panelmlp.config import (
    PANEL_NAME,
    PANEL_NAME_CHARS,
    REPLACE_KEYS,
    RESET_WITH,
    coerce_config,
    config_error,
    config_problem,
    layer_config,
    merge_layer,
    read_schema,
    replaces,
)
from panelmlp.synthetic import write_cohort
from panelmlp.units import panel_name_clash
from snakemake.cli import parse_config
from snakemake.common.configfile import load_configfile
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = read_schema(SCHEMA_PATH)
DEFAULT = load_configfile(REPO / "config" / "config.yaml")
README = (REPO / "config" / "README.md").read_text(encoding="utf-8")

MERGED_BY_NAME = {"panels"}
"""Open sets that merge by name (a config file adds panels beside the default ones); their entries replace."""

NAME = "sets"
"""The panel that stands for ``NAME`` in documented keys such as ``panels.NAME.min_size``."""

VALUES = {
    "genes": {"regex": "^G[0-9]+$"},
    "target.classes": {"left": "^left$", "right": "^right$"},
    "target.positive": "non-smoker",
    "target.event": {"column": "VITAL_STATUS", "event": "deceased", "censored": "living"},
    "target.time": {"event": "PATH_DIAG_TO_DEATH_DAYS", "censored": "PATH_DIAG_TO_LAST_CONTACT_DAYS"},
    "panels": {"mine": ["SIG1", "SIG2"]},
    "model.early_stopping": {"patience": 7, "validation_fraction": 0.25},
    "model.grid": {"lr": [0.01, 0.1], "hidden": [[8], [16, 8]]},
}
"""Non-default values where the schema alone does not suggest one that makes sense."""

OTHER_VALUES = {
    "genes": {"before_column": "SEX"},
    "target.classes": {"never": "non-smoker", "current": "^current", "former": "reformed"},
    "target.time": "OS_DAYS",
    "panels.*": {"gmt": "other.gmt", "min_coverage": 0.5},
    "model.early_stopping": {"patience": 3},
    "model.grid": {"weight_decay": [0.0, 0.01]},
}
"""A second value of every replace key, with other sub-keys than ``VALUES``, to show the later one replaces."""


# ----------------------------------------------------------------------------------------------------------------
# What config/README.md documents


def _section(title: str) -> str:
    """The text of one ``## title`` section of config/README.md."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, flags=re.MULTILINE | re.DOTALL)
    assert match, f"config/README.md has no section '## {title}'"
    return match.group(1)


def documented_keys() -> list[str]:
    """The keys of the table in config/README.md, in order."""
    return re.findall(r"^\| `([^`]+)` \|", _section("Keys"), flags=re.MULTILINE)


def documented_replace_keys() -> set[str]:
    """The keys config/README.md lists as replaced whole (``panels.NAME`` read as ``panels.*``)."""
    text = _section("How values combine")
    keys = re.findall(r"^  - `([^`]+)`", text, flags=re.MULTILINE)
    return {key.replace(".NAME", ".*") for key in keys}


def schema_node(key: str) -> dict:
    """The schema of a documented key (``NAME`` is any panel; a collection's keys are in its oneOf branch)."""
    node = SCHEMA
    for part in key.split("."):
        if "oneOf" in node:
            node = next(b for b in node["oneOf"] if part in b.get("properties", {}))
        if part == "NAME":
            node = node["additionalProperties"]
        else:
            assert part in node.get("properties", {}), f"config/README.md documents {key}, which the schema lacks"
            node = node["properties"][part]
    return node


def schema_keys() -> set[str]:
    """Every key at the table's depth: top-level keys, and each key of a section with fixed keys."""
    keys = set()
    for top, node in SCHEMA["properties"].items():
        if "properties" in node and node.get("additionalProperties") is False:
            keys |= {f"{top}.{sub}" for sub in node["properties"]}
        else:
            keys.add(top)
    return keys


def test_every_schema_key_is_documented_and_every_documented_key_exists():
    documented = documented_keys()
    assert len(documented) == len(set(documented)), "a key is documented twice"
    assert sorted(schema_keys() - set(documented)) == []
    for key in documented:
        schema_node(key)  # fails naming a documented key the schema lacks


def test_the_replace_keys_are_documented():
    assert documented_replace_keys() == set(REPLACE_KEYS)


def _mapping_choices(node: dict, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Paths where a mapping is a choice of shapes (oneOf/anyOf, several types) or an open set of names."""
    found = []
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    branches = node.get("oneOf", []) + node.get("anyOf", [])
    holds_mapping = "object" in types or any(b.get("type") == "object" for b in branches)
    open_set = isinstance(node.get("additionalProperties"), dict)
    if holds_mapping and (branches or len(types) > 1 or open_set):
        found.append(path)
    for key, sub in node.get("properties", {}).items():
        found += _mapping_choices(sub, (*path, key))
    if open_set:
        found += _mapping_choices(node["additionalProperties"], (*path, "*"))
    for branch in branches:
        for key, sub in branch.get("properties", {}).items():
            found += _mapping_choices(sub, (*path, key))
    return found


def test_every_choice_of_shapes_or_open_set_in_the_schema_replaces():
    """A new key whose value is a mapping of several shapes, or of any names, must be listed (or merge by name)."""
    choices = {".".join(path) for path in _mapping_choices(SCHEMA)}
    assert {"genes", "target.classes", "panels", "panels.*", "model.early_stopping", "model.grid"} <= choices
    unlisted = sorted(key for key in choices - MERGED_BY_NAME if not replaces(key.split(".")))
    assert unlisted == [], "add these to panelmlp.config.REPLACE_KEYS and config/README.md, or merge them by name"


def test_panel_names_are_checked_with_the_schema_pattern():
    assert SCHEMA["properties"]["panels"]["propertyNames"]["pattern"] == PANEL_NAME.pattern
    assert PANEL_NAME_CHARS == "A-Za-z0-9_.-"


# ----------------------------------------------------------------------------------------------------------------
# Every documented key, both routes


def _default_at(path: list[str], node: dict):
    value = DEFAULT
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return node.get("default")
        value = value[part]
    return value


def _candidates(node: dict, default) -> list:
    """Values of the node's type, to be filtered by the schema and by being unlike the default."""
    if "enum" in node:
        return list(node["enum"])
    if "oneOf" in node or "anyOf" in node:
        return [
            value for branch in node.get("oneOf", []) + node.get("anyOf", []) for value in _candidates(branch, default)
        ]
    types = node.get("type", [])
    types = [types] if isinstance(types, str) else list(types)
    out = []
    for name in types:
        if name == "boolean":
            out += [not default] if isinstance(default, bool) else [True, False]
        elif name == "integer":
            out += [default + 1 if isinstance(default, int) else 3, 2, 1]
        elif name == "number":
            out += [0.3, 0.05, 2.5]
        elif name == "string":
            out += ["custom-value", "0" * 64]
        elif name == "array":
            items = node.get("items", {})
            out += [[item] for item in _candidates(items, None)]
    return out


def non_default(key: str):
    """A value for the documented ``key`` unlike its default that the schema accepts."""
    if key in VALUES:
        return VALUES[key]
    node = schema_node(key)
    default = _default_at(key.split("."), node)
    for candidate in _candidates(node, default):
        if candidate != default and jsonschema.Draft202012Validator(node).is_valid(candidate):
            return candidate
    raise AssertionError(f"no non-default value for {key}: add one to VALUES")


def layer_for(key: str) -> tuple[dict, list[str], object]:
    """A config layer setting ``key`` to a non-default value, the path it sets, and the value set there.

    ``panels`` merges by name, so its value is one more panel; a collection's
    key (``panels.NAME.min_size``) comes with the ``gmt`` it needs.
    """
    value = non_default(key)
    parts = key.split(".")
    if parts == ["panels"]:
        [(name, genes)] = value.items()
        parts, value = ["panels", name], genes
    elif parts[:2] == ["panels", "NAME"]:
        parts, value = ["panels", NAME], {"gmt": "sets.gmt", parts[2]: value}
    layer = value
    for part in reversed(parts):
        layer = {part: layer}
    return layer, parts, value


def _text(value) -> str:
    """A value as one ``--config`` entry writes it."""
    if isinstance(value, dict | list):
        return yaml.safe_dump(value, default_flow_style=True, width=10**6).strip()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def via_configfile(layers: list[dict], tmp_path: Path) -> dict:
    """The config the Snakefile builds from these layers given as ``--configfile`` files, in order."""
    files = []
    for i, layer in enumerate(layers):
        path = tmp_path / f"layer{i}.yaml"
        path.write_text(yaml.safe_dump(layer, sort_keys=False), encoding="utf-8")
        files.append(load_configfile(path))
    config = layer_config(DEFAULT, files)
    coerce_config(config, SCHEMA)
    return config


def via_config(layer: dict, files: tuple[dict, ...] = ()) -> dict:
    """The config the Snakefile builds from ``--config`` entries (after ``files`` as ``--configfile``)."""
    entries = [f"{key}={_text(value)}" for key, value in layer.items()]
    parsed = parse_config(entries)
    config = layer_config(DEFAULT, [*files, immutables.Map(parsed)])  # Snakemake may hand over a read-only map
    coerce_config(config, SCHEMA)
    return config


def expected_config(parts: list[str], value) -> dict:
    """The default config with ``value`` at ``parts``, as the README says a single value combines."""
    config = copy.deepcopy(DEFAULT)
    here = config
    for part in parts[:-1]:
        if not isinstance(here.get(part), dict):
            here[part] = {}
        here = here[part]
    here[parts[-1]] = copy.deepcopy(value)
    for key, siblings in RESET_WITH.items():
        if key.split(".") == parts:
            for sibling in siblings:
                here.pop(sibling, None)
    return config


@pytest.mark.parametrize("key", documented_keys())
def test_every_documented_key_with_a_non_default_value_through_both_routes(key, tmp_path):
    layer, parts, value = layer_for(key)
    expected = expected_config(parts, value)
    from_file = via_configfile([layer], tmp_path)
    from_cli = via_config(layer)
    assert from_file == expected, key
    assert from_cli == expected, key
    assert config_problem(from_file) is None and config_error(from_file, SCHEMA_PATH) is None, key


@pytest.mark.parametrize("key", REPLACE_KEYS)
def test_a_later_value_of_a_replace_key_replaces_the_earlier_one_whole(key, tmp_path):
    """File then file, and file then --config: the later value is all there is at the key."""
    documented = key.replace("*", NAME)
    first = VALUES.get(documented, {"gmt": "sets.gmt", "min_size": 3})
    second = OTHER_VALUES[key]
    parts = documented.split(".")
    layers = [first, second]
    for part in reversed(parts):
        layers = [{part: layer} for layer in layers]
    expected = expected_config(parts, second)
    assert via_configfile(layers, tmp_path) == expected
    assert via_config(layers[1], files=(layers[0],)) == expected


def test_sections_merge_key_by_key_and_panels_by_name(tmp_path):
    config = via_configfile(
        [{"model": {"epochs": 5}, "panels": {"all": None, "mine": ["SIG1"]}}, {"model": {"lr": 0.01}}], tmp_path
    )
    assert config["model"] == {**DEFAULT["model"], "epochs": 5, "lr": 0.01}
    assert config["panels"] == {**DEFAULT["panels"], "all": None, "mine": ["SIG1"]}
    # Lists replace: a shorter list of layers, a list of baselines.
    config = via_config({"model": {"hidden": [8, 4]}, "evaluate": {"baselines": ["majority"]}})
    assert config["model"]["hidden"] == [8, 4] and config["evaluate"]["baselines"] == ["majority"]


def test_classes_without_a_positive_class_drop_the_earlier_one():
    lateral = {"target": {"column": "TUMOR_LATERALITY", "classes": {"left": "^left$", "right": "^right$"}}}
    config = via_config(lateral)
    assert config["target"] == {"column": "TUMOR_LATERALITY", "kind": "classification", **lateral["target"]}
    assert "positive" not in config["target"] and config_problem(config) is None
    # Given together, both stay; given alone, the positive class changes and the classes stay.
    config = via_config({"target": {**lateral["target"], "positive": "left"}})
    assert config["target"]["positive"] == "left"
    config = via_config({"target": {"positive": "non-smoker"}})
    assert config["target"]["classes"] == DEFAULT["target"]["classes"]
    assert config["target"]["positive"] == "non-smoker"
    # A later layer that names only the column keeps the earlier classes and positive class.
    config = via_config(
        {"target": {"column": "SMOKING"}}, files=({"target": {**lateral["target"], "positive": "left"}},)
    )
    assert config["target"]["classes"] == lateral["target"]["classes"] and config["target"]["positive"] == "left"


def test_layering_leaves_its_arguments_alone():
    defaults = copy.deepcopy(DEFAULT)
    layer = {"genes": {"regex": "x"}, "panels": {"glial": {"gmt": "a.gmt"}}, "model": {"grid": {"lr": [0.1]}}}
    kept = copy.deepcopy(layer)
    config = layer_config(defaults, [layer])
    assert defaults == DEFAULT and layer == kept
    config["model"]["grid"]["lr"].append(1.0)
    config["panels"]["glial"]["gmt"] = "b.gmt"
    assert layer == kept and defaults == DEFAULT


def test_merge_layer_paths_and_wildcards():
    assert replaces(["panels", "glial"]) and replaces(["genes"]) and replaces(["model", "grid"])
    assert not replaces(["panels"]) and not replaces(["model"]) and not replaces(["model", "grid", "lr"])
    config = {"panels": {"a": {"gmt": "x.gmt", "min_size": 3}}, "other": 1}
    merge_layer(config, {"panels": {"a": {"gmt": "y.gmt"}, "b": ["G"]}})
    assert config == {"panels": {"a": {"gmt": "y.gmt"}, "b": ["G"]}, "other": 1}
    merge_layer(config, {"other": {"now": "a mapping"}})  # a mapping over a non-mapping replaces it
    assert config["other"] == {"now": "a mapping"}


# ----------------------------------------------------------------------------------------------------------------
# Config faults, at the library level


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"panels": {"glial": []}}, "config panels.glial: the panel lists no genes; list at least one gene"),
        ({"panels": {"glial": None, "microglia": None, "all": None}}, "config panels: no panel left: every panel"),
        ({"model": {"hidden": []}}, "config model.hidden: [] has no hidden layer"),
        ({"model": {"grid": {"hidden": [[16], []]}}}, "config model.grid.hidden.1: [] has no hidden layer"),
        ({"panels": {"a/b": ["SIG1"]}}, "config panels: the panel name 'a/b' has '/', which a panel name cannot"),
        ({"panels": {"a b?": ["SIG1"]}}, "config panels: the panel name 'a b?' has ' ' '?', which"),
        ({"panels": {".hidden": ["SIG1"]}}, "config panels: the panel name '.hidden' starts with '.'"),
        ({"target": {"classes": {"only": "x"}}}, "config target.classes: 1 class(es) ['only']; give at least two"),
        ({"target": {"positive": "ever"}}, "config target.positive: 'ever' is not one of target.classes"),
    ],
)
def test_config_problems_are_one_line_naming_the_key(change, expected):
    config = via_config(change)
    message = config_problem(config)
    assert message is not None and message.startswith(expected), message
    assert "\n" not in message and message.endswith("; see config/README.md")


def test_config_problem_leaves_wrong_types_to_the_schema():
    for change in ({"panels": "glial"}, {"model": "big"}, {"target": {"classes": "x"}}, {"model": {"grid": 3}}):
        config = copy.deepcopy(DEFAULT)
        merge_layer(config, change)
        assert config_problem(config) is None
        assert config_error(config, SCHEMA_PATH) is not None
    regression = via_config({"target": {"column": "AGE", "kind": "regression", "classes": {"x": "y"}}})
    assert config_problem(regression) is None  # classes are not used for a regression target


def test_a_gene_set_named_like_a_panel(tmp_path):
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("A\td\tG1\tG2\n# note\nglial\td\tG3\tG4\n", encoding="utf-8")
    panels = {"glial": ["GFAP"], "sets": {"gmt": str(gmt)}, "other": {"gmt": "o.gmt"}}
    message = panel_name_clash(panels, {"sets": (str(gmt), ["A", "glial"])})
    assert message == (
        f"config panels.sets: gene set 'glial' ({gmt}:3) has the name of the panel panels.glial; "
        "every panel needs its own name, so rename the set in the file or the entry under panels"
    )
    message = panel_name_clash(panels, {"other": ("o.gmt", ["sets"])})
    assert message.startswith("config panels.other: gene set 'sets' (o.gmt) has the name of the collection panels.sets")
    panels["glial"] = None  # a panel left out clashes with nothing; two collections may share a set name
    assert panel_name_clash(panels, {"sets": (str(gmt), ["A", "glial"]), "other": ("o.gmt", ["A"])}) is None


# ----------------------------------------------------------------------------------------------------------------
# Real snakemake runs


@pytest.fixture(scope="module")
def cohort(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated cohort with a TUMOR_LATERALITY column (Left, Right, one Bilateral)."""
    path = tmp_path_factory.mktemp("cohort") / "cohort.csv"
    write_cohort(path, n_samples=40, n_genes=6, n_malformed=0, seed=3)
    lines = path.read_text().splitlines()
    out = [lines[0] + ",TUMOR_LATERALITY"]
    out += [line + "," + ("Bilateral" if i == 5 else ("Left", "Right")[i % 2]) for i, line in enumerate(lines[1:])]
    path.write_text("\n".join(out) + "\n")
    return path


def run_with(work: Path, route: str, layer: dict, cohort: Path, *args: str):
    """Snakemake with ``layer`` as a --configfile, as --config entries, or as a profile's ``config:`` entries."""
    entries = [f"{key}={_text(value)}" for key, value in layer.items()]
    if route == "configfile":
        (work / "user.yaml").write_text(yaml.safe_dump(layer, sort_keys=False), encoding="utf-8")
        return snakemake(work, *args, "--configfile", str(work / "user.yaml"), "--config", f"raw_csv={cohort}")
    if route == "profile":
        (work / "profile").mkdir()
        profile = {"cores": 1, "config": [*entries, f"raw_csv={cohort}"]}
        (work / "profile" / "config.yaml").write_text(yaml.safe_dump(profile), encoding="utf-8")
        return snakemake(work, *args, "--profile", str(work / "profile"))
    return snakemake(work, *args, "--config", *entries, f"raw_csv={cohort}")


ROUTES = ("configfile", "config")


@pytest.mark.workflow
@pytest.mark.parametrize("route", (*ROUTES, "profile"))
def test_a_config_for_another_target_gets_only_its_classes(route, cohort, tmp_path):
    """The issue's laterality config, without a positive class: the default smoking classes are gone."""
    layer = {"target": {"column": "TUMOR_LATERALITY", "classes": {"left": "^left$", "right": "^right$"}}}
    proc = run_with(tmp_path, route, layer, cohort, "--cores", "1", "results/splits/labels.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    labels = json.loads((tmp_path / "results/splits/labels.json").read_text())
    assert labels["classes"] == ["left", "right"] and labels["positive"] == "right"
    assert labels["class_counts"] == {"left": 20, "right": 19} and labels["unmatched_label"] == 1


@pytest.mark.workflow
@pytest.mark.parametrize("route", ROUTES)
def test_a_genes_regex_replaces_the_default_before_column(route, cohort, tmp_path):
    layer = {"genes": {"regex": "G0000[1-3]"}}
    proc = run_with(tmp_path, route, layer, cohort, "--cores", "1", "results/clean/clean.json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    accounting = json.loads((tmp_path / "results/clean/clean.json").read_text())
    assert accounting["n_genes"] == 3 and accounting["gene_columns"] == {"first": "G00001", "last": "G00003"}


FAULTS = {
    "empty panel": (
        {"panels": {"glial": []}},
        "panelmlp error: config panels.glial: the panel lists no genes; list at least one gene",
    ),
    "no panel left": (
        {"panels": {"glial": None, "microglia": None, "all": None}},
        "panelmlp error: config panels: no panel left: every panel is null (glial, microglia, all)",
    ),
    "no hidden layer": (
        {"model": {"hidden": []}},
        "panelmlp error: config model.hidden: [] has no hidden layer",
    ),
    "panel name": (
        {"panels": {"a/b": ["SIG1"]}},
        "panelmlp error: config panels: the panel name 'a/b' has '/', which a panel name cannot have",
    ),
    "set named like a panel": (
        {"panels": {"sets": {"gmt": "GMT"}}},
        "panelmlp error: config panels.sets: gene set 'glial' (GMT:2) has the name of the panel panels.glial",
    ),
}


@pytest.mark.workflow
@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("fault", FAULTS)
def test_config_faults_stop_the_dry_run_with_one_line(fault, route, cohort, tmp_path):
    layer, expected = FAULTS[fault]
    gmt = tmp_path / "sets.gmt"
    gmt.write_text("SET1\td\tSIG1\tSIG2\tG00001\nglial\td\tG00002\tG00003\n", encoding="utf-8")
    layer = json.loads(json.dumps(layer).replace('"GMT"', json.dumps(str(gmt))))
    expected = expected.replace("GMT", str(gmt))
    proc = run_with(tmp_path, route, layer, cohort, "-n", "--cores", "1")
    output = proc.stdout + proc.stderr
    assert proc.returncode == 1, output[-3000:]
    errors = [line for line in output.splitlines() if "panelmlp error:" in line]
    assert len(errors) == 1 and errors[0].startswith(expected), output[-3000:]
    assert "Traceback" not in output and "Error in" not in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "logs").exists()
