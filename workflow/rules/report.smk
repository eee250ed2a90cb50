rule report:
    input:
        accounting="results/clean/clean.json",
        quarantine="results/clean/quarantine.tsv",
        labels="results/splits/labels.json",
        cohort="results/clean/cohort.parquet",
        splits="results/splits/splits.parquet",
        summary="results/metrics/summary.tsv",
        panels="results/metrics/panels.tsv",
        history=unit_outputs("history.parquet"),
        metrics=unit_outputs("metrics.tsv"),
        predictions=unit_outputs("predictions.parquet"),
        nulls=unit_outputs("nulls.parquet"),
        tuning=unit_outputs("tuning.tsv"),
    output:
        html=report(
            "results/report.html",
            category="5. Report",
            labels={"report": "panelmlp HTML report"},
        ),
    log:
        "logs/report.log",
    benchmark:
        "benchmarks/report.tsv"
    conda:
        "../../envs/report.yaml"
    threads: 1
    resources:
        mem_mb=mem_mb(2000),
        runtime=10,
    params:
        config=config,
    script:
        "../scripts/report.py"
