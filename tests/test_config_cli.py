"""Nested ``--config`` values (text on the command line) get the types the config schema declares.

How the values of a ``--config`` or ``--configfile`` combine with the defaults: tests/test_config_replace.py.
"""

from __future__ import annotations

import copy
from pathlib import Path

import jsonschema
import pytest
import yaml
from panelmlp.config import coerce_config, config_error, layer_config, read_schema
from panelmlp.synthetic import write_cohort
from snakemake.cli import parse_config
from snakemake.utils import update_config
from test_workflow import snakemake

REPO = Path(__file__).resolve().parents[1]
SCHEMA_PATH = REPO / "workflow" / "schemas" / "config.schema.yaml"
SCHEMA = read_schema(SCHEMA_PATH)
DEFAULT = yaml.safe_load((REPO / "config" / "config.yaml").read_text(encoding="utf-8"))


def cli_config(*entries: str) -> dict:
    """The default config with ``--config`` entries layered as the Snakefile layers them, then coerced."""
    config = layer_config(DEFAULT, [parse_config(list(entries))])
    coerce_config(config, SCHEMA)
    return config


def is_valid(config: dict) -> bool:
    return jsonschema.Draft202012Validator(SCHEMA).is_valid(config)


def test_snakemake_hands_nested_values_over_as_text():
    """The premise: without coercion these are strings and the schema rejects them."""
    parsed = parse_config(["model={epochs: 200, lr: 1e-3}", "split={cv_folds: 3}"])
    assert parsed == {"model": {"epochs": "200", "lr": "1e-3"}, "split": {"cv_folds": "3"}}
    config = copy.deepcopy(DEFAULT)
    update_config(config, parsed)
    assert config_error(config, SCHEMA_PATH).endswith("is not of type 'integer'; see config/README.md")


def test_integers_numbers_and_booleans_get_their_types():
    config = cli_config(
        "model={epochs: 200, lr: 1e-3, dropout: 0.5, momentum: 1, hidden: [32, 16], activation: tanh, seed: 010}",
        "split={cv_folds: 3, test_size: .25, stratify: false}",
        "evaluate={permutations: 99, logreg_C: 2}",
        "resources={train_mem_mb: 8000}",
    )
    model = config["model"]
    assert model["epochs"] == 200 and type(model["epochs"]) is int
    assert model["lr"] == pytest.approx(0.001) and type(model["lr"]) is float
    assert model["dropout"] == 0.5 and model["momentum"] == 1
    assert model["hidden"] == [32, 16] and all(type(h) is int for h in model["hidden"])
    assert model["activation"] == "tanh"
    assert model["seed"] == 10  # decimal, not YAML 1.1 octal
    assert model["batch_size"] == 32 and model["optimizer"] == "adam"  # untouched defaults merged beside
    split = config["split"]
    assert split["cv_folds"] == 3 and split["test_size"] == 0.25 and split["stratify"] is False
    assert config["evaluate"]["permutations"] == 99 and config["evaluate"]["logreg_C"] == 2
    assert config["resources"]["train_mem_mb"] == 8000
    assert is_valid(config)


@pytest.mark.parametrize(("text", "expected"), [("true", True), ("false", False), ("True", True), ("no", False)])
def test_booleans(text, expected):
    config = cli_config(f"split={{stratify: {text}}}")
    assert config["split"]["stratify"] is expected


def test_strings_the_schema_accepts_as_strings_stay_strings():
    config = cli_config(
        "report={title: 2024}",
        "target={column: SMOKING_HISTORY, classes: {never: '1', ever: 'null'}}",
        "panels={mine: '[GFAP, SOX2]', gone: 'null'}",
        "model={activation: relu, device: cpu}",
        "raw_csv=data/raw/2024.csv",
    )
    assert config["report"]["title"] == "2024"
    # "null" means null wherever the schema allows null (a class or panel left out, as in a config file);
    # the classes given replace the default ones whole.
    assert config["target"]["classes"] == {"never": "1", "ever": None}
    # A panel may be a file name, so other text stays text; a YAML config file gives real lists.
    assert config["panels"]["mine"] == "[GFAP, SOX2]" and config["panels"]["gone"] is None
    assert config["model"]["activation"] == "relu" and config["model"]["device"] == "cpu"
    assert config["raw_csv"] == "data/raw/2024.csv"


