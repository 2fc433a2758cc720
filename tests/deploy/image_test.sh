#!/usr/bin/env bash
# image_test.sh OUT_DIR: builds the CPU image (deploy/images/build-cpu.sh) into OUT_DIR and
# checks what it produced: an OCI layout with the tag, user 10001, the entrypoint, no
# compilers or headers in the root file system; build-cpu.sh itself proves the server
# starts from it and serves. Exit 77 (skip) without root.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=$1
[[ $(id -u) == 0 ]] || { echo "skip: building an image needs root (mmdebstrap, chroot)"; exit 77; }
"$ROOT/deploy/images/build-cpu.sh" "$OUT" 0.1.0-cpu
cfg=$(umoci stat --image "$OUT/oci:0.1.0-cpu" --json)
python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
index = json.load(open(os.path.join(out, "oci", "index.json")))
tags = [m["annotations"]["org.opencontainers.image.ref.name"] for m in index["manifests"]]
assert tags == ["0.1.0-cpu"], tags
blob = lambda d: json.load(open(os.path.join(out, "oci", "blobs", *d["digest"].split(":"))))
manifest = blob(index["manifests"][0])
config = blob(manifest["config"])["config"]
assert config["User"] == "10001:10001", config
assert config["Entrypoint"] == ["/usr/local/bin/diffrank-server"], config
assert set(config["ExposedPorts"]) == {"50051/tcp", "9464/tcp"}, config
rootfs = os.path.join(out, "rootfs")
for dev in ("usr/bin/gcc", "usr/bin/cc", "usr/include/torch", "usr/bin/cmake"):
    assert not os.path.exists(os.path.join(rootfs, dev)), f"build tool in the image: {dev}"
for need in ("usr/local/bin/diffrank-server", "usr/local/bin/diffrank-index",
             "usr/local/share/diffrank/models/diffrank-embed-v3/model.safetensors",
             "usr/local/share/diffrank/models/diffrank-embed-v2/model.safetensors",
             "usr/local/share/diffrank/models/diffrank-rerank-v2/model.safetensors"):
    assert os.path.exists(os.path.join(rootfs, need)), need
print("image layout ok:", tags[0], config["User"], config["Entrypoint"])
PY
