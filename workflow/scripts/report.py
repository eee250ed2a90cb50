from panelmlp.report.build import build_report
from panelmlp.runner import run

run(
    snakemake.log,
    build_report,
    inputs={k: v for k, v in snakemake.input.items()},
    config=dict(snakemake.params.config),
    out=snakemake.output.html,
)
