from panelmlp.predict import predict_step
from panelmlp.runner import run

run(
    snakemake.log,
    predict_step,
    new=snakemake.input.new,
    plan=snakemake.params.plan,
    sample_id=snakemake.params.sample_id,
    input=snakemake.params.input,
    summary=snakemake.output.summary,
    quarantine=snakemake.output.quarantine,
    threads=snakemake.threads,
    splits=snakemake.input.splits,
    target=snakemake.params.target,
)
