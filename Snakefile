import os
import sys

from snakemake.common.configfile import load_configfile
from snakemake.utils import min_version, validate

min_version("9.0")

DEFAULT_CONFIG = os.path.join(workflow.basedir, "config", "config.yaml")


configfile: DEFAULT_CONFIG


sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from panelmlp.config import (
    coerce_config,
    config_error,
    config_problem,
    duplicate_key_problem,
    layer_config,
    read_schema,
)

CONFIG_SCHEMA = os.path.join(
    workflow.basedir, "workflow", "schemas", "config.schema.yaml"
)
# Snakemake merges every --configfile and --config key by key into the defaults; rebuild the
# config so that a user's value replaces the default whole at panelmlp.config.REPLACE_KEYS
# (target.classes, genes, each panel, ...). Not when another workflow uses this one as a module.
if not workflow.modifier.skip_configfile:
    cli = workflow.config_settings
    for path in cli.configfiles:
        config_message = duplicate_key_problem(path)
        if config_message is not None:
            print(f"panelmlp error: {config_message}", file=sys.stderr, flush=True)
            sys.exit(1)
    layered = layer_config(
        {} if cli.replace_workflow_config else load_configfile(DEFAULT_CONFIG),
        [load_configfile(path) for path in cli.configfiles] + [cli.config],
    )
    config.clear()
    config.update(layered)
# Nested --config values arrive as text (model='{epochs: 200}'): give them the schema's types.
coerce_config(config, read_schema(CONFIG_SCHEMA))
# One line naming the key, not the schema dump; validate() then fills in the schema's defaults.
config_message = config_problem(config) or config_error(config, CONFIG_SCHEMA)
if config_message is not None:
    print(f"panelmlp error: {config_message}", file=sys.stderr, flush=True)
    sys.exit(1)
validate(config, CONFIG_SCHEMA)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"


localrules:
    all,
    report,


rule all:
    default_target: True
    input:
        "results/report.html",
        "results/metrics/summary.tsv",
