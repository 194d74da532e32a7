#!/usr/bin/env bash
# The distributed test run again and again under load, stopping at the first failure:
#   bash benchmarks/distributed_loop.sh [RUNS=20] [BUSY_LOOPS=1]
# BUSY_LOOPS processes spin on the CPU for the whole loop (whatever else the machine runs adds to them).
# Each run's log goes to $TMPDIR; one line per run (exit code, seconds, load average) to stdout.
set -uo pipefail
cd "$(dirname "$0")/.."
runs=${1:-20}
busy=${2:-1}
logs=$(mktemp -d)
pids=()
for _ in $(seq 1 "$busy"); do python -c 'while True: pass' & pids+=($!); done
trap 'kill "${pids[@]}" 2>/dev/null' EXIT
test_id="tests/engine/test_distributed.py::test_chief_and_workers_started_apart_survive_a_dead_worker_and_a_restarted_chief"
for i in $(seq 1 "$runs"); do
  start=$(date +%s)
  python -m pytest -n 0 -q -p no:cacheprovider "$test_id" > "$logs/run_$i.log" 2>&1
  rc=$?
  echo "run $i rc=$rc seconds=$(( $(date +%s) - start )) load=$(cut -d' ' -f1 /proc/loadavg) at $(date -u +%H:%M:%S)"
  if [ "$rc" -ne 0 ]; then echo "FAILED at run $i (log: $logs/run_$i.log)"; exit 1; fi
done
echo "ALL $runs PASSED"
