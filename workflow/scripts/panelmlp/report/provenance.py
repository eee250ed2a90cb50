"""The configuration of the run and the package versions behind the report, so a reader can reproduce it.

The config is written as YAML without PyYAML (the report's environment does
not need it); what the report shows is what the run used, with the defaults
the schema filled in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping

from .page import caption, esc, html_table, section


def _yaml_scalar(value: object) -> str:
    """A YAML scalar: numbers, booleans and null as such, strings double-quoted unless plainly safe."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, _, exponent = text.partition("e")
        return f"{mantissa if '.' in mantissa else mantissa + '.0'}e{exponent}" if exponent else text
    text = str(value)
    reserved = ("true", "false", "null", "yes", "no", "on", "off", "~")
    plain = (
        bool(text)
        and all(ch.isalnum() or ch in "_-./" for ch in text)
        and text[0] not in "-."
        and text.lower() not in reserved
    )
    if plain:
        try:
            float(text)
        except ValueError:
            return text
    return json.dumps(text, ensure_ascii=False)


def to_yaml(value: object, indent: int = 0) -> str:
    """Block-style YAML of nested mappings and lists (lists of scalars inline), without PyYAML."""
    pad = "  " * indent
    nested = (Mapping, list, tuple)
    if isinstance(value, Mapping):
        if not value:
            return pad + "{}"
        lines = []
        for key, item in value.items():
            head = f"{pad}{_yaml_scalar(key)}:"
            if (isinstance(item, Mapping) and item) or (
                isinstance(item, (list, tuple)) and any(isinstance(v, nested) for v in item)
            ):
                lines.append(head + "\n" + to_yaml(item, indent + 1))
            else:
                lines.append(head + " " + to_yaml(item, 0))
        return "\n".join(lines)
    if isinstance(value, (list, tuple)):
        if not any(isinstance(v, nested) for v in value):
            return pad + "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
        return "\n".join(f"{pad}- " + to_yaml(item, indent + 1).lstrip() for item in value)
    return pad + _yaml_scalar(value)


def provenance_section(config: Mapping, versions: Mapping[str, str]) -> str:
    """The configuration used and the package versions."""
    body = (
        "<h3>Configuration</h3>"
        + f"<pre>{esc(to_yaml(config))}</pre>"
        + caption("The workflow configuration of this run, as YAML (comments of config/config.yaml are not kept).")
        + "<h3>Package versions</h3>"
        + html_table(["package", "version"], list(versions.items()))
        + caption(
            "Versions in the environment that wrote this report; training ran in the model environment "
            "(see the device under each panel's training curves)."
        )
    )
    return section("provenance", body)
