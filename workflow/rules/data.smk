if download_wanted():

    localrules:
        download,

    rule download:
        output:
            config["raw_csv"],
        log:
            "logs/download.log",
        benchmark:
            "benchmarks/download.tsv"
        conda:
            "../../envs/data.yaml"
        threads: 1
        resources:
            mem_mb=500,
            runtime=10,
        params:
            url=config["download"].get("url", ""),
            sha256=config["download"].get("sha256", ""),
        script:
            "../scripts/download.py"


rule clean:
    input:
        raw=input_files(),
    output:
        cohort="results/clean/cohort.parquet",
        quarantine=report(
            "results/clean/quarantine.tsv",
            category="1. Clean",
            labels={"table": "quarantined rows"},
        ),
        accounting="results/clean/clean.json",
    log:
        "logs/clean.log",
    benchmark:
        "benchmarks/clean.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 2
    resources:
        mem_mb=mem_mb(2000),
        runtime=30,
    params:
        input=config["input"],
        genes=config["genes"],
        sample_id=config["sample_id"],
        missing=config["clean"]["missing"],
    script:
        "../scripts/clean.py"


rule split:
    input:
        cohort="results/clean/cohort.parquet",
    output:
        splits="results/splits/splits.parquet",
        labels="results/splits/labels.json",
    log:
        "logs/split.log",
    benchmark:
        "benchmarks/split.tsv"
    conda:
        "../../envs/data.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(1000),
        runtime=10,
    params:
        sample_id=config["sample_id"],
        target=config["target"],
        split=config["split"],
    script:
        "../scripts/split.py"
