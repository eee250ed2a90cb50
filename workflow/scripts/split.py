import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.runner import run  # noqa: E402
from panelmlp.splits import split_step  # noqa: E402

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
