#!/usr/bin/env bash
# The test command (README): installs every dependency, configures, builds and
# runs every test (unit, slow; gpu tests skip themselves without a GPU), then
# every fuzz target for DIFFRANK_FUZZ_SECONDS (default 15) each.
#   --unit  install, configure, build and the unit tests only (ctest -L unit)
# Other arguments go to ctest. The project's own code builds with -Werror.
set -euo pipefail
unit=0
if [ "${1:-}" = --unit ]; then unit=1; shift; fi
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDIFFRANK_PYTHON="$root/.venv/bin/python" -DDIFFRANK_WERROR=ON
cmake --build build -j"$(nproc)"
if ((unit)); then
  exec ctest --test-dir build --output-on-failure -j"$(nproc)" -L unit "$@"
fi
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
# Every fuzz target for a bounded time (longer campaigns: fuzz/run.sh 600).
fuzz/run.sh "${DIFFRANK_FUZZ_SECONDS:-15}"
