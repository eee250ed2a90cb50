import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.io import clean_step  # noqa: E402
from panelmlp.runner import run  # noqa: E402

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
