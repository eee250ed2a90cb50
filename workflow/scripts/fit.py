from panelmlp.fit import fit_unit
from panelmlp.runner import run
from panelmlp.units import Unit

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
