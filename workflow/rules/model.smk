rule train:
    input:
        scaled="results/panels/{panel}/scaled.parquet",
    output:
        history="results/panels/{panel}/history.parquet",
        checkpoints=directory("results/panels/{panel}/checkpoints"),
        permutations="results/panels/{panel}/permutations.parquet",
    log:
        "logs/train/{panel}.log",
    benchmark:
        "benchmarks/train/{panel}.tsv"
    conda:
        training_env()
    threads: config["resources"]["train_threads"]
    resources:
        mem_mb=mem_mb(config["resources"]["train_mem_mb"]),
        runtime=config["resources"]["train_runtime"],
        gpu=gpus_for_training(),
    params:
        model=config["model"],
        permutations=config["evaluate"]["permutations"],
    script:
        "../scripts/train.py"


rule evaluate:
    input:
        scaled="results/panels/{panel}/scaled.parquet",
        checkpoints="results/panels/{panel}/checkpoints",
    output:
        metrics=report(
            "results/panels/{panel}/metrics.tsv",
            category="3. Evaluate",
            labels={"panel": "{panel}", "table": "metrics per split"},
        ),
        predictions="results/panels/{panel}/predictions.parquet",
    log:
        "logs/evaluate/{panel}.log",
    benchmark:
        "benchmarks/evaluate/{panel}.tsv"
    conda:
        training_env()
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=20,
    params:
        logreg_c=config["evaluate"]["logreg_C"],
    script:
        "../scripts/evaluate.py"
