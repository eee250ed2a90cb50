#!/usr/bin/env bash
# Run a Snakemake workflow through the CI SLURM cluster and prove that every
# non-local job really ran as a SLURM job that finished COMPLETED.
#
# Usage: tests/slurm/run_slurm_check.sh WORKDIR CONFIGFILE [extra snakemake args...]
#
#   WORKDIR     passed as `--directory` (created if missing). Outputs,
#               .snakemake/ and the SLURM logs go there.
#   CONFIGFILE  passed as `--configfile`.
#   extra args  appended to the snakemake command line, e.g. `-s path/Snakefile`
#               when not run from the directory holding the Snakefile,
#               targets, `--workflow-profile none`, ...
#
# snakemake is run from the current directory (that is where it looks for the
# Snakefile and for the workflow profile profiles/default/), as
#   timeout -s KILL $SLURM_CHECK_TIMEOUT snakemake \
#       --profile <repo>/profiles/slurm --profile <repo>/tests/slurm/profile \
#       --configfile CONFIGFILE --directory WORKDIR [extra args]
# i.e. the real site profile with the CI overlay on top (later --profile wins
# per top-level key), so the shipped profile is exercised as well.
#
# Proof, from snakemake's own log plus the SLURM controller:
#   1. snakemake exited 0 (and within the timeout: SIGKILL, because a
#      snakemake that lost track of a SLURM job can wait forever and ignore
#      SIGTERM);
#   2. the set of snakemake jobs printed as `rule X:` / `checkpoint X:` (i.e.
#      non-local; local ones print as `localrule X:`) equals the set reported
#      as "Job N has been submitted with SLURM jobid M", each exactly once, and
#      no local job was submitted;
#   3. every such SLURM job is COMPLETED with ExitCode 0:0, per
#      `scontrol show job` (the CI cluster keeps finished jobs for
#      MinJobAge=300 s; no slurmdbd/sacct needed), falling back to the
#      controller's job-completion file (JobCompLoc) for jobs that already
#      aged out;
#   4. each job's SLURM log file exists (warning only; needs
#      `slurm-keep-successful-logs`, which the CI profile sets).
# Not supported (the check would report a mismatch): --slurm-array-jobs,
# job groups, and --retries (a retried job has several SLURM ids).
#
# Environment (optional):
#   SNAKEMAKE              snakemake executable  [snakemake on PATH]
#   SLURM_CHECK_TIMEOUT    seconds before SIGKILL               [240]
#   SLURM_CHECK_PROFILES   space-separated --profile values
#                          [<repo>/profiles/slurm <repo>/tests/slurm/profile]
#   SLURM_CHECK_ALLOW_NONE 1: do not fail when no job went to SLURM (e.g.
#                          everything was up to date)           [0]
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 WORKDIR CONFIGFILE [extra snakemake args...]" >&2
    exit 2
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$1"
WORKDIR=$(cd "$1" && pwd)
[[ -f $2 ]] || { echo "run_slurm_check.sh: config file $2 not found" >&2; exit 2; }
CONFIGFILE=$(cd "$(dirname "$2")" && pwd)/$(basename "$2")
shift 2
TIMEOUT=${SLURM_CHECK_TIMEOUT:-240}
read -r -a PROFILES <<<"${SLURM_CHECK_PROFILES:-$REPO/profiles/slurm $REPO/tests/slurm/profile}"

die() {
    echo "run_slurm_check.sh: FAIL: $*" >&2
    exit 1
}

# ------------------------------------------------------------ preconditions
SNAKEMAKE=${SNAKEMAKE:-$(command -v snakemake || true)}
[[ -n $SNAKEMAKE && -x $SNAKEMAKE ]] ||
    die "no snakemake found (put its environment on PATH or set SNAKEMAKE)"
SNAKEMAKE=$(cd "$(dirname "$SNAKEMAKE")" && pwd)/$(basename "$SNAKEMAKE")
# Jobs re-run `python -m snakemake` with the submitting Python, and rule shell
# commands inside jobs inherit PATH: put that environment first on PATH.
SM_BIN=$(dirname "$SNAKEMAKE")
export PATH=$SM_BIN:$PATH
if [[ -x $SM_BIN/python ]] &&
    ! "$SM_BIN/python" -c 'import snakemake_executor_plugin_slurm' 2>/dev/null; then
    die "snakemake-executor-plugin-slurm is not installed in $SM_BIN/python"
