import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.compare import compare_step  # noqa: E402
from panelmlp.runner import run  # noqa: E402

run(
    snakemake.log,
    compare_step,
    panel_paths=list(snakemake.input.panels),
    metrics_paths=list(snakemake.input.metrics),
    null_paths=list(snakemake.input.nulls),
    summary_out=snakemake.output.summary,
    panels_out=snakemake.output.panels,
    permutations=snakemake.params.permutations,
    random_panels=snakemake.params.random_panels,
    verdict_out=snakemake.output.verdict,
    random_bin_width=snakemake.params.random_bin_width,
    random_plan=snakemake.params.random_plan,
)
