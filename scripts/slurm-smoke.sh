#!/usr/bin/env bash
# Proves examples/slurm-array.sh on a real Slurm: installs Debian's slurm-wlm and munge when they
# are missing, starts a single-node cluster on this machine (its own config and state in a temp
# folder; nothing under /etc is changed besides what the packages install), submits the example's
# job array over the bundled demo set with the tiny test model, waits for the dependent
# aggregate-and-check job, and compares the aggregated tables byte for byte with an unsharded run.
#
#   scripts/slurm-smoke.sh            # from the repository root; builds the debug binary if needed
#
# Exit status: 0 when the tables are identical and the final job succeeded; 0 with a line starting
# `slurm-smoke: SKIPPED` when Slurm cannot be installed or started here (not root, no package
# mirror, no way to run the daemons); 1 on any difference or failure.
#
# Settings: CLIP_AUDIT (binary; default $CARGO_TARGET_DIR or target, then debug/clip-audit), SHARDS (default 3),
# SMOKE_TIMEOUT (seconds to wait for the jobs; default 600).

set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
repo=$PWD
SHARDS=${SHARDS:-3}
SMOKE_TIMEOUT=${SMOKE_TIMEOUT:-600}
started=$(date +%s)

skip() {
    echo "slurm-smoke: SKIPPED: $*"
    exit 0
}
fail() {
    echo "slurm-smoke: FAILED: $*" >&2
    exit 1
}

# --- Slurm and munge -----------------------------------------------------------------------------
if ! command -v slurmctld > /dev/null || ! command -v munged > /dev/null; then
    [[ $(id -u) -eq 0 ]] || skip "slurm-wlm and munge are not installed and this is not root"
    command -v apt-get > /dev/null || skip "no apt-get to install slurm-wlm and munge"
    echo "slurm-smoke: installing slurm-wlm and munge"
    if ! (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq slurm-wlm munge) > /tmp/slurm-smoke-apt.log 2>&1; then
        tail -5 /tmp/slurm-smoke-apt.log
        skip "apt-get could not install slurm-wlm and munge (log: /tmp/slurm-smoke-apt.log)"
    fi
fi
[[ $(id -u) -eq 0 ]] || skip "starting slurmd needs root"

# --- the binary ----------------------------------------------------------------------------------
CLIP_AUDIT=${CLIP_AUDIT:-${CARGO_TARGET_DIR:-$repo/target}/debug/clip-audit}
if [[ ! -x $CLIP_AUDIT ]]; then
    echo "slurm-smoke: building $CLIP_AUDIT"
    cargo build --quiet
fi
CLIP_AUDIT=$(readlink -f "$CLIP_AUDIT")

# --- a single-node cluster -----------------------------------------------------------------------
work=$(mktemp -d /tmp/slurm-smoke.XXXXXX)
chmod 755 "$work"
node=$(hostname -s)
export SLURM_CONF=$work/slurm.conf
pids=()
cleanup() {
    scancel --quiet --user=root 2> /dev/null || true
    for pid in "${pids[@]}"; do kill "$pid" 2> /dev/null || true; done
    [[ -f $work/slurmctld.pid ]] && kill "$(cat "$work/slurmctld.pid")" 2> /dev/null || true
    [[ -f $work/slurmd.pid ]] && kill "$(cat "$work/slurmd.pid")" 2> /dev/null || true
    [[ -f $work/munged.pid ]] && kill "$(cat "$work/munged.pid")" 2> /dev/null || true
}
trap cleanup EXIT

mkdir -p "$work"/{state,spool,munge}
cat > "$SLURM_CONF" << EOF
ClusterName=smoke
SlurmctldHost=$node
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
MinJobAge=3600
NodeName=$node CPUs=$(nproc) State=UNKNOWN
PartitionName=smoke Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
# munge with its own socket and key, so a munged already running here is left alone
socket=$work/munge/munge.socket
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$work/munge/munge.key"
munged --force --socket="$socket" --key-file="$work/munge/munge.key" \
    --pid-file="$work/munged.pid" --log-file="$work/munged.log" \
    --seed-file="$work/munge/seed" || skip "munged would not start (see $work/munged.log)"
