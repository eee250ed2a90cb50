from panelmlp.evaluate import evaluate_step
from panelmlp.runner import run

run(
    snakemake.log,
    evaluate_step,
    scaled=snakemake.input.scaled,
    checkpoints_dir=snakemake.input.checkpoints,
    panel=snakemake.wildcards.panel,
    metrics_out=snakemake.output.metrics,
    predictions_out=snakemake.output.predictions,
    logreg_c=snakemake.params.logreg_c,
)