fi
for c in sbatch squeue scontrol sinfo; do
    command -v "$c" >/dev/null || die "'$c' not found: SLURM client tools missing"
done
# Never let a client call hang CI if the controller is gone.
timeout 15 sinfo -h >/dev/null 2>&1 ||
    die "no SLURM controller answers (did tests/slurm/start_cluster.sh run?)"

CHECK_DIR=$WORKDIR/.snakemake/slurm_check
mkdir -p "$CHECK_DIR"
LOG=$CHECK_DIR/snakemake.log

# ------------------------------------------------------------ run
profile_args=()
for p in "${PROFILES[@]}"; do profile_args+=(--profile "$p"); done
cmd=(timeout -s KILL "$TIMEOUT" "$SNAKEMAKE" "${profile_args[@]}"
    --configfile "$CONFIGFILE" --directory "$WORKDIR" "$@")
echo "run_slurm_check.sh: running: ${cmd[*]}" >&2
echo "run_slurm_check.sh: log: $LOG" >&2
t0=$SECONDS
set +e
"${cmd[@]}" 2>&1 | tee "$LOG"
rc=${PIPESTATUS[0]}
set -e
elapsed=$((SECONDS - t0))
echo "run_slurm_check.sh: snakemake exited with $rc after ${elapsed}s" >&2

# ------------------------------------------------------------ parse the log
# "local"/"remote" + snakemake jobid + rule, from the job headers
# (`rule X:` / `checkpoint X:` = non-local, `localrule X:` /
# `localcheckpoint X:` = run in the main process), keyed by the `jobid:` line.
# Skipped: failed jobs' logs that show-failed-logs copies into the log
# ("Logfile PATH:" then the file between two ==== lines), since the job's
# inner snakemake prints its own `rule X:` headers there.
awk '
    /^Logfile .*:$/ { skip = 1; bars = 0; kind = ""; next }
    skip { if (/^={20,}$/ && ++bars == 2) skip = 0; next }
    /^(local)?(rule|checkpoint) [^ ]+:$/ {
        kind = ($1 ~ /^local/) ? "local" : "remote"
        rule = $2; sub(/:$/, "", rule); next
    }
    kind != "" && /^    jobid: [0-9]+$/ { print kind, $2, rule; kind = "" }
    /^[^ ]/ { kind = "" }
' "$LOG" | sort -u >"$CHECK_DIR/jobs.txt"
# snakemake jobid, SLURM jobid, SLURM log path.
# (All id lists below are sorted lexicographically, as comm(1) needs.)
sed -nE 's/.*Job ([0-9]+) has been submitted with SLURM jobid ([0-9_]+) \(log: (.*)\)\.$/\1 \2 \3/p' \
    "$LOG" >"$CHECK_DIR/submitted.txt"

awk '$1 == "remote" {print $2}' "$CHECK_DIR/jobs.txt" | sort >"$CHECK_DIR/remote_ids.txt"
awk '$1 == "local" {print $2}' "$CHECK_DIR/jobs.txt" | sort >"$CHECK_DIR/local_ids.txt"
awk '{print $1}' "$CHECK_DIR/submitted.txt" | sort >"$CHECK_DIR/submitted_ids.txt"
n_remote=$(wc -l <"$CHECK_DIR/remote_ids.txt")
n_local=$(wc -l <"$CHECK_DIR/local_ids.txt")
n_submitted=$(wc -l <"$CHECK_DIR/submitted.txt")
n_slurm=$(awk '{print $2}' "$CHECK_DIR/submitted.txt" | sort -u | wc -l)

# If snakemake was killed, do not leave its SLURM jobs behind.
if ((rc == 137 || rc == 124)) && ((n_submitted > 0)); then
    echo "run_slurm_check.sh: snakemake timed out after ${TIMEOUT}s; cancelling its SLURM jobs" >&2
    # shellcheck disable=SC2046
    timeout 15 scancel $(awk '{print $2}' "$CHECK_DIR/submitted.txt") 2>/dev/null || true
fi

# ------------------------------------------------------------ SLURM states
jobcomp=$(timeout 15 scontrol show config 2>/dev/null |
    awk '$1 == "JobCompLoc" {print $3}' || true)
field() { # KEY LINE -> value of KEY=value in a one-line scontrol record
    local re="(^| )$1=([^ ]*)"
    [[ $2 =~ $re ]] && echo "${BASH_REMATCH[2]}" || echo "?"
}

