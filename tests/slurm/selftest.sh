#!/usr/bin/env bash
# Self-test of the CI SLURM setup, independent of the panelmlp workflow:
# start the cluster, run a toy workflow through run_slurm_check.sh (with the
# real profiles/slurm + CI overlay), stop the cluster, and check that none of
# its daemons is left. Prints the time of each phase.
#
# Usage: tests/slurm/selftest.sh [STATE_DIR]
#   STATE_DIR defaults to a new temporary directory. The toy workflow is
#   written to a new temporary directory too (never into the repository).
#
# The toy has 2 SLURM rules (3 jobs: gen x2, train) and 2 local rules (report,
# all); each rule sets threads/mem_mb/runtime. `train` is named like the real
# workflow's rule (and sets gpu=0, as the real one does on CPU configs) so the
# CI overlay's set-resources override of profiles/slurm is exercised too.
# Every job writes $SLURM_JOB_ID into its output: the SLURM rules must see one,
# the local rule must not.
#
# Needs snakemake + snakemake-executor-plugin-slurm on PATH (or SNAKEMAKE=...).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${1:-$(mktemp -d "${TMPDIR:-/tmp}/slurm-ci-state.XXXXXX")}
TOY=$(mktemp -d "${TMPDIR:-/tmp}/slurm-ci-toy.XXXXXX")
T0=$SECONDS
stopped=0

# Always stop the cluster, also when a step fails.
cleanup() {
    ((stopped)) || "$HERE/stop_cluster.sh" "$STATE" || true
}
trap cleanup EXIT

cat >"$TOY/Snakefile" <<'EOF'
localrules: all, report

SAMPLES = config["samples"]

rule all:
    input: "report.txt"

rule gen:
    output: "gen/{s}.txt"
    threads: 1
    resources: mem_mb=300, runtime=5
    shell: "echo gen {wildcards.s} slurm_job=${{SLURM_JOB_ID:-none}} > {output}"

rule train:
    input: expand("gen/{s}.txt", s=SAMPLES)
    output: "model.txt"
    threads: 2
    resources: mem_mb=500, runtime=10, gpu=0
    shell: "cat {input} > {output}; echo train slurm_job=${{SLURM_JOB_ID:-none}} cpus=${{SLURM_CPUS_PER_TASK:-none}} >> {output}"

rule report:
    input: "model.txt"
    output: "report.txt"
    threads: 1
    resources: mem_mb=100, runtime=1
    shell: "cp {input} {output}; echo report slurm_job=${{SLURM_JOB_ID:-none}} >> {output}"
EOF
printf 'samples: [a, b]\n' >"$TOY/config.yaml"

t=$SECONDS
"$HERE/start_cluster.sh" "$STATE"
t_start=$((SECONDS - t))

# Run from the toy directory: snakemake looks for the Snakefile and for a
# workflow profile (profiles/default) relative to the current directory.
t=$SECONDS
(cd "$TOY" && "$HERE/run_slurm_check.sh" "$TOY" "$TOY/config.yaml")
t_run=$((SECONDS - t))

# In-job evidence: SLURM rules saw a job id (and train its 2 CPUs), the local
# rule did not.
cat "$TOY/report.txt"
grep -qE '^gen a slurm_job=[0-9]+$' "$TOY/report.txt"
grep -qE '^gen b slurm_job=[0-9]+$' "$TOY/report.txt"
grep -qE '^train slurm_job=[0-9]+ cpus=2$' "$TOY/report.txt"
grep -qx 'report slurm_job=none' "$TOY/report.txt"

t=$SECONDS
stopped=1
"$HERE/stop_cluster.sh" "$STATE"
t_stop=$((SECONDS - t))

# Nothing of ours may be left: every pid we recorded must be gone.
left=$(ls "$STATE"/*.pid 2>/dev/null || true)
[[ -z $left ]] || { echo "selftest: FAIL: daemons not stopped: $left" >&2; exit 1; }

echo "selftest: OK (start ${t_start}s, run+check ${t_run}s, stop ${t_stop}s, total $((SECONDS - T0))s); toy in $TOY, cluster state/logs in $STATE"
