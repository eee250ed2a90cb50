"""Cost of nested tuning: the default workflow against the same with a 16-point grid, on the real cohort.

In one invocation, each in a fresh temporary directory, `snakemake --cores 2`:
1. the default config (no grid, no early stopping);
2. the same plus ``model.grid`` {hidden: [[16], [64]], dropout: [0.0, 0.3],
   weight_decay: [0.0, 0.001], lr: [0.001, 0.01]} (16 points) with
   ``model.inner_folds: 3``: every point on every inner fold of every split's
   training rows, the best one retrained per split.

Prints both wall times, their ratio (target: the tuned run takes at most 10x
the default), the models each run trained (results/panels/*/fit.json:
``models`` and ``inner_models``, one count per fit job), the grid points the
tuned run chose (tuning.tsv) and the MLP's CV ROC-AUC per panel of both runs
(summary.tsv).

    python bench/tuning.py [--raw ../shared/data/gbm_data.csv] [--cores 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd
from _common import REPO, machine
from pipeline import job_counts, run

GRID = {
    "hidden": [[16], [64]],
    "dropout": [0.0, 0.3],
    "weight_decay": [0.0, 0.001],
    "lr": [0.001, 0.01],
}
INNER_FOLDS = 3


def workflow_run(raw: str, cores: str, tuned: bool) -> dict:
    """One fresh run of the workflow: wall time, jobs, models trained, chosen points and the MLP's ROC-AUC."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "config" / "panels").mkdir(parents=True)
        for panel in (REPO / "config" / "panels").glob("*.txt"):
            (work / "config" / "panels" / panel.name).write_text(panel.read_text())
        cmd = [
            *(sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--cores", cores),
            *("--directory", str(work), "--config", f"raw_csv={raw}"),
        ]
        if tuned:
            extra = work / "tuned.yaml"
            extra.write_text(json.dumps({"model": {"grid": GRID, "inner_folds": INNER_FOLDS}}))  # JSON is YAML
            cmd += ["--configfile", str(extra)]
        wall, log = run(cmd, REPO)

        units = {}
        for path in sorted((work / "results" / "panels").glob("**/fit.json")):
            info = json.loads(path.read_text())
            units[info["unit"]] = info  # the small named panels share one job: its fit.json is in each folder
        outer = sum(sum(info["models"].values()) for info in units.values())
        inner = sum(info.get("inner_models", 0) for info in units.values())

        chosen = {}
        for path in sorted((work / "results" / "panels").glob("**/tuning.tsv")):
            table = pd.read_csv(path, sep="\t")
            if table.empty:  # no grid: a header only
                continue
            for panel, rows in table[table["chosen"].astype(bool)].groupby("panel"):
                chosen[panel] = rows["grid_point"].value_counts().to_dict()

        summary = pd.read_csv(work / "results" / "metrics" / "summary.tsv", sep="\t")
        auc = summary[(summary["model"] == "mlp") & (summary["metric"] == "roc_auc")]
        return {
            "wall": wall,
            "jobs": sum(job_counts(log).values()),
            "units": {
                name: (sum(info["models"].values()), info.get("inner_models", 0)) for name, info in units.items()
            },
            "outer": outer,
            "inner": inner,
            "chosen": chosen,
            "auc": {row.panel: (row.cv_mean, row.ci_low, row.ci_high) for row in auc.itertuples()},
        }


def describe(name: str, result: dict) -> None:
    print(
        f"{name}: {result['wall']:.1f} s wall, {result['jobs']} jobs, "
        f"{result['outer']} models + {result['inner']} inner-fold models"
    )
    for unit, (models, inner) in result["units"].items():
        print(f"  fit job {unit}: {models} models, {inner} inner-fold models")
    for panel, (mean, low, high) in result["auc"].items():
        print(f"  {panel}: MLP ROC-AUC CV mean {mean:.3f} [{low:.3f}, {high:.3f}]")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", default=str(REPO.parent / "shared" / "data" / "gbm_data.csv"))
    parser.add_argument("--cores", default="2")
    args = parser.parse_args()
    raw = Path(args.raw).resolve()
    if not raw.is_file():
        print(f"skipped: the real cohort {raw} is absent (give its path with --raw)")
        return
    print(f"machine: {machine()}")
    points = 1
    for values in GRID.values():
        points *= len(values)
    print(f"grid: {points} points x {INNER_FOLDS} inner folds: {json.dumps(GRID)}")

    default = workflow_run(str(raw), args.cores, tuned=False)
    describe("default run", default)
    tuned = workflow_run(str(raw), args.cores, tuned=True)
    describe("tuned run", tuned)
    for panel, counts in tuned["chosen"].items():
        shown = ", ".join(f"{point} x{n}" for point, n in sorted(counts.items(), key=lambda kv: -kv[1]))
        print(f"  {panel}: chosen per split: {shown}")
    print(f"ratio tuned / default: {tuned['wall'] / default['wall']:.1f}x (target <= 10x)")


if __name__ == "__main__":
    main()
