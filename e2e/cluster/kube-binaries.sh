#!/usr/bin/env bash
# Builds the Kubernetes 1.20 binaries from Debian bookworm's `kubernetes` source package, once,
# into a cache outside the repository keyed by version, and prints the cache's bin directory.
# Later runs find the cache and return at once. Facts behind each step: local-kubernetes.md.
#
#   e2e/cluster/kube-binaries.sh [--only-apiserver]
#
# Env: RAFTNET_CACHE (default /var/cache/raftnet).
set -euo pipefail

VERSION=v1.20.2
CACHE="${RAFTNET_CACHE:-/var/cache/raftnet}/kubernetes/$VERSION"
BIN="$CACHE/bin"
WHAT=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy)

have_all() {
  for b in "${WHAT[@]}"; do [[ -x "$BIN/$b" ]] || return 1; done
}
if have_all; then echo "$BIN"; exit 0; fi

log() { echo "kube-binaries: $*" >&2; }
export DEBIAN_FRONTEND=noninteractive

# Build tools (Go 1.19 is enough for 1.20) and reflect2 1.0.2 (1.0.1 crashes under Go >= 1.18).
need=(golang-go rsync gcc libc6-dev bc golang-github-modern-go-reflect2-dev dpkg-dev)
missing=()
for p in "${need[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  apt-get update -qq >&2
  apt-get install -y -qq "${missing[@]}" >&2
fi

# Debian's sources use deb822; a one-line deb-src would clash with its Signed-By.
SRC_LIST=/etc/apt/sources.list.d/raftnet-src.sources
if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/; then
  log "adding a deb-src entry ($SRC_LIST)"
  cat >"$SRC_LIST" <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt-get update -qq >&2
fi

WORK="$CACHE.build"
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
log "downloading Debian's kubernetes source package"
apt-get source --download-only kubernetes >&2
tarball=$(ls kubernetes_*.orig.tar.gz | head -n1)
mkdir src
tar -xzf "$tarball" -C src --strip-components=1
cd src

log "replacing vendored reflect2 1.0.1 with Debian's 1.0.2"
R2=/usr/share/gocode/src/github.com/modern-go/reflect2
V2=vendor/github.com/modern-go/reflect2
# 1.0.1 has files 1.0.2 dropped (go_above_17.go, ...): replace the sources, not overlay them.
rm -f "$V2"/*.go "$V2"/*.s
cp "$R2"/*.go "$V2"/
find "$V2" -name '*_test.go' -delete
if compgen -G "$R2/*.s" >/dev/null; then cp "$R2"/*.s "$V2"/; fi
sed -i 's#\(github.com/modern-go/reflect2 => github.com/modern-go/reflect2\) v1.0.1#\1 v1.0.2#' go.mod
sed -i 's#\(modern-go/reflect2\) v1.0.1#\1 v1.0.2#g' vendor/modules.txt

log "building ${WHAT[*]} (about 7 minutes on 2 cores)"
targets=()
for b in "${WHAT[@]}"; do targets+=("cmd/$b"); done
export KUBE_GIT_VERSION=$VERSION KUBE_GIT_TREE_STATE=clean \
  KUBE_GIT_COMMIT=0000000000000000000000000000000000000000 GOFLAGS=-mod=vendor
make WHAT="${targets[*]}" KUBE_BUILD_PLATFORMS=linux/amd64 >&2

mkdir -p "$BIN.tmp"
for b in "${WHAT[@]}"; do cp "_output/local/bin/linux/amd64/$b" "$BIN.tmp/"; done
rm -rf "$BIN" && mv "$BIN.tmp" "$BIN"
cd / && rm -rf "$WORK"
log "cached in $BIN"
echo "$BIN"
