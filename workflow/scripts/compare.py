import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.importance import metric_tables_step  # noqa: E402
from panelmlp.runner import run  # noqa: E402

run(
    snakemake.log,
    metric_tables_step,
    panel_paths=list(snakemake.input.panels),
    metrics_paths=list(snakemake.input.metrics),
    null_paths=list(snakemake.input.nulls),
    summary_out=snakemake.output.summary,
    panels_out=snakemake.output.panels,
    verdict_out=snakemake.output.verdict,
    genes_out=snakemake.output.genes,
    screen_out=snakemake.output.screen,
    cohort=snakemake.input.cohort,
    splits_path=snakemake.input.splits,
    permutations=snakemake.params.permutations,
    random_panels=snakemake.params.random_panels,
    random_bin_width=snakemake.params.random_bin_width,
    random_plan=snakemake.params.random_plan,
    listed=list(snakemake.params.listed),
    n_repeats=snakemake.params.repeats,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