def test_arrays_and_objects_given_as_text_where_no_string_is_allowed():
    config = cli_config("genes=[GFAP, SOX2]")
    assert config["genes"] == ["GFAP", "SOX2"]
    config = copy.deepcopy(DEFAULT)
    config["genes"] = "{before_column: PATIENT_ID}"
    config["model"]["hidden"] = "[8, 4]"
    config["split"] = "{cv_folds: 4, random_state: 7}"
    coerce_config(config, SCHEMA)
    assert config["genes"] == {"before_column": "PATIENT_ID"}
    assert config["model"]["hidden"] == [8, 4]
    assert config["split"] == {"cv_folds": 4, "random_state": 7}
    assert is_valid(config)


def test_one_of_branches_are_chosen_by_the_value():
    config = cli_config("panels={screen: {gmt: sets.gmt, min_size: 3, max_size: 40, min_coverage: 0.5}}")
    screen = config["panels"]["screen"]
    assert screen == {"gmt": "sets.gmt", "min_size": 3, "max_size": 40, "min_coverage": 0.5}
    assert type(screen["min_size"]) is int and type(screen["min_coverage"]) is float
    config = copy.deepcopy(DEFAULT)
    config["genes"] = {"regex": "G[0-9]+"}
    coerce_config(config, SCHEMA)
    assert config["genes"] == {"regex": "G[0-9]+"}
    assert is_valid(config)


def test_values_that_do_not_convert_are_left_for_the_one_line_message():
    cases = [
        ("model={epochs: many}", "config model.epochs: 'many' is not of type 'integer'"),
        ("model={epochs: 1.5}", "config model.epochs: '1.5' is not of type 'integer'"),
        ("model={lr: fast}", "config model.lr: 'fast' is not of type 'number'"),
        ("model={lr: nan}", "config model.lr: 'nan' is not of type 'number'"),
        ("split={stratify: 1}", "config split.stratify: '1' is not of type 'boolean'"),
        ("model={hidden: [32, wide]}", "config model.hidden.1: 'wide' is not of type 'integer'"),
        ("model={activation: swish}", "config model.activation: 'swish' is not one of"),
    ]
    for entry, expected in cases:
        config = cli_config(entry)
        message = config_error(config, SCHEMA_PATH)
        assert message is not None and message.startswith(expected), (entry, message)


def test_converted_values_still_meet_the_ranges():
    config = cli_config("model={epochs: 0}")
    assert config["model"]["epochs"] == 0
    assert config_error(config, SCHEMA_PATH).startswith("config model.epochs: 0 is less than the minimum of 1")


def test_a_typed_config_is_left_alone_and_mutated_in_place():
    config = copy.deepcopy(DEFAULT)
    model = config["model"]
    coerce_config(config, SCHEMA)
    assert config == DEFAULT
    config["model"]["epochs"] = "7"
    coerce_config(config, SCHEMA)
    assert config["model"] is model and model["epochs"] == 7


def test_type_lists_any_of_null_and_enum():
    schema = {
        "type": "object",
        "properties": {
            "maybe_int": {"type": ["integer", "null"]},
            "maybe_text": {"type": ["string", "null"]},
            "level": {"enum": [1, 2, "high"]},
            "either": {"anyOf": [{"type": "boolean"}, {"type": "array", "items": {"type": "number"}}]},
            "table": {"type": "object", "additionalProperties": {"type": "integer"}},
            "nothing": {"type": "null"},
        },
    }
    config = {
        "maybe_int": "null",
        "maybe_text": "null",
        "level": "2",
        "either": "[1, 2.5, 1e-3]",
        "table": {"a": "1", "b": "x"},
        "nothing": "~",
    }
    coerce_config(config, schema)
    assert config["maybe_int"] is None and config["maybe_text"] is None
    assert config["level"] == 2
    # YAML 1.1 reads "1e-3" (no dot) as text; inside a list the number check converts it too.
    assert config["either"] == [1, 2.5, 0.001]
    assert config["table"] == {"a": 1, "b": "x"} and config["nothing"] is None
    config = {"level": "high", "either": "yes", "maybe_int": "12"}
    coerce_config(config, schema)
    assert config == {"level": "high", "either": True, "maybe_int": 12}


@pytest.mark.workflow
def test_nested_command_line_values_pass_validation(tmp_path):
    cohort = write_cohort(tmp_path / "cohort.csv", n_samples=40, n_genes=8, n_malformed=0, seed=5)
    proc = snakemake(
        tmp_path,
        "-n",
        "--cores",
        "1",
        "--config",
        "model={epochs: 200}",
        "split={cv_folds: 3}",
        f"raw_csv={cohort.path}",
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    assert "is not of type" not in proc.stderr
    proc = snakemake(tmp_path, "-n", "--cores", "1", "--config", "model={epochs: lots}", f"raw_csv={cohort.path}")
    assert proc.returncode != 0
    assert "config model.epochs: 'lots' is not of type 'integer'" in proc.stdout + proc.stderr
