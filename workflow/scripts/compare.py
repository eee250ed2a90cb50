from panelmlp.compare import compare_step
from panelmlp.runner import run

run(
    snakemake.log,
    compare_step,
    metrics_paths=list(snakemake.input.metrics),
    permutation_paths=list(snakemake.input.permutations),
    out=snakemake.output.summary,
)
