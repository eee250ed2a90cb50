import gc

gc.disable()  # during the imports only: panelmlp.runner.run freezes what they made, then collects again
from panelmlp.fit import fit_unit  # noqa: E402
from panelmlp.runner import run  # noqa: E402
from panelmlp.units import Unit  # noqa: E402

run(
    snakemake.log,
    fit_unit,
    unit=Unit.from_params(snakemake.params.unit),
    cohort=snakemake.input.cohort,
    splits_path=snakemake.input.splits,
    labels_json=snakemake.input.labels,
    model=snakemake.params.model,
    permutations=snakemake.params.permutations,
    random_panels=snakemake.params.random_panels,
    random_bin_width=snakemake.params.random_bin_width,
    random_universe=snakemake.params.random_universe,
    logreg_c=snakemake.params.logreg_c,
    baselines=snakemake.params.baselines,
    ridge_alpha=snakemake.params.ridge_alpha,
    threads=snakemake.threads,
)
