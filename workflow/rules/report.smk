rule report:
    input:
        accounting="results/clean/clean.json",
        quarantine="results/clean/quarantine.tsv",
        labels="results/splits/labels.json",
        cohort="results/clean/cohort.parquet",
        splits="results/splits/splits.parquet",
        summary="results/metrics/summary.tsv",
        panels="results/metrics/panels.tsv",
        verdict="results/metrics/verdict.json",
        history=unit_outputs("history.parquet"),
        metrics=unit_outputs("metrics.tsv"),
        predictions=unit_outputs("predictions.parquet"),
        nulls=unit_outputs("nulls.parquet"),
        tuning=unit_outputs("tuning.tsv"),
        genes="results/metrics/genes.tsv",
        genes_screen="results/metrics/genes_screen.tsv",
        # With predict_csv set: the external validation (predict.smk), so the report follows predict.
        external=lambda wildcards: predict_report_inputs("metrics"),
        external_summary=lambda wildcards: predict_report_inputs("summary"),
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
