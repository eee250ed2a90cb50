from panelmlp.randomsets import plan_for_run

RANDOM_PLAN = plan_for_run(
    config["evaluate"],
    config["split"],
    [unit.as_params() for unit in PLAN.units],
    PLAN.panel_size,
)
"""evaluate.random_panels resolved (auto: N per size bin so that the smallest random-panel q is <= 0.05)."""
if RANDOM_PLAN.auto and RANDOM_PLAN.family and not RANDOM_PLAN.n:
    stop(
        f"config evaluate.random_budget: {RANDOM_PLAN.budget} random models cannot pay for one random gene set "
        f"per size bin ({RANDOM_PLAN.bins} bins x {RANDOM_PLAN.cv_splits} CV splits); raise it, or set random_panels to a number"
    )


rule fit:
    input:
        cohort="results/clean/cohort.parquet",
        splits="results/splits/splits.parquet",
        labels="results/splits/labels.json",
        panel_files=unit_files,
    output:
        panels="results/panels/{unit}/panels.tsv",
        history="results/panels/{unit}/history.parquet",
        metrics=report(
            "results/panels/{unit}/metrics.tsv",
            category="3. Fit",
            labels={"unit": "{unit}", "table": "metrics per split"},
        ),
        predictions="results/panels/{unit}/predictions.parquet",
        nulls="results/panels/{unit}/nulls.parquet",
        tuning="results/panels/{unit}/tuning.tsv",
        summary="results/panels/{unit}/fit.json",
        checkpoints=directory("results/panels/{unit}/checkpoints"),
    log:
        "logs/fit/{unit}.log",
    benchmark:
        "benchmarks/fit/{unit}.tsv"
    conda:
        training_env()
    threads: fit_threads
    resources:
        mem_mb=mem_mb(config["resources"]["train_mem_mb"]),
        runtime=config["resources"]["train_runtime"],
        gpu=gpus_for_training(),
    params:
        unit=lambda wildcards: UNITS[wildcards.unit],
        model=config["model"],
        permutations=config["evaluate"]["permutations"],
        random_panels=RANDOM_PLAN.n,
        random_bin_width=config["evaluate"]["random_bin_width"],
        random_universe=config["evaluate"]["random_universe"],
        logreg_c=config["evaluate"]["logreg_C"],
        baselines=config["evaluate"]["baselines"],
        ridge_alpha=config["evaluate"]["ridge_alpha"],
    script:
        "../scripts/fit.py"


if GROUPED:

    # The small named panels: one job writes each panel's folder.
    use rule fit as fit_named with:
        input:
            cohort="results/clean/cohort.parquet",
            splits="results/splits/splits.parquet",
            labels="results/splits/labels.json",
            panel_files=GROUPED.files(),
        output:
            panels=grouped_outputs("panels.tsv"),
            history=grouped_outputs("history.parquet"),
            metrics=[
                report(
                    path,
                    category="3. Fit",
                    labels={"unit": panel, "table": "metrics per split"},
                )
                for panel, path in zip(
                    GROUPED.panel_names, grouped_outputs("metrics.tsv")
                )
            ],
            predictions=grouped_outputs("predictions.parquet"),
            nulls=grouped_outputs("nulls.parquet"),
            tuning=grouped_outputs("tuning.tsv"),
            summary=grouped_outputs("fit.json"),
            checkpoints=[directory(p) for p in grouped_outputs("checkpoints")],
        log:
            "logs/fit-named.log",
        benchmark:
            "benchmarks/fit-named.tsv"
        threads: config["resources"]["train_threads"]
        params:
            unit=GROUPED.as_params(),
            model=config["model"],
            permutations=config["evaluate"]["permutations"],
            random_panels=RANDOM_PLAN.n,
            random_bin_width=config["evaluate"]["random_bin_width"],
            random_universe=config["evaluate"]["random_universe"],
            logreg_c=config["evaluate"]["logreg_C"],
            baselines=config["evaluate"]["baselines"],
            ridge_alpha=config["evaluate"]["ridge_alpha"],


# The metric tables: means with CIs, p- and q-values and calls (summary.tsv), then the driver genes
# (permutation importance on test rows) of every panel called predictive there and every panel
# evaluate.importance names. One job: the driver genes follow the calls, and torch is imported
# only when some panel is scored (a null result scores none).
rule compare:
    input:
        panels=unit_outputs("panels.tsv"),
        metrics=unit_outputs("metrics.tsv"),
        # read beside each metrics.tsv: calibration slope and intercept of the pooled out-of-fold predictions
        predictions=unit_outputs("predictions.parquet"),
        nulls=unit_outputs("nulls.parquet"),
        cohort="results/clean/cohort.parquet",
        splits="results/splits/splits.parquet",
        checkpoints=unit_outputs("checkpoints"),
    output:
        summary=report(
            "results/metrics/summary.tsv",
            category="4. Compare",
            labels={"table": "summary across panels"},
        ),
        panels=report(
            "results/metrics/panels.tsv",
            category="4. Compare",
            labels={"table": "panels and skipped gene sets"},
        ),
        verdict="results/metrics/verdict.json",
        genes=report(
            "results/metrics/genes.tsv",
            category="4. Compare",
            labels={"table": "driver genes per panel"},
        ),
        screen=report(
            "results/metrics/genes_screen.tsv",
            category="4. Compare",
            labels={"table": "driver genes across the screen"},
        ),
    log:
        "logs/compare.log",
    benchmark:
        "benchmarks/compare.tsv"
    conda:
        training_env()
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=mem_mb(config["resources"]["train_mem_mb"]),
        runtime=config["resources"]["train_runtime"],
    params:
        permutations=config["evaluate"]["permutations"],
        random_panels=RANDOM_PLAN.n,
        random_bin_width=config["evaluate"]["random_bin_width"],
        random_plan={**RANDOM_PLAN.as_dict(), "describe": RANDOM_PLAN.describe()},
        listed=config["evaluate"]["importance"],
        repeats=config["evaluate"]["importance_repeats"],
        seed=config["model"]["seed"],
    script:
        "../scripts/compare.py"
