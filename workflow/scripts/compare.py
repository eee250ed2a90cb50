from panelmlp.runner import run
from panelmlp.step_data import compare_step

run(
    snakemake.log,
    compare_step,
    metrics_paths=list(snakemake.input.metrics),
    permutation_paths=list(snakemake.input.permutations),
    out=snakemake.output.summary,
)
