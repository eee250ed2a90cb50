from panelmlp.runner import run
from panelmlp.splits import split_step

run(
    snakemake.log,
    split_step,
    cohort=snakemake.input.cohort,
    sample_id=snakemake.params.sample_id,
    target=snakemake.params.target,
    split=snakemake.params.split,
    out_splits=snakemake.output.splits,
    out_labels=snakemake.output.labels,
)
