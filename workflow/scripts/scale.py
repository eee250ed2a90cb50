from panelmlp.runner import run
from panelmlp.scaling import scale_step

run(
    snakemake.log,
    scale_step,
    cohort=snakemake.input.cohort,
    splits_path=snakemake.input.splits,
    labels_json=snakemake.input.labels,
    panel=snakemake.wildcards.panel,
    spec=snakemake.params.spec,
    out=snakemake.output.scaled,
)
