import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
from panelmlp.config import coerce_config, config_error, read_schema

CONFIG_SCHEMA = os.path.join(
    workflow.basedir, "workflow", "schemas", "config.schema.yaml"
)
# Nested --config values arrive as text (model='{epochs: 200}'): give them the schema's types.
coerce_config(config, read_schema(CONFIG_SCHEMA))
try:
    validate(config, CONFIG_SCHEMA)
except WorkflowError:  # say which key is wrong in one line, not with the schema dump
    message = config_error(config, CONFIG_SCHEMA)
    if message is None:
        raise
    print(f"panelmlp error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/predict.smk"


localrules:
    all,
    compare,
    report,


rule all:
    default_target: True
    input:
        "results/report.html",
        "results/metrics/summary.tsv",
