import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.importance import importance_step  # noqa: E402
from panelmlp.runner import run  # noqa: E402

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
