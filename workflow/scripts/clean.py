from panelmlp.io import clean_step
from panelmlp.runner import run

run(
    snakemake.log,
    clean_step,
    raw_csv=snakemake.input.raw,
    genes=snakemake.params.genes,
    sample_id=snakemake.params.sample_id,
    cohort=snakemake.output.cohort,
    quarantine=snakemake.output.quarantine,
    accounting=snakemake.output.accounting,
)
