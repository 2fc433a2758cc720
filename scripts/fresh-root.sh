#!/usr/bin/env bash
# fresh-root.sh: proves the README's test command from nothing. Builds a
# minimal Debian 12 root (mmdebstrap, variant minbase: no compiler, Python,
# Node, Go, git or TLS roots), copies the checkout (what a clean clone has:
# tracked files plus untracked ones git does not ignore) and ../shared into
# it, and runs `bash scripts/test.sh` there, in a chroot with /proc, /sys and
# /dev mounted. Whatever the test command forgets to install fails here.
#
# Usage (root): scripts/fresh-root.sh [--unit] [--keep] [-- ARGS for test.sh]
#   --unit  install + configure + build + unit tests only (test.sh --unit)
#   --keep  leave the root in place (default: removed after a green run)
# DIFFRANK_FRESH_ROOT: where the root is built (default
# /var/tmp/diffrank-fresh-root). The log is $DIFFRANK_FRESH_ROOT.log.
# From the host it carries only what a fresh machine of this workplace has
# beside Debian: its extra CA certificates (/usr/local/share/ca-certificates,
# the egress proxy's) and the pip settings in the environment (PIP_CERT...).
# Last result: docs/fresh-root.md.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
unit=()
keep=0
while (($#)); do
  case "$1" in
    --unit) unit=(--unit) ;;
    --keep) keep=1 ;;
    --) shift; break ;;
    *) echo "usage: $0 [--unit] [--keep] [-- test.sh args]" >&2; exit 2 ;;
  esac
  shift
done
[ "$(id -u)" = 0 ] || { echo "fresh-root: needs root (mmdebstrap, chroot)" >&2; exit 2; }
command -v mmdebstrap >/dev/null || { echo "fresh-root: needs mmdebstrap (scripts/install-deps.sh)" >&2; exit 2; }

out="${DIFFRANK_FRESH_ROOT:-/var/tmp/diffrank-fresh-root}"
log="$out.log"
mounts=(dev/pts dev/shm dev proc sys)
unmount() {
  for m in "${mounts[@]}"; do
    if mountpoint -q "$out/$m" 2>/dev/null; then umount -l "$out/$m"; fi
  done
}
trap unmount EXIT
unmount
rm -rf --one-file-system "$out"

start=$(date +%s)
echo "fresh-root: debootstrapping a minimal Debian 12 into $out" | tee "$log"
mmdebstrap --variant=minbase --include=ca-certificates \
  bookworm "$out" \
  "deb http://deb.debian.org/debian bookworm main" \
  "deb http://deb.debian.org/debian bookworm-updates main" \
  "deb http://deb.debian.org/debian-security bookworm-security main" >> "$log" 2>&1

# The host's extra CA roots (a TLS-inspecting egress proxy) and name servers.
if compgen -G "/usr/local/share/ca-certificates/*.crt" > /dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$out/usr/local/share/ca-certificates/"
  chroot "$out" update-ca-certificates >> "$log" 2>&1
fi
cp -L /etc/resolv.conf "$out/etc/resolv.conf"

# A clean clone's files, and the shared data beside it (as CI has it).
mkdir -p "$out/work/main"
(cd "$root" && git ls-files -z -co --exclude-standard |
  tar --null -T - -cf - 2>/dev/null) | tar -xf - -C "$out/work/main"
git -C "$root" rev-parse HEAD > "$out/work/main/.fresh-root-commit"
if [ -d "$root/../shared" ]; then
  cp -a "$root/../shared" "$out/work/shared"
fi

mount --bind /dev "$out/dev"
mount -t devpts devpts "$out/dev/pts" -o newinstance,ptmxmode=0666 || true
mount -t tmpfs tmpfs "$out/dev/shm"
mount -t proc proc "$out/proc"
mount -t sysfs sysfs "$out/sys"

envs=(HOME=/root PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
      LANG=C.UTF-8 TERM=dumb)
for v in PIP_CERT PIP_DEFAULT_TIMEOUT PIP_DISABLE_PIP_VERSION_CHECK DIFFRANK_FUZZ_SECONDS; do
  [ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
echo "fresh-root: running scripts/test.sh ${unit[*]} $* inside (log: $log)" | tee -a "$log"
set +e
chroot "$out" /usr/bin/env -i "${envs[@]}" \
  bash -c 'cd /work/main && bash scripts/test.sh "$@"' test.sh "${unit[@]}" "$@" >> "$log" 2>&1
rc=$?
set -e
mins=$(( ($(date +%s) - start) / 60 ))
if ((rc == 0)); then
  echo "fresh-root: PASSED in ${mins} min ($(tail -n 20 "$log" | grep -E 'tests passed' | tail -n1))" | tee -a "$log"
  if ((!keep)); then unmount; rm -rf --one-file-system "$out"; fi
else
  echo "fresh-root: FAILED (exit $rc) after ${mins} min; the root stays in $out; see $log" | tee -a "$log"
  tail -n 40 "$log" >&2
fi
exit $rc
