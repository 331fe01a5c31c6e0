#!/usr/bin/env bash
# Builds raftnet's two images without Docker: a root file system folder per image (the release
# binaries, the C libraries `ldd` lists, passwd/group with the non-root user 65532), packed into
# an OCI layout with umoci and copied into a Docker archive with skopeo. Same names and tags as
# the Dockerfile:
#
#   raftnet/node:VERSION      raftnet-node (entrypoint) and raftnet (the client)
#   raftnet/operator:VERSION  raftnet-operator
#
#   images/build.sh [--out DIR] [--skip-build]
#
# Prints the archive paths; load them with `docker load -i`, `kind load image-archive` or
# `ctr -n k8s.io images import`. Env: CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

OUT=""
BUILD=1
while (($#)); do
  case "$1" in
    --out) OUT="$2"; shift 2 ;;
    --skip-build) BUILD=0; shift ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *) echo "images/build.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done

log() { echo "images: $*" >&2; }

need=()
command -v umoci >/dev/null || need+=(umoci)
command -v skopeo >/dev/null || need+=(skopeo)
if ((${#need[@]})); then
  log "installing ${need[*]}"
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi

VERSION=$(cargo metadata --no-deps --format-version 1 |
  python3 -c 'import json,sys; print(next(p["version"] for p in json.load(sys.stdin)["packages"] if p["name"]=="raftnet-node"))')
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
OUT=${OUT:-$TARGET/images}
BIN=$TARGET/release

if ((BUILD)); then
  log "building release binaries"
  cargo build --release --locked -p raftnet-node -p raftnet-operator --bins >&2
fi

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$OUT"

# A root file system holding BINARIES under /usr/local/bin and what they link against.
rootfs() {
  local dir=$1; shift
  mkdir -p "$dir"/{usr/local/bin,etc,tmp,var/lib/raftnet}
  chmod 1777 "$dir/tmp"
  for b in "$@"; do
    [[ -x "$BIN/$b" ]] || { log "missing $BIN/$b (run without --skip-build)"; exit 1; }
    install -m 0755 "$BIN/$b" "$dir/usr/local/bin/$b"
    # Debug line tables are for local profiling; symbols stay for readable backtraces.
    strip --strip-debug "$dir/usr/local/bin/$b"
    # Shared libraries at the paths the loader looks them up by (the loader itself included).
    ldd "$BIN/$b" | grep -o '/[^ ]*' | while read -r lib; do
      mkdir -p "$dir$(dirname "$lib")"
      cp -L "$lib" "$dir$lib"
    done
  done
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n' >"$dir/etc/passwd"
  printf 'root:x:0:\nnonroot:x:65532:\n' >"$dir/etc/group"
  # Names resolve through files then DNS (cluster DNS in a pod).
  printf 'hosts: files dns\n' >"$dir/etc/nsswitch.conf"
  chown -R 65532:65532 "$dir/var/lib/raftnet"
}

# Packs ROOTFS into NAME:VERSION with ENTRYPOINT, as a Docker archive in $OUT.
pack() {
  local name=$1 rootfs=$2 entrypoint=$3
  local layout=$WORK/oci-${name//\//-} bundle=$WORK/bundle-${name//\//-}
  umoci init --layout "$layout"
  umoci new --image "$layout:$VERSION"
  umoci unpack --image "$layout:$VERSION" "$bundle" >/dev/null
  cp -a "$rootfs"/. "$bundle/rootfs/"
  umoci repack --image "$layout:$VERSION" "$bundle"
  umoci config --image "$layout:$VERSION" \
    --config.user 65532:65532 \
    --config.entrypoint "$entrypoint" \
    --config.env PATH=/usr/local/bin:/usr/bin:/bin \
    --config.workingdir / \
    --config.label "org.opencontainers.image.title=$name" \
    --config.label "org.opencontainers.image.version=$VERSION" \
    --architecture amd64 --os linux
  umoci gc --layout "$layout"
  local archive=$OUT/${name//\//-}-$VERSION.tar
  rm -f "$archive"
  skopeo copy --quiet "oci:$layout:$VERSION" "docker-archive:$archive:$name:$VERSION" >&2
  log "$name:$VERSION $(du -h "$archive" | cut -f1) (archive), $(du -sh "$rootfs" | cut -f1) unpacked"
  echo "$archive"
}

rootfs "$WORK/node" raftnet-node raftnet
pack raftnet/node "$WORK/node" raftnet-node
rootfs "$WORK/operator" raftnet-operator
pack raftnet/operator "$WORK/operator" raftnet-operator
