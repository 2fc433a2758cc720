#!/usr/bin/env bash
# contention.sh: encoder speed under each OpenMP wait policy, alone and beside
# another CPU-bound process (a shared host, or a pod at its CPU limit).
#
#   encoder/bench/contention.sh [BUILD] [MODEL] [PRECISION] [SHAPES] [POLICIES]
#   defaults: build, models/diffrank-embed-v2, fp32, "32x128 1x32",
#             "default passive spin=1000 spin=10000 active"
# A policy is `default` (what diffrank sets at start: encoder/cpu_features.h),
# `passive` (OMP_WAIT_POLICY=PASSIVE), `active` (OMP_WAIT_POLICY=ACTIVE:
# libgomp's unbounded spinning) or `spin=N` (GOMP_SPINCOUNT=N: spin N rounds,
# then sleep). Each shape runs diffrank-encoder-bench with the default threads
# (the CPUs this process has), every policy once per round in turn, 2 rounds
# alone and 2 beside one busy-looping process; the best round of each is kept.
# Prints one JSON line per run (stderr) and a table: tokens/s for batches > 1,
# p50 ms for batch 1, and the ratio loaded / alone (on 2 cores a fair share
# beside one busy process is 1/2 to 2/3 of the alone figure; a collapse is far
# below that). Results: docs/benchmarks.md ("Threads on a shared machine").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
model="${2:-$root/models/diffrank-embed-v2}"
precision="${3:-fp32}"
shapes="${4:-32x128 1x32}"
policies="${5:-default passive spin=1000 spin=10000 active}"
bench="$build/encoder/diffrank-encoder-bench"
policy_env() {
  case "$1" in
    default) echo DIFFRANK_UNUSED=1 ;;
    passive) echo OMP_WAIT_POLICY=PASSIVE ;;
    active) echo OMP_WAIT_POLICY=ACTIVE ;;
    spin=*) echo "GOMP_SPINCOUNT=${1#spin=}" ;;
    *) echo "unknown policy $1" >&2; exit 2 ;;
  esac
}
for policy in $policies; do policy_env "$policy" >/dev/null; done  # fail early
results=$(mktemp)
busy_pid=""
busy() { sh -c 'while :; do :; done' & busy_pid=$!; }
unbusy() { [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null; wait "$busy_pid" 2>/dev/null || true; busy_pid=""; }
trap 'unbusy; rm -f "$results"' EXIT
run() {  # run LOAD SHAPE POLICY
  local b="${2%x*}" t="${2#*x}" iters=8 out
  [ "$b" -eq 1 ] && iters=100
  out=$(env "$(policy_env "$3")" "$bench" --model "$model" --batch "$b" --seq "$t" \
        --iters "$iters" --warmup 3 --precision "$precision")
  echo "{\"load\":\"$1\",\"shape\":\"$2\",\"policy\":\"$3\",${out#\{}" | tee -a "$results" >&2
}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cpus" >&2
for load in alone busy; do
  [ "$load" = busy ] && busy
  for round in 1 2; do
    for shape in $shapes; do
      for policy in $policies; do run "$load" "$shape" "$policy"; done
    done
  done
  unbusy
done
python3 - "$results" "$precision" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
best = {}
for r in rows:
    batch1 = r["batch"] == 1
    v = r["p50_ms"] if batch1 else r["tokens_per_s"]
    k = (r["shape"], r["policy"], r["load"])
    best[k] = min(best.get(k, v), v) if batch1 else max(best.get(k, v), v)
print(f"| shape ({sys.argv[2]}) | policy | alone | beside a busy process | ratio |")
print("|---|---|---|---|---|")
for (shape, policy, load), v in best.items():
    if load != "alone":
        continue
    b = best[(shape, policy, "busy")]
    batch1 = shape.startswith("1x")
    ratio = v / b if batch1 else b / v  # speed loaded / alone
    unit = " ms" if batch1 else ""
    print(f"| {shape} | {policy} | {v:,.2f}{unit} | {b:,.2f}{unit} | {ratio:.2f} |")
PY
