import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.predict import predict_step  # noqa: E402
from panelmlp.runner import run  # noqa: E402

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
