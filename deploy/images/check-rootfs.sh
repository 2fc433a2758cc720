#!/usr/bin/env bash
# check-rootfs.sh ROOTFS: starts diffrank-server from an image's root file system (chroot,
# user 10001, its own data directory, the models shipped inside) on a free loopback port and
# waits for grpc.health.v1 SERVING; then a Search through Python grpcio. Exit 0 = it serves.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
rootfs=$(cd "$1" && pwd)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
mount -t proc proc "$rootfs/proc"  # as a container runtime provides it
chroot --userspec=10001:10001 "$rootfs" /usr/bin/env OMP_NUM_THREADS=2 \
  /usr/local/bin/diffrank-server --data_dir /var/lib/diffrank --listen "127.0.0.1:$port" \
  --metrics_listen "" --threads 2 > "$log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; umount "$rootfs/proc"; rm -f "$log"' EXIT
if ! (cd "$ROOT" && .venv-clients/bin/python - "$port" "$pid" <<'PY'
import os, sys, time, grpc
sys.path.insert(0, "clients/python")
from grpc_health.v1 import health_pb2, health_pb2_grpc
target = f"127.0.0.1:{sys.argv[1]}"
stub = health_pb2_grpc.HealthStub(grpc.insecure_channel(target))
end = time.time() + 300
while True:
    try:
        if stub.Check(health_pb2.HealthCheckRequest(), timeout=2).status == 1:
            break
    except grpc.RpcError:
        pass
    try:
        os.kill(int(sys.argv[2]), 0)
    except ProcessLookupError:
        sys.exit("the image's server exited")
    if time.time() > end:
        sys.exit("the image's server did not become SERVING")
    time.sleep(0.5)
from diffrank_client import Client
c = Client(target)
c.create_collection("smoke")
c.upsert("smoke", [{"id": "a", "text": "the image serves searches"}])
hits = c.search("smoke", "does the image serve?", top_k=1).hits
assert hits and hits[0].id == "a", hits
print(f"image rootfs: SERVING on {target}; search ok")
PY
); then
  cat "$log" >&2
  exit 1
fi
grep -q "health SERVING" "$log" && grep "models loaded" "$log" | cut -c1-160
