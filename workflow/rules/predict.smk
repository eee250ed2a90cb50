from panelmlp.predict_plan import prediction_name, prediction_plan, predict_csv_problem

# `snakemake predict --config predict_csv=new.csv`: score new samples with every panel's
# checkpoints (training first where needed), and rebuild the report, which then has an
# external-validation section: models, predictions and report.html always describe one config.
# The plan and the checks live in panelmlp.predict_plan (plain Python, loaded at every start).
# The report's inputs from here: predict_report_inputs() in common.smk.


if config.get("predict_csv"):
    PREDICT_NAME = prediction_name(config["predict_csv"])
    try:
        PREDICT_PLAN = prediction_plan(
            config["panels"], config.get("predict_panels"), UNITS, PREDICT_NAME
        )
    except PanelMlpError as exc:
        stop(str(exc))
    PREDICT_FOLDERS = list(
        dict.fromkeys(f for entry in PREDICT_PLAN for f in entry["folders"])
    )
    # Checked now, said only when predict runs: a missing file must not stop `snakemake` (rule all).
    PREDICT_CSV_PROBLEM = predict_csv_problem(config["predict_csv"])

    localrules:
        predict,

    rule predict:
        input:
            [entry["table"] for entry in PREDICT_PLAN],
            f"results/predictions/{PREDICT_NAME}.json",
            "results/report.html",

    rule predict_samples:
        input:
            new=lambda wildcards: (
                stop(PREDICT_CSV_PROBLEM)
                if PREDICT_CSV_PROBLEM
                else config["predict_csv"]
            ),
            panels=[f"{folder}/panels.tsv" for folder in PREDICT_FOLDERS],
            checkpoints=[f"{folder}/checkpoints" for folder in PREDICT_FOLDERS],
            splits="results/splits/splits.parquet",
        output:
            tables=[entry["table"] for entry in PREDICT_PLAN],
            metrics=[entry["metrics"] for entry in PREDICT_PLAN],
            summary=f"results/predictions/{PREDICT_NAME}.json",
            quarantine=f"results/predictions/{PREDICT_NAME}.quarantine.tsv",
        log:
            f"logs/predict/{PREDICT_NAME}.log",
        benchmark:
            f"benchmarks/predict/{PREDICT_NAME}.tsv"
        conda:
            "../../envs/torch-cpu.yaml"
        threads: 1
        resources:
            mem_mb=mem_mb(2000),
            runtime=30,
        params:
            plan=PREDICT_PLAN,
            sample_id=config["sample_id"],
            input=config["input"],
            target=config["target"],
        script:
            "../scripts/predict.py"

else:

    localrules:
        predict,

    # Without predict_csv, `snakemake predict` stops with one line saying so.
    rule predict:
        input:
            lambda wildcards: stop(
                "config predict_csv: not set; name the new samples' table: "
                "snakemake predict --config predict_csv=new.csv"
            ),
