#!/usr/bin/env bash
# Builds the fuzz targets (clang, ASan+UBSan, libFuzzer) into build-fuzz/ and
# runs each for SECONDS (default 60) from its seed corpus in fuzz/corpus/.
# New inputs go to build-fuzz/corpus/ (not the repository); a crash leaves
# its input in build-fuzz/artifacts/ and fails the run. Copy a crash into
# fuzz/corpus/<target>/ once fixed so it stays a regression seed.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
secs="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(filter metadata lexical tokenizer model_files factory request server_config records tls_pem rest_body)
fi
out="$root/build-fuzz"
if [ ! -f "$out/build.ninja" ]; then
  mkdir -p "$out"
  CC=clang CXX=clang++ cmake -S "$root/fuzz" -B "$out" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$out/configure.log" 2>&1 ||
    { cat "$out/configure.log"; exit 1; }
fi
cmake --build "$out" -j"$(nproc)"
mkdir -p "$out/artifacts"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export OMP_NUM_THREADS=1
status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t"
  log="$out/fuzz_$t.log"
  if "$out/fuzz_$t" -max_total_time="$secs" -timeout=20 -rss_limit_mb=3072 \
      -max_len=8192 -artifact_prefix="$out/artifacts/${t}-" -print_final_stats=1 \
      "$out/corpus/$t" "$root/fuzz/corpus/$t" > "$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    echo "fuzz_$t: ok, $runs inputs in ${secs}s"
  else
    echo "fuzz_$t: FAILED (log $log, input in $out/artifacts/)"
    tail -40 "$log"
    status=1
  fi
done
exit $status
