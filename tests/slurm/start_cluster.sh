#!/usr/bin/env bash
# Start a real, single-node SLURM cluster on this (CI) machine.
#
# Usage: tests/slurm/start_cluster.sh STATE_DIR
#
# Everything the cluster needs at run time (slurm.conf, munge key and socket,
# controller state, slurmd spool, logs, pid files) lives under STATE_DIR, so a
# run leaves almost no trace elsewhere.  The two exceptions, both required:
#   * the Debian packages (installed only if missing), and
#   * /etc/slurm/slurm.conf, a symlink to STATE_DIR/slurm.conf: the
#     snakemake slurm-jobstep plugin strips SLURM_CONF from the environment
#     before its inner `srun`, so the config must be at the default path or
#     every job fails with "Could not establish a configuration source".
#
# Daemons run as root (SlurmUser=root; this is a throwaway CI machine), in the
# foreground (-D / -F) but backgrounded by this script, so that `$!` is the
# daemon's real pid.  Those pids go to STATE_DIR/{munged,slurmctld,slurmd}.pid
# and tests/slurm/stop_cluster.sh stops exactly those pids, never by name.
# (The daemons' own pid files go to STATE_DIR/run/ and are not used:
# slurmctld removes its own before the process has exited.)
#
# Idempotent: if all three daemons recorded in STATE_DIR are alive and
# slurm.conf is unchanged, it only waits for the node to be idle.  Otherwise it
# stops whatever of ours is left and starts all three fresh (slurmctld and
# slurmd must always be restarted together after a slurm.conf change, or the
# node reports "a different slurm.conf").
#
# Environment knobs (all optional):
#   SLURM_CI_PARTITION   partition name                 [debug]
#                        (tests/slurm/profile/config.yaml says `debug` too)
#   SLURM_CI_MEM_PERCENT RealMemory as % of slurmd -C   [85]
#   SLURM_CI_WAIT        seconds to wait for idle node  [45]
set -euo pipefail

