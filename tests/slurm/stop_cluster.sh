#!/usr/bin/env bash
# Stop the single-node CI SLURM cluster started by tests/slurm/start_cluster.sh.
#
# Usage: tests/slurm/stop_cluster.sh STATE_DIR [--keep-conf]
#
# Stops only the daemons whose pids start_cluster.sh recorded in
# STATE_DIR/{slurmd,slurmctld,munged}.pid -- never anything found by process
# name, so other SLURM/munge processes on the machine are left alone.  Waits on
# each pid itself (slurmctld deletes its own pid file before it has exited, so
# a pid file vanishing proves nothing).
#
# Before that, it cancels any job still known to our controller, so that no
# slurmstepd / job processes outlive the cluster.
#
# Unless --keep-conf is given, it also removes the /etc/slurm/slurm.conf
# symlink when it points into STATE_DIR (restoring a file start_cluster.sh
# moved aside).  STATE_DIR itself (logs, job records) is kept for inspection.
#
# Safe to run repeatedly and on a partially started cluster.  Exit status is
# non-zero only if one of our daemons could not be stopped.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    echo "usage: $0 STATE_DIR [--keep-conf]" >&2
    exit 2
fi
if [[ ! -d $1 ]]; then
    echo "stop_cluster.sh: $1: no such directory, nothing to stop" >&2
    exit 0
fi
STATE=$(cd "$1" && pwd)
KEEP_CONF=0
[[ ${2:-} == --keep-conf ]] && KEEP_CONF=1
export SLURM_CONF=$STATE/slurm.conf

log() { echo "[stop_cluster] $*" >&2; }

# Same identity check as start_cluster.sh: the pid exists, is not a zombie
# (a zombie is dead; a container's pid 1 may never reap it) and runs the
# program we started (guards against pid reuse).
pid_alive() { # pid name
    local comm st
    comm=$(cat "/proc/$1/comm" 2>/dev/null) || return 1
    [[ $comm == "$2" ]] || return 1
    st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ $st != Z ]]
}

# Cancel leftover jobs while the controller is still there (bounded: a
# client command must never hang CI).
if [[ -s $STATE/slurmctld.pid ]] && pid_alive "$(<"$STATE/slurmctld.pid")" slurmctld; then
    jobs_left=$(timeout 10 squeue -h -o '%i' 2>/dev/null || true)
    if [[ -n $jobs_left ]]; then
        log "cancelling jobs still queued/running: $(tr '\n' ' ' <<<"$jobs_left")"
        # shellcheck disable=SC2086
        timeout 10 scancel $jobs_left 2>/dev/null || true
        for _ in $(seq 20); do
            [[ -z $(timeout 5 squeue -h -t PD,R,CG -o '%i' 2>/dev/null || true) ]] && break
            sleep 0.5
        done
    fi
fi

rc=0
# Order: node daemon first, then controller, then munge (both slurm daemons
# talk through munge while shutting down).
for name in slurmd slurmctld munged; do
    f=$STATE/$name.pid
    [[ -s $f ]] || continue
    pid=$(<"$f")
    if ! [[ $pid =~ ^[0-9]+$ ]] || ! pid_alive "$pid" "$name"; then
        rm -f "$f"
        continue
    fi
    kill -TERM "$pid" 2>/dev/null || true
    # Wait on the pid itself, up to 15 s, then SIGKILL.
    for _ in $(seq 150); do
        pid_alive "$pid" "$name" || break
        sleep 0.1
    done
    if pid_alive "$pid" "$name"; then
        log "$name (pid $pid) ignored SIGTERM for 15s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for _ in $(seq 50); do
            pid_alive "$pid" "$name" || break
            sleep 0.1
        done
    fi
    if pid_alive "$pid" "$name"; then
        log "ERROR: could not stop $name (pid $pid)"
        rc=1
    else
        log "stopped $name (pid $pid)"
        rm -f "$f"
    fi
done

if ((KEEP_CONF == 0)) && [[ -L /etc/slurm/slurm.conf ]] &&
    [[ $(readlink /etc/slurm/slurm.conf) == "$STATE/slurm.conf" ]]; then
    rm -f /etc/slurm/slurm.conf
    if [[ -e /etc/slurm/slurm.conf.before-ci ]]; then
        mv /etc/slurm/slurm.conf.before-ci /etc/slurm/slurm.conf
    fi
fi

exit "$rc"
