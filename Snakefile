import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config", "config.yaml")


try:
    validate(config, "workflow/schemas/config.schema.yaml")
except WorkflowError:  # say which key is wrong in one line, not with the schema dump
    sys.path.insert(0, os.path.join(workflow.basedir, "workflow", "scripts"))
    from panelmlp.config import config_error

    schema = os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
    message = config_error(config, schema)
    if message is None:
        raise
    raise WorkflowError(message) from None


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/model.smk"
include: "workflow/rules/report.smk"


localrules:
    all,
    compare,
    report,


rule all:
    default_target: True
    input:
        "results/report.html",
        "results/metrics/summary.tsv",