problems=()
printf '%-8s %-6s %-20s %-10s %-6s %-10s %-4s %-7s %-9s %s\n' \
    SLURM_ID SMK_ID RULE STATE EXIT PARTITION CPUS MEM TIMELIMIT LOG >&2
while read -r smk_id slurm_id slurm_log; do
    rule=$(awk -v id="$smk_id" '$2 == id {print $3}' "$CHECK_DIR/jobs.txt")
    rec=$(timeout 15 scontrol show job -o "$slurm_id" 2>/dev/null || true)
    src=scontrol
    if [[ -z $rec && -n $jobcomp && -r $jobcomp ]]; then
        # Aged out of the controller: use its completion record instead.
        rec=$(grep -E "^JobId=$slurm_id " "$jobcomp" | tail -n 1 || true)
        src=jobcomp
    fi
    if [[ -z $rec ]]; then
        problems+=("SLURM job $slurm_id (snakemake job $smk_id, rule ${rule:-?}) unknown to the controller")
        continue
    fi
    state=$(field JobState "$rec")
    exitc=$(field ExitCode "$rec")
    if [[ $src == jobcomp ]]; then
        cpus=$(field ProcCnt "$rec"); mem=$(field Tres "$rec"); mem=${mem#*mem=}; mem=${mem%%,*}
    else
        cpus=$(field NumCPUs "$rec"); mem=$(field MinMemoryNode "$rec")
    fi
    [[ -e $slurm_log ]] && logst=present || logst=missing
    printf '%-8s %-6s %-20s %-10s %-6s %-10s %-4s %-7s %-9s %s\n' \
        "$slurm_id" "$smk_id" "${rule:-?}" "$state" "$exitc" \
        "$(field Partition "$rec")" "$cpus" "$mem" "$(field TimeLimit "$rec")" \
        "$logst ($src)" >&2
    if [[ $state != COMPLETED || $exitc != 0:0 ]]; then
        problems+=("SLURM job $slurm_id (snakemake job $smk_id, rule ${rule:-?}) is $state with exit code $exitc; log: $slurm_log")
    fi
    [[ $logst == present ]] ||
        echo "run_slurm_check.sh: warning: SLURM log $slurm_log missing (slurm-keep-successful-logs unset?)" >&2
done <"$CHECK_DIR/submitted.txt"

# ------------------------------------------------------------ bookkeeping
if ((rc == 137 || rc == 124)); then
    problems+=("snakemake killed after the ${TIMEOUT}s timeout (status $rc)")
elif ((rc != 0)); then
    problems+=("snakemake exited with status $rc")
fi
if ! cmp -s "$CHECK_DIR/remote_ids.txt" "$CHECK_DIR/submitted_ids.txt"; then
    problems+=("non-local snakemake jobs [$(tr '\n' ' ' <"$CHECK_DIR/remote_ids.txt")] != jobs submitted to SLURM [$(tr '\n' ' ' <"$CHECK_DIR/submitted_ids.txt")]")
fi
((n_slurm == n_remote)) ||
    problems+=("$n_remote non-local snakemake jobs but $n_slurm distinct SLURM jobs")
local_submitted=$(comm -12 "$CHECK_DIR/local_ids.txt" "$CHECK_DIR/submitted_ids.txt" | tr '\n' ' ')
[[ -z $local_submitted ]] || problems+=("local jobs were submitted to SLURM: $local_submitted")
if ((n_remote == 0)) && [[ ${SLURM_CHECK_ALLOW_NONE:-0} != 1 ]]; then
    problems+=("no job ran through SLURM, nothing proven (everything up to date? set SLURM_CHECK_ALLOW_NONE=1 to accept)")
fi

if ((${#problems[@]})); then
    for p in "${problems[@]}"; do echo "run_slurm_check.sh: FAIL: $p" >&2; done
    # Daemon logs help when SLURM itself misbehaved (only readable on the CI
    # cluster's own machine; silently skipped elsewhere).
    for key in SlurmctldLogFile SlurmdLogFile; do
        f=$(timeout 15 scontrol show config 2>/dev/null | awk -v k="$key" '$1 == k {print $3}' || true)
        if [[ -n $f && -r $f ]]; then
            echo "----- $f (last 40 lines) -----" >&2
            tail -n 40 "$f" >&2
        fi
    done
    exit 1
fi
echo "run_slurm_check.sh: OK: $n_remote non-local jobs ran as $n_slurm SLURM jobs, all COMPLETED (exit 0:0); $n_local local jobs ran in the main process; snakemake took ${elapsed}s" >&2
