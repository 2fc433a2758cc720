#!/usr/bin/env bash
# The README's main command: installs dependencies, builds diffrank-server,
# starts it on the embedded default (data in ./diffrank-data, the bundled
# reference models), loads Debian's package descriptions through the gRPC
# API and prints reranked searches with their timings. The server keeps
# running afterwards (its pid and how to stop it are printed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
listen="${DIFFRANK_LISTEN:-127.0.0.1:50051}"
data="${DIFFRANK_DATA_DIR:-$root/diffrank-data}"
bash scripts/install-deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DDIFFRANK_PYTHON="$root/.venv/bin/python" >/dev/null
cmake --build build -j"$(nproc)" --target diffrank-server
mkdir -p "$data"
py="$root/.venv-clients/bin/python"
serving() {
  "$py" - "$listen" <<'PY'
import sys, grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
try:
    r = health_pb2_grpc.HealthStub(grpc.insecure_channel(sys.argv[1])).Check(
        health_pb2.HealthCheckRequest(), timeout=1)
    sys.exit(0 if r.status == health_pb2.HealthCheckResponse.SERVING else 1)
except grpc.RpcError:
    sys.exit(1)
PY
}
if serving; then
  echo "demo: a server already answers on $listen; using it"
else
  nohup build/service/diffrank-server --data_dir "$data" --listen "$listen" \
    >"$data/server.log" 2>&1 &
  pid=$!
  echo "$pid" >"$data/server.pid"
  echo "demo: started diffrank-server (pid $pid, log $data/server.log)"
  for _ in $(seq 1 300); do
    serving && break
    kill -0 "$pid" 2>/dev/null || { cat "$data/server.log"; exit 1; }
    sleep 0.5
  done
fi
"$py" clients/python/demo.py --target "$listen" "$@"
cat <<MSG

demo: the server keeps running on $listen (metrics: http://127.0.0.1:9464/metrics).
      Search again:  .venv-clients/bin/python clients/python/demo.py --target $listen --query "your question"
      Stop it:       kill \$(cat $data/server.pid)   (SIGTERM drains and exits 0)
MSG
