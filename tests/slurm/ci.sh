#!/usr/bin/env bash
# CI step: the workflow on the small generated cohort through a real one-node
# SLURM cluster, checked against a local run with the same seed.
#
# 1. start the cluster (tests/slurm/start_cluster.sh), stop it on exit, by pid;
# 2. generate the cohort and a small config (tests/slurm/ci_config.yaml);
# 3. run the workflow locally, then through SLURM with profiles/slurm plus the
#    CI overlay (tests/slurm/run_slurm_check.sh proves every non-local job ran
#    as a COMPLETED SLURM job);
# 4. compare the two runs' metric tables, histories and summaries.
# Needs root (the daemons) and snakemake + the slurm plugin on PATH.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
SCRATCH=$(mktemp -d /tmp/panelmlp-slurm-ci.XXXXXX)
chmod 755 "$SCRATCH"  # munged needs its socket path traversable by all
STATE="$SCRATCH/cluster"
t0=$SECONDS

bash tests/slurm/start_cluster.sh "$STATE"
trap 'bash tests/slurm/stop_cluster.sh "$STATE"' EXIT

python - "$SCRATCH" <<'PY'
import sys
sys.path.insert(0, "workflow/scripts")
from panelmlp.synthetic import write_cohort
write_cohort(f"{sys.argv[1]}/cohort.csv", n_samples=80, n_genes=8, n_malformed=3, n_broken=1, seed=5)
PY
printf 'PLANTED\tsignal\tSIG1\tSIG2\tG00004\nNOISE_A\tnoise\tG00001\tG00002\nNOISE_B\tnoise\tG00003\tG00005\tG00006\n' > "$SCRATCH/sets.gmt"
sed -e "s|@RAW@|$SCRATCH/cohort.csv|" -e "s|@GMT@|$SCRATCH/sets.gmt|" tests/slurm/ci_config.yaml > "$SCRATCH/config.yaml"

echo "== local run"
timeout -s KILL 300 python -m snakemake --cores 2 --directory "$SCRATCH/local" --configfile "$SCRATCH/config.yaml" --quiet all

echo "== SLURM run"
bash tests/slurm/run_slurm_check.sh "$SCRATCH/slurm" "$SCRATCH/config.yaml"

echo "== local and SLURM outputs agree"
python - "$SCRATCH/local/results" "$SCRATCH/slurm/results" <<'PY'
import sys
from pathlib import Path

import pandas as pd

local, slurm = Path(sys.argv[1]), Path(sys.argv[2])
files = ["metrics/summary.tsv", "clean/quarantine.tsv"]
files += [str(p.relative_to(local)) for p in sorted(local.glob("panels/**/metrics.tsv"))]
files += [str(p.relative_to(local)) for p in sorted(local.glob("panels/**/*.parquet"))]
assert len(files) > 12, files
for name in files:
    read = pd.read_parquet if name.endswith(".parquet") else (lambda p: pd.read_csv(p, sep="\t"))
    a, b = read(local / name), read(slurm / name)
    pd.testing.assert_frame_equal(a, b, check_exact=False, rtol=1e-6, atol=1e-7)
print(f"{len(files)} output tables identical between the local and the SLURM run")
PY
echo "== SLURM CI step took $((SECONDS - t0)) s"
