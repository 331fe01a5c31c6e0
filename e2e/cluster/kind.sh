#!/usr/bin/env bash
# A kind cluster for the e2e suite, on machines with Docker: creates the cluster, builds both
# images with the Dockerfile, loads them into the cluster's node and installs the chart.
#
#   e2e/cluster/kind.sh up      # then: export KUBECONFIG=... (printed) and
#                               #   cargo nextest run -p raftnet-e2e --run-ignored only --no-capture
#   e2e/cluster/kind.sh down
#
# Needs docker, kind, kubectl and helm on PATH. Env: KIND_CLUSTER (default raftnet),
# KIND_NODE_IMAGE (a kindest/node image, for another Kubernetes version).
set -euo pipefail
cd "$(dirname "$0")/../.."

CLUSTER=${KIND_CLUSTER:-raftnet}
VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
KUBECONFIG_FILE=${TMPDIR:-/tmp}/kind-$CLUSTER.kubeconfig

for tool in docker kind kubectl helm; do
  command -v "$tool" >/dev/null || { echo "kind.sh: $tool is not on PATH" >&2; exit 1; }
done

case "${1:-}" in
  up)
    if ! kind get clusters | grep -qx "$CLUSTER"; then
      kind create cluster --name "$CLUSTER" ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s >&2
    fi
    kind get kubeconfig --name "$CLUSTER" >"$KUBECONFIG_FILE"
    export KUBECONFIG=$KUBECONFIG_FILE
    for target in node operator; do
      docker build --target "$target" -t "raftnet/$target:$VERSION" . >&2
      kind load docker-image --name "$CLUSTER" "raftnet/$target:$VERSION" >&2
    done
    helm upgrade --install raftnet-operator charts/raftnet-operator \
      --namespace raftnet-system --create-namespace --wait >&2
    echo "export KUBECONFIG=$KUBECONFIG_FILE"
    ;;
  down)
    kind delete cluster --name "$CLUSTER" >&2
    rm -f "$KUBECONFIG_FILE"
    ;;
  *)
    sed -n '2,11p' "$0" >&2
    exit 2
    ;;
esac
