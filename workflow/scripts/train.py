from panelmlp.runner import run
from panelmlp.train import train_step

run(
    snakemake.log,
    train_step,
    scaled=snakemake.input.scaled,
    model=snakemake.params.model,
    permutations=snakemake.params.permutations,
    history_out=snakemake.output.history,
    checkpoints_dir=snakemake.output.checkpoints,
    permutations_out=snakemake.output.permutations,
    threads=snakemake.threads,
)
