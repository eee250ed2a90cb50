import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.report.build import build_report  # noqa: E402
from panelmlp.runner import run  # noqa: E402

run(
    snakemake.log,
    build_report,
    inputs={k: v for k, v in snakemake.input.items()},
    config=dict(snakemake.params.config),
    out=snakemake.output.html,
)