if [[ $# -ne 1 ]]; then
    echo "usage: $0 STATE_DIR" >&2
    exit 2
fi
if [[ $(id -u) -ne 0 ]]; then
    # Daemons run as root with SlurmUser=root, and we write /etc/slurm.
    echo "start_cluster.sh: must run as root" >&2
    exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
STATE=$(cd "$1" && pwd)           # absolute: slurm.conf needs absolute paths
PARTITION=${SLURM_CI_PARTITION:-debug}
MEM_PERCENT=${SLURM_CI_MEM_PERCENT:-85}
WAIT_S=${SLURM_CI_WAIT:-45}
T0=$SECONDS

log() { echo "[start_cluster +$((SECONDS - T0))s] $*" >&2; }

# ---------------------------------------------------------------- packages
# Install only what is missing; `apt-get update` at most once.
need_pkgs=()
command -v slurmctld >/dev/null 2>&1 || need_pkgs+=(slurmctld)
command -v slurmd    >/dev/null 2>&1 || need_pkgs+=(slurmd)
command -v sbatch    >/dev/null 2>&1 || need_pkgs+=(slurm-client)
command -v munged    >/dev/null 2>&1 || need_pkgs+=(munge)
if ((${#need_pkgs[@]})); then
    log "installing ${need_pkgs[*]}"
    # Keep package maintainer scripts from starting system daemons
    # (munge/slurm init scripts) on machines without a policy-rc.d: we start
    # our own private daemons below and stray system ones would collide on
    # the slurm ports.  Docker's Debian images already ship a denying one.
    made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt_rc=0
    {
        apt-get update -qq &&
            apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
    } >"$STATE/apt.log" 2>&1 || apt_rc=$?
    ((made_policy)) && rm -f /usr/sbin/policy-rc.d
    if ((apt_rc)); then
        echo "start_cluster.sh: package install failed (rc=$apt_rc):" >&2
        tail -n 40 "$STATE/apt.log" >&2
        exit 1
    fi
    log "packages installed"
fi

# ---------------------------------------------------------------- helpers
# A recorded pid counts as "ours and alive" only if the process exists, is
# not a zombie, and runs the expected program (guards against pid reuse).
pid_alive() { # name
    local f="$STATE/$1.pid" pid comm st
    [[ -s $f ]] || return 1
    pid=$(<"$f")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    comm=$(cat "/proc/$pid/comm" 2>/dev/null) || return 1
    [[ $comm == "$1" ]] || return 1
    st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
    [[ $st != Z ]]
}

dump_logs() {
    # The daemons run in the foreground, so *.out holds everything they
    # logged (slurm*.log duplicate it; munged logs to stderr only).
    local f
    for f in "$STATE"/log/*.out; do
        [[ -s $f ]] || continue
        echo "----- $f (last 40 lines) -----" >&2
        tail -n 40 "$f" >&2
    done
}

fail() {
    echo "start_cluster.sh: ERROR: $*" >&2
    dump_logs
    echo "start_cluster.sh: stopping what was started" >&2
    "$HERE/stop_cluster.sh" "$STATE" >&2 || true
    exit 1
}

# ---------------------------------------------------------------- layout
mkdir -p "$STATE"/{munge,socket,ctld,spool,log,run}
# munged's checks: the key's directory must be private, and every directory on
# the path to the socket must be searchable (o+x) but not writable by others.
chmod 755 "$STATE" "$STATE/socket"
chmod 700 "$STATE/munge"

if [[ ! -s $STATE/munge/munge.key ]]; then
    mungekey --create --keyfile="$STATE/munge/munge.key"
fi
chmod 400 "$STATE/munge/munge.key"

# ---------------------------------------------------------------- slurm.conf
HOST=$(hostname -s)
# The node line comes from the real hardware so slurmd accepts it; memory is
# lowered (~85%) so slurmd never finds less than configured and drains itself.
node_line=$(slurmd -C | head -n 1)
real_mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
[[ -n $real_mem ]] || fail "could not parse RealMemory from 'slurmd -C': $node_line"
ci_mem=$((real_mem * MEM_PERCENT / 100))
node_line=${node_line/RealMemory=$real_mem/RealMemory=$ci_mem}
NODE=${node_line%% *}
NODE=${NODE#NodeName=}

new_conf=$(mktemp "$STATE/slurm.conf.XXXXXX")
cat >"$new_conf" <<EOF
# Generated by tests/slurm/start_cluster.sh -- single-node CI cluster.
ClusterName=ci
# 127.0.0.1: do not depend on the CI machine's hostname resolving.
SlurmctldHost=$HOST(127.0.0.1)
# Throwaway CI machine: everything runs as root.
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# Private munged (our key, our socket), so a system munged cannot interfere.
AuthInfo=socket=$STATE/socket/munge.socket
MpiDefault=none
# No systemd and no cgroups on CI machines: track processes via /proc only.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# A node that was DOWN comes back by itself once slurmd registers.
ReturnToService=2
# Keep finished jobs in the controller for 5 min: the snakemake plugin's
# squeue status checks and our scontrol-based proof both need to see them.
MinJobAge=300
# No slurmdbd: sacct does not work; use squeue/scontrol (see profile).
AccountingStorageType=accounting_storage/none
# ...but keep a permanent one-line-per-finished-job record for the CI proof.
JobCompType=jobcomp/filetxt
JobCompLoc=$STATE/log/jobcomp.txt
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
# The daemons' own pid files (slurmctld deletes its own early; we do not rely
# on these -- our pids are in $STATE/*.pid).
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# A job without --mem would otherwise get the whole node's memory (with
# CR_Core_Memory) and serialise everything behind it.
DefMemPerCPU=1024
# No mail on this machine; silences "Configured MailProg is invalid".
MailProg=/bin/true
# Do not let a dead job linger; keep CI fast.
KillWait=5
InactiveLimit=0
Waittime=0
# Node (from \`slurmd -C\`, memory lowered) and partition.
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF

conf_changed=1
if [[ -f $STATE/slurm.conf ]] && cmp -s "$new_conf" "$STATE/slurm.conf"; then
    conf_changed=0
    rm -f "$new_conf"
else
    mv "$new_conf" "$STATE/slurm.conf"
fi
chmod 644 "$STATE/slurm.conf"

# The default path must work (see header); a real file there is moved aside
# once (stop_cluster.sh puts it back).
mkdir -p /etc/slurm
if [[ -e /etc/slurm/slurm.conf && ! -L /etc/slurm/slurm.conf ]]; then
    mv /etc/slurm/slurm.conf /etc/slurm/slurm.conf.before-ci
    log "moved existing /etc/slurm/slurm.conf to slurm.conf.before-ci"
fi
ln -sfn "$STATE/slurm.conf" /etc/slurm/slurm.conf
# Also export it for any client that does honour SLURM_CONF.
export SLURM_CONF=$STATE/slurm.conf

# ---------------------------------------------------------------- daemons
# Compact state ("idle", or "idle*" while the node does not respond).
node_state() { sinfo -h -N -n "$NODE" -o '%t' 2>/dev/null | head -n 1; }
# When this slurmd registered, in epoch seconds (0 if unknown).
slurmd_started() {
    local t
    t=$(scontrol show node -o "$NODE" 2>/dev/null |
        sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p')
    date -d "$t" +%s 2>/dev/null || echo 0
}

# wait_idle [EPOCH]: wait until the node is idle and responding; with EPOCH,
# also until a slurmd started at/after EPOCH has registered (a restarted
# slurmctld recovers the node as idle from its saved state before our new
# slurmd has said anything).
wait_idle() {
    local deadline=$((SECONDS + WAIT_S)) st="" since=${1:-0}
    while ((SECONDS < deadline)); do
        st=$(node_state || true)
        [[ $st == idle ]] && (($(slurmd_started) >= since)) && return 0
        for d in munged slurmctld slurmd; do
            pid_alive "$d" || fail "$d (pid $(cat "$STATE/$d.pid" 2>/dev/null)) died"
        done
        sleep 0.5
    done
    fail "node $NODE not idle after ${WAIT_S}s (state: '${st:-none}'); sinfo: $(sinfo 2>&1 | tr '\n' ' ')"
}

if ((conf_changed == 0)) && pid_alive munged && pid_alive slurmctld && pid_alive slurmd; then
    log "cluster already running from $STATE"
    wait_idle
    log "node $NODE idle in partition $PARTITION"
    exit 0
fi

# Partial or stale cluster: stop what is left of ours, start all fresh.
"$HERE/stop_cluster.sh" "$STATE" --keep-conf >&2 || true

# start DAEMON-NAME CMD...: run in the foreground mode of the daemon, but in
# the background of this script, in its own session (so the CI shell's
# hangups/signals do not reach it), with stdin/stdout/stderr detached (so a CI
# runner waiting for the step's output pipes to close does not hang).
# setsid does not fork here (a job of a non-interactive shell is no process
# group leader), so $! is the daemon's own pid.
start() {
    local name=$1 pid
    shift
    setsid "$@" </dev/null >"$STATE/log/$name.out" 2>&1 &
    pid=$!
    echo "$pid" >"$STATE/$name.pid"
    # Until the exec has happened, /proc/$pid/comm still says bash/setsid and
    # pid_alive would call the daemon dead: wait for the exec (or its death).
    for _ in $(seq 100); do
        [[ $(cat "/proc/$pid/comm" 2>/dev/null) == "$name" ]] && return 0
        [[ -e /proc/$pid ]] || break
        sleep 0.05
    done
    fail "$name did not start (see $STATE/log/$name.out)"
}

start munged munged -F \
    --key-file="$STATE/munge/munge.key" \
    --socket="$STATE/socket/munge.socket" \
    --pid-file="$STATE/run/munged.pid" \
    --seed-file="$STATE/munge/munged.seed" \
    --log-file="$STATE/log/munged.log"

# slurmctld/slurmd fail at start if munged is not answering yet.
deadline=$((SECONDS + 15))
until munge -n -S "$STATE/socket/munge.socket" 2>/dev/null |
    unmunge -S "$STATE/socket/munge.socket" >/dev/null 2>&1; do
    pid_alive munged || fail "munged died at start"
    ((SECONDS < deadline)) || fail "munged not answering after 15s"
    sleep 0.2
done
log "munged up (pid $(<"$STATE/munged.pid"))"

# -i: ignore unreadable state from an earlier run in the same STATE_DIR.
start slurmctld slurmctld -D -i -f "$STATE/slurm.conf"
deadline=$((SECONDS + 20))
until scontrol ping 2>/dev/null | grep -q 'is UP'; do
    pid_alive slurmctld || fail "slurmctld died at start"
    ((SECONDS < deadline)) || fail "slurmctld not answering after 20s"
    sleep 0.2
done
log "slurmctld up (pid $(<"$STATE/slurmctld.pid"))"

slurmd_t0=$(($(date +%s) - 1))
start slurmd slurmd -D -f "$STATE/slurm.conf"
wait_idle "$slurmd_t0"
log "slurmd up (pid $(<"$STATE/slurmd.pid")); node $NODE (${ci_mem} MB) idle in partition $PARTITION"
sinfo >&2
