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
        random_panels=config["evaluate"]["random_panels"],
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
            panel_files=job_files(GROUPED),
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
                    GROUPED["panels"], grouped_outputs("metrics.tsv")
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
            unit=GROUPED,
            model=config["model"],
            permutations=config["evaluate"]["permutations"],
            random_panels=config["evaluate"]["random_panels"],
            logreg_c=config["evaluate"]["logreg_C"],
            baselines=config["evaluate"]["baselines"],
            ridge_alpha=config["evaluate"]["ridge_alpha"],


rule compare:
    input:
        panels=unit_outputs("panels.tsv"),
        metrics=unit_outputs("metrics.tsv"),
        nulls=unit_outputs("nulls.parquet"),
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
    log:
        "logs/compare.log",
    benchmark:
        "benchmarks/compare.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=10,
    params:
        permutations=config["evaluate"]["permutations"],
        random_panels=config["evaluate"]["random_panels"],
    script:
        "../scripts/compare.py"
