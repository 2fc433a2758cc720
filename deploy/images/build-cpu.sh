#!/usr/bin/env bash
# build-cpu.sh: the CPU image of diffrank, built from Debian packages without a container
# engine or registry (none is reachable here):
#   1. a minimal Debian 12 root file system (mmdebstrap, minbase) with only the runtime
#      libraries the binaries link (derived from their ELF NEEDED entries, not a hand list);
#   2. diffrank-server and diffrank-index in /usr/local/bin, the shipped models in
#      /usr/local/share/diffrank/models (inside the image: the server finds them beside its
#      binary; mount others with --embedder_model / --reranker_model), user 10001;
#   3. an OCI image layout (umoci) tagged diffrank/diffrank-server:<tag>, ready for
#      `skopeo copy oci:<dir>:<tag> docker://<registry>/...` or `podman load`.
# Then it proves the root file system: the server starts in it (chroot, as user 10001, a
# read-only view of the system) and answers grpc.health.v1 SERVING.
#
#   sudo deploy/images/build-cpu.sh [OUT_DIR=build-image] [TAG=0.1.0-cpu]
# Needs root (mmdebstrap/chroot), the built binaries in build/, and scripts/install-deps.sh's
# packages (mmdebstrap, umoci) and client venv (the health check).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${1:-$ROOT/build-image}
TAG=${2:-0.1.0-cpu}
BIN=("$ROOT/build/service/diffrank-server" "$ROOT/build/indexer/diffrank-index")
for b in "${BIN[@]}"; do [[ -x $b ]] || { echo "build first: $b is missing" >&2; exit 2; }; done

# 1. Runtime packages: the Debian package of every library the binaries need directly
# (apt adds their own dependencies).
pkgs=$(for b in "${BIN[@]}"; do readelf -d "$b" | awk '/NEEDED/{gsub(/[][]/,"",$5); print $5}'; done |
  sort -u | while read -r lib; do
    path=$(ldconfig -p | awk -v l="$lib" '$1==l{print $NF; exit}')
    [[ -n $path ]] || { echo "no $lib on this machine" >&2; exit 2; }
    real=$(readlink -f "$path")
    # merged /usr: dpkg may own the /lib spelling of the path
    { dpkg -S "$real" 2>/dev/null || dpkg -S "${real#/usr}"; } | cut -d: -f1
  done | sort -u | grep -v -x -e libc6 -e libgcc-s1 | paste -sd, -)
echo "runtime packages: $pkgs"

# A previous run's proof may have left /proc mounted in the old root file system.
if mountpoint -q "$OUT/rootfs/proc" 2>/dev/null; then umount "$OUT/rootfs/proc"; fi
rm -rf --one-file-system "$OUT"
mkdir -p "$OUT"
rootfs=$OUT/rootfs
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
mmdebstrap --variant=minbase --include="$pkgs" \
  --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm "$rootfs" "${mirror:-http://deb.debian.org/debian}"

# 2. diffrank itself, a non-root user, the data and config directories.
install -m 0755 "${BIN[@]}" "$rootfs/usr/local/bin/"
mkdir -p "$rootfs/usr/local/share/diffrank/models" "$rootfs/var/lib/diffrank" "$rootfs/etc/diffrank"
for m in diffrank-embed-v3 diffrank-embed-v2 diffrank-rerank-v2; do
  cp -r "$ROOT/models/$m" "$rootfs/usr/local/share/diffrank/models/"
done
chmod -R a+rX,go-w "$rootfs/usr/local/share/diffrank"  # a checkout's umask may be 077
echo "diffrank:x:10001:10001:diffrank:/var/lib/diffrank:/usr/sbin/nologin" >> "$rootfs/etc/passwd"
echo "diffrank:x:10001:" >> "$rootfs/etc/group"
chown 10001:10001 "$rootfs/var/lib/diffrank"
chroot "$rootfs" /usr/local/bin/diffrank-server --help > /dev/null  # every library resolves

# 3. OCI image layout.
layout=$OUT/oci
umoci init --layout "$layout"
umoci new --image "$layout:$TAG"
umoci unpack --image "$layout:$TAG" "$OUT/bundle" > /dev/null
rm -rf "$OUT/bundle/rootfs"
mv "$rootfs" "$OUT/bundle/rootfs"
umoci repack --image "$layout:$TAG" "$OUT/bundle"
umoci config --image "$layout:$TAG" --config.user 10001:10001 \
  --config.entrypoint /usr/local/bin/diffrank-server \
  --config.cmd --config --config.cmd /etc/diffrank/config.json \
  --config.exposedports 50051/tcp --config.exposedports 9464/tcp \
  --config.workingdir /var/lib/diffrank --config.volume /var/lib/diffrank \
  --config.env OMP_NUM_THREADS=2 \
  --config.label org.opencontainers.image.title=diffrank-server \
  --config.label "org.opencontainers.image.source=https://github.com/diffrank/diffrank"
mv "$OUT/bundle/rootfs" "$rootfs"
rm -rf "$OUT/bundle"
umoci stat --image "$layout:$TAG" | tail -n 3
du -sh "$layout" "$rootfs"

# 4. Proof: start the server from the root file system and ask grpc.health.v1.
"$ROOT/deploy/images/check-rootfs.sh" "$rootfs"
