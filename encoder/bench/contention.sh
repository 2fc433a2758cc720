#!/usr/bin/env bash
# contention.sh: encoder throughput when another CPU-bound process shares the
# cores, as on a shared host or a pod at its CPU limit.
#
#   encoder/bench/contention.sh [BUILD] [MODEL] [PRECISION]
#   (defaults: build, models/diffrank-embed-v2, fp32)
# Runs diffrank-encoder-bench (batch 32 x 128 tokens, default threads: the
# CPUs this process has) alone and beside one busy-looping process, first
# with diffrank's default OpenMP wait policy (PASSIVE, set at start by the
# encoder: encoder/cpu_features.h) and then with OMP_WAIT_POLICY=ACTIVE (the
# spin-waiting that libgomp does by default, what diffrank ran before).
# Prints one JSON line per run and the ratios (loaded / alone). On 2 cores a
# fair share beside one busy process is 1/2 to 2/3 of the alone figure.
# Results: docs/benchmarks.md ("Threads on a shared machine").
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${1:-$root/build}"
model="${2:-$root/models/diffrank-embed-v2}"
precision="${3:-fp32}"
bench="$build/encoder/diffrank-encoder-bench"
run() {  # run LABEL ENV...: tokens/s
  local label="$1"; shift
  local out
  out=$(env "$@" "$bench" --model "$model" --batch 32 --seq 128 --iters 8 \
        --warmup 2 --precision "$precision")
  echo "{\"run\":\"$label\",${out#\{}" >&2
  python3 -c 'import json,sys; print(json.loads(sys.argv[1])["tokens_per_s"])' "$out"
}
busy_pid=""
busy() { sh -c 'while :; do :; done' & busy_pid=$!; }
unbusy() { [ -n "$busy_pid" ] && kill "$busy_pid" 2>/dev/null; wait "$busy_pid" 2>/dev/null || true; busy_pid=""; }
trap unbusy EXIT
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cpus" >&2
p_alone=$(run passive-alone DIFFRANK_UNUSED=1)
a_alone=$(run active-alone OMP_WAIT_POLICY=ACTIVE)
busy
p_busy=$(run passive-beside-busy DIFFRANK_UNUSED=1)
a_busy=$(run active-beside-busy OMP_WAIT_POLICY=ACTIVE)
unbusy
python3 - "$p_alone" "$p_busy" "$a_alone" "$a_busy" <<'PY'
import json, sys
pa, pb, aa, ab = map(float, sys.argv[1:])
print(json.dumps({"passive_alone": round(pa), "passive_busy": round(pb),
                  "passive_ratio": round(pb / pa, 3),
                  "active_alone": round(aa), "active_busy": round(ab),
                  "active_ratio": round(ab / aa, 3)}))
PY
