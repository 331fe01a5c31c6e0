#!/usr/bin/env bash
# The e2e suite on this machine, without Docker: builds the images (images/build.sh), brings up
# a single-node Kubernetes 1.20 cluster (e2e/cluster/local.sh), loads the images into it, runs
# the suite (the seed lab with kubectl, the operator's restart, a node pod's recreation,
# evictions), and always tears the cluster down. On a machine with Docker use
# e2e/cluster/kind.sh instead, then the same cargo command with its KUBECONFIG.
#
#   e2e/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "e2e: $*" >&2; }
t0=$SECONDS

mapfile -t images < <(images/build.sh)
log "images built ($((SECONDS - t0)) s): ${images[*]}"

trap 'e2e/cluster/local.sh down >&2 || true' EXIT
up=$(e2e/cluster/local.sh up)
eval "$(grep '^export KUBECONFIG=' <<<"$up")"
log "cluster up ($((SECONDS - t0)) s), KUBECONFIG=$KUBECONFIG"
e2e/cluster/local.sh load "${images[@]}"

if ! cargo nextest run -p raftnet-e2e --run-ignored only --no-capture; then
  e2e/cluster/local.sh logs >&2 || true
  exit 1
fi
log "passed in $((SECONDS - t0)) s"
