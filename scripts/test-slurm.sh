#!/usr/bin/env bash
# `npm run test:slurm`: `spdfq-native slurm compare` on a real Slurm cluster of one node on
# this machine. Installs nothing: where Debian's slurm-wlm and munge are installed, it starts
# munged, slurmctld and slurmd with every config, key and state file in a temporary folder,
# submits a small comparison as a job array of 3 tasks plus the dependent merge job, checks
# the merged table equals the same table computed in one process, resubmits the array and
# checks that no cell is computed again, and stops every daemon it started (also on failure).
# Needs the build (npm run build) and root, or a user the daemons may run as.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
t_start=$(date +%s)

missing=()
for tool in munged slurmctld slurmd sbatch squeue sinfo scancel; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if ((${#missing[@]})); then
  echo "test:slurm: Slurm is not installed (missing: ${missing[*]}). On Debian or Ubuntu:" >&2
  echo "  apt-get update && apt-get install -y slurm-wlm munge" >&2
  exit 1
fi
[[ -f dist/lib/cli/main.js && -f dist/scripts/fixtures/tiny-table.js ]] || { echo "test:slurm: build first (npm run build)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/spdfq-slurm.XXXXXX)
chmod 700 "$tmp"
stop() {
  local rc=$?
  # Jobs first (their steps belong to slurmd), then the daemons, each by the pid it wrote.
  if [[ -f "$tmp/slurmctld.pid" ]]; then scancel --quiet --user "$(id -un)" 2>/dev/null || true; fi
  for d in slurmd slurmctld munged; do
    if [[ -f "$tmp/$d.pid" ]]; then
      pid=$(cat "$tmp/$d.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
  done
  if ((rc != 0)); then
    echo "test:slurm: FAILED; daemon logs:" >&2
    tail -n 20 "$tmp"/*.log >&2 2>/dev/null || true
    tail -n 30 "$tmp"/array/slurm/logs/*.log >&2 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap stop EXIT
trap 'exit 130' INT TERM

# munge: a fresh key and its own socket, so a system munged (if any) is left alone.
dd if=/dev/urandom of="$tmp/munge.key" bs=1024 count=1 status=none
chmod 400 "$tmp/munge.key"
munged --force --key-file="$tmp/munge.key" --socket="$tmp/munge.sock" --pid-file="$tmp/munged.pid" \
  --log-file="$tmp/munged.log" --seed-file="$tmp/munge.seed"

# slurm.conf for this host as slurmd sees it (name, CPUs, memory), on ports unlikely taken.
host=$(hostname -s)
node_line=$(slurmd -C | head -n 1 | sed 's/ UpTime=.*//')
port=$((20000 + RANDOM % 20000))
mkdir -p "$tmp/state" "$tmp/spool"
cat >"$tmp/slurm.conf" <<EOF
ClusterName=spdfq-test
SlurmctldHost=$host(127.0.0.1)
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.sock
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
$node_line NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$tmp/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for i in $(seq 60); do
  state=$(sinfo -h -o %T 2>/dev/null || true)
  [[ "$state" == idle* ]] && break
  ((i < 60)) || { echo "test:slurm: the node did not come up (state '$state')" >&2; exit 1; }
  sleep 1
done
echo "test:slurm: cluster up: $node_line ($(( $(date +%s) - t_start )) s)"

cli=(node "$repo/bin/spdfq-native.js")
# shellcheck disable=SC2207  # the fixture prints its flags as words
data=($(node dist/scripts/fixtures/tiny-table.js "$tmp/data"))
table=("${data[@]}" --methods noise,inversion,spdfq --bits w8a8,w4a4 --seeds 2 --images 4 --iters 3 --recon-iters 0
  --ablation-variants none,APA --eval-limit 24 --threads 1)
"${cli[@]}" compare "${table[@]}" --out "$tmp/one" >/dev/null 2>"$tmp/one.log"

# Waits until the given jobs have left the queue; fails when one did not complete.
wait_jobs() {
  for _ in $(seq 600); do
    [[ -z "$(squeue -h -j "$1" -o %i 2>/dev/null)" ]] && break
    sleep 1
  done
  bad=$(scontrol -o show job "$1" 2>/dev/null | grep -v 'JobState=COMPLETED' || true)
  [[ -z "$bad" ]] || { echo "test:slurm: jobs did not complete: $bad" >&2; exit 1; }
}

"${cli[@]}" slurm compare --tasks 3 --out "$tmp/array" --cpus-per-task 1 --time 10:00 -- "${table[@]}"
ids=$(bash "$tmp/array/slurm/submit.sh")
echo "test:slurm: $ids"
read -r array merge < <(sed -E 's/array job ([0-9]+) .*merge job ([0-9]+)/\1 \2/' <<<"$ids")
wait_jobs "$array,$merge"

node -e '
  const fs = require("fs");
  const [one, arr] = process.argv.slice(1).map((d) => JSON.parse(fs.readFileSync(d + "/results.json", "utf8")).result);
  for (const k of ["fpTop1", "cells", "cellSeeds", "ablation", "ablationSeeds", "quality", "qualitySeeds"]) {
    if (JSON.stringify(one[k]) !== JSON.stringify(arr[k])) { console.error(`test:slurm: merged ${k} differs from the single-process table`); process.exit(1); }
  }' "$tmp/one" "$tmp/array"
cmp -s "$tmp/one/results.md" "$tmp/array/results.md" || { echo "test:slurm: results.md differs" >&2; diff "$tmp/one/results.md" "$tmp/array/results.md" >&2; exit 1; }
echo "test:slurm: the merged table of 3 array tasks equals the single-process table:"
cat "$tmp/array/results.md"

# Resubmitted: every task reads its cells back instead of computing them.
ids=$(bash "$tmp/array/slurm/submit.sh")
read -r array merge < <(sed -E 's/array job ([0-9]+) .*merge job ([0-9]+)/\1 \2/' <<<"$ids")
wait_jobs "$array,$merge"
reused=$(cat "$tmp/array/slurm/logs/spdfq-compare-${array}"_*.log | grep -c 'finished earlier' || true)
[[ "$reused" == 10 ]] || { echo "test:slurm: the resubmitted array reused $reused of 10 cells" >&2; exit 1; }
echo "test:slurm: resubmitted: all 10 cells read back, none recomputed"
echo "test:slurm: passed in $(( $(date +%s) - t_start )) s"
