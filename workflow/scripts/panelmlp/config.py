"""Config checks that speak the user's language."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import jsonschema
import yaml


def config_error(config: Mapping, schema_path: str | Path) -> str | None:
    """One line naming the first bad config key and what is wrong, or None if the config is valid.

    Snakemake's own message on a schema violation is the schema dump; this is
    the line a user needs: ``config model.activation: 'swish' is not one of [...]``.
    """
    schema = yaml.safe_load(Path(schema_path).read_text(encoding="utf-8"))
    errors = jsonschema.Draft202012Validator(schema).iter_errors(dict(config))
    error = jsonschema.exceptions.best_match(errors)
    if error is None:
        return None
    key = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    return f"config {key}: {error.message}; see config/README.md"
