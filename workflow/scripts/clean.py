from panelmlp.io import clean_step
from panelmlp.runner import run

run(
    snakemake.log,
    clean_step,
    files=list(snakemake.input.raw),
    input=snakemake.params.input,
    genes=snakemake.params.genes,
    sample_id=snakemake.params.sample_id,
    missing=snakemake.params.missing,
    cohort=snakemake.output.cohort,
    quarantine=snakemake.output.quarantine,
    accounting=snakemake.output.accounting,
)
