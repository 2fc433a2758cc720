#!/usr/bin/env bash
# The test command (README): installs every dependency, configures, builds and
# runs every test (unit, slow; gpu tests skip themselves without a GPU).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDIFFRANK_PYTHON="$root/.venv/bin/python"
cmake --build build -j"$(nproc)"
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
