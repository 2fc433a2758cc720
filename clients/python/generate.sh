#!/usr/bin/env bash
# Generates the Python messages and stubs of proto/diffrank/v1/diffrank.proto
# into clients/python/diffrank_client/gen/ (not committed; rerun after
# changing the proto). Usage: clients/python/generate.sh [PYTHON]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${1:-$root/.venv-clients/bin/python}"
out="$here/diffrank_client/gen"
mkdir -p "$out"
"$py" -m grpc_tools.protoc --proto_path="$root/proto" --python_out="$out" \
  --grpc_python_out="$out" "$root/proto/diffrank/v1/diffrank.proto"
touch "$out/__init__.py" "$out/diffrank/__init__.py" "$out/diffrank/v1/__init__.py"