echo "AuthInfo=socket=$socket" >> "$SLURM_CONF"
slurmctld -f "$SLURM_CONF" || skip "slurmctld would not start (see $work/slurmctld.log)"
slurmd -f "$SLURM_CONF" || skip "slurmd would not start (see $work/slurmd.log)"
for _ in $(seq 60); do
    state=$(sinfo -h -n "$node" -o %t 2> /dev/null || true)
    [[ $state == idle* ]] && break
    sleep 1
done
[[ ${state:-} == idle* ]] || skip "the node did not come up (state '${state:-none}'; logs in $work)"
echo "slurm-smoke: single-node Slurm $(sinfo -V | awk '{print $2}') up on $node"

# --- the unsharded reference and the example array -----------------------------------------------
probe=$repo/probes/clip-paper-race.toml
dataset=$repo/datasets/demo.toml
model=$repo/tests/fixtures/tiny-clip
"$CLIP_AUDIT" run --probe "$probe" --dataset "$dataset" --model "$model" --no-cache \
    --intersect 'race*gender' --out "$work/unsharded" > "$work/unsharded.log" 2>&1 ||
    fail "the unsharded run failed: $(tail -3 "$work/unsharded.log")"
cat > "$work/rules.toml" << 'EOF'
[[rule]]
name = "smoke: the gate runs (non-human rate per race at most 100%)"
metric = "rate"
category = "non-human"
by = "race"
max = 1.0
min_group_size = 1
EOF
cd "$work"
submitted=$(CLIP_AUDIT=$CLIP_AUDIT PROBE=$probe DATASET=$dataset MODEL=$model SHARDS=$SHARDS \
    WORK=$work/audit RULES=$work/rules.toml TABULATE_ARGS="--intersect race*gender" \
    SBATCH_ARGS="--cpus-per-task=1" bash "$repo/examples/slurm-array.sh")
echo "$submitted"
final=$(sed -n 's/.*aggregation as job \([0-9]*\).*/\1/p' <<< "$submitted")
[[ -n $final ]] || fail "could not read the aggregate job id from the submission"

deadline=$((SECONDS + SMOKE_TIMEOUT))
while [[ -n $(squeue -h -o %i) ]]; do
    ((SECONDS < deadline)) || fail "jobs still queued after ${SMOKE_TIMEOUT}s: $(squeue -h)"
    sleep 2
done
job=$(scontrol show job "$final")
grep -q "JobState=COMPLETED" <<< "$job" && grep -q "ExitCode=0:0" <<< "$job" ||
    fail "the aggregate job did not succeed: $(grep -o 'JobState=[^ ]*\|ExitCode=[^ ]*' <<< "$job" |
        tr '\n' ' ')(log: $work/audit/logs/aggregate.out: $(tail -3 "$work/audit/logs/aggregate.out"))"

# --- compare -------------------------------------------------------------------------------------
for k in $(seq 0 $((SHARDS - 1))); do
    [[ -f $work/audit/shards/$k/run.json ]] || fail "shard $k/$SHARDS has no run.json"
done
for table in groups.csv accuracy.csv disparities.csv metrics.json skipped.csv; do
    cmp -s "$work/unsharded/$table" "$work/audit/report/$table" ||
        fail "$table of the aggregated shards differs from the unsharded run's"
done
grep -q '"count": '"$SHARDS" "$work/audit/report/run.json" || fail "run.json has no shards section"
grep -q "0 of 1 rules failed" "$work/audit/logs/aggregate.out" || fail "check did not run in the final job"
echo "slurm-smoke: $SHARDS array tasks + aggregate/check job COMPLETED; groups.csv, accuracy.csv," \
    "disparities.csv, metrics.json, skipped.csv identical to the unsharded run" \
    "($(($(date +%s) - started)) s in all; files in $work)"
