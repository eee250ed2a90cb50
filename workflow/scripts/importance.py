from panelmlp.importance import importance_step
from panelmlp.runner import run

run(
    snakemake.log,
    importance_step,
    cohort=snakemake.input.cohort,
    splits_path=snakemake.input.splits,
    summary_path=snakemake.input.summary,
    panel_tables=list(snakemake.input.panels),
    genes_out=snakemake.output.genes,
    screen_out=snakemake.output.screen,
    listed=list(snakemake.params.listed),
    n_repeats=snakemake.params.repeats,
    seed=snakemake.params.seed,
    threads=snakemake.threads,
)
