"""Defaults live in the schema only: library callers without Snakemake get the same values as a run."""

from __future__ import annotations

import pytest
import yaml
from panelmlp.defaults import SCHEMA_PATH, schema_default, with_defaults
from panelmlp.randomsets import DEFAULT_BIN_WIDTH, DEFAULT_BUDGET


def test_the_shipped_config_and_the_schema_agree_on_every_default() -> None:
    """config/config.yaml spells out many defaults for users to read; none may differ from the schema's."""
    shipped = yaml.safe_load((SCHEMA_PATH.parents[2] / "config" / "config.yaml").read_text())
    checked = 0
    for section in ("split", "model", "evaluate", "resources", "report", "clean", "input", "target"):
        for key, value in with_defaults(section, {}).items():
            if key in (shipped.get(section) or {}):
                assert shipped[section][key] == value, f"config.yaml {section}.{key} differs from the schema's default"
                checked += 1
    assert checked >= 20


def test_fallbacks_that_disagreed_now_come_from_the_schema() -> None:
    assert with_defaults("split", {})["cv_repeats"] == 2  # splits.py fell back to 1
    assert schema_default("model.inner_folds") == 3
    assert schema_default("model.early_stopping.patience") == 50  # x-default: early_stopping may be null
    assert schema_default("model.early_stopping.validation_fraction") == 0.2
    assert (schema_default("evaluate.random_bin_width"), 200_000) == (DEFAULT_BIN_WIDTH, DEFAULT_BUDGET)
    with pytest.raises(KeyError, match="no default"):
        schema_default("target.column")
    with pytest.raises(KeyError, match="not a key"):
        schema_default("model.nope")
