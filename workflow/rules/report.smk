rule compare:
    input:
        metrics=expand("results/panels/{panel}/metrics.tsv", panel=PANELS),
        permutations=expand("results/panels/{panel}/permutations.parquet", panel=PANELS),
    output:
        summary=report(
            "results/metrics/summary.tsv",
            category="4. Compare",
            labels={"table": "summary across panels"},
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
    script:
        "../scripts/compare.py"


rule report:
    input:
        accounting="results/clean/clean.json",
        quarantine="results/clean/quarantine.tsv",
        labels="results/splits/labels.json",
        summary="results/metrics/summary.tsv",
        scaled=expand("results/panels/{panel}/scaled.parquet", panel=PANELS),
        history=expand("results/panels/{panel}/history.parquet", panel=PANELS),
        metrics=expand("results/panels/{panel}/metrics.tsv", panel=PANELS),
        predictions=expand("results/panels/{panel}/predictions.parquet", panel=PANELS),
        permutations=expand("results/panels/{panel}/permutations.parquet", panel=PANELS),
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
        panels=PANELS,
        config=config,
    script:
        "../scripts/report.py"
