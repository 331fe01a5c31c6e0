#!/usr/bin/env bash
# A real single-node Kubernetes v1.20.2 cluster on this machine, without Docker: every daemon runs
# on the host inside one private network namespace, is started and stopped by its recorded PID,
# and `down` leaves nothing behind. Facts behind each step: the team's shared docs/local-kubernetes.md.
#
#   e2e/cluster/local.sh up                 bring the cluster up; prints `export KUBECONFIG=...` last
#   e2e/cluster/local.sh down               stop and remove everything (idempotent)
#   e2e/cluster/local.sh load FILE.tar...   import docker-archive images into containerd (k8s.io)
#   e2e/cluster/local.sh exec -- CMD...     run CMD in the cluster's network, resolving like a pod
#   e2e/cluster/local.sh logs               print the tails of every daemon's log
#   e2e/cluster/local.sh status             say whether the cluster is up, with the PIDs
#
# Progress and errors go to stderr; stdout carries only what a caller uses (`up`'s export line,
# `logs`, `status`). Needs root.
#
# Env: RAFTNET_E2E_DIR (state, default /var/lib/raftnet-e2e), RAFTNET_CACHE (built binaries and
# images, default /var/cache/raftnet), RAFTNET_E2E_LOG_LINES (lines per log in `logs`, default 60).
#
# Layout: node IP 10.250.0.2 on a veth in network namespace raftnet-e2e (host side 10.250.0.1);
# the API server at https://10.250.0.2:6443; pods 10.244.0.0/24; services 10.96.0.0/16; DNS is
# dnsmasq at the node IP, fed by the cluster-dns watcher (e2e/src/bin/cluster-dns.rs).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
HERE=$REPO/e2e/cluster
STATE=${RAFTNET_E2E_DIR:-/var/lib/raftnet-e2e}
CACHE=${RAFTNET_CACHE:-/var/cache/raftnet}

NETNS=raftnet-e2e
NETNS_PATH=/var/run/netns/$NETNS
VETH_HOST=rne2e-host
VETH_NODE=rne2e-node
HOST_IP=10.250.0.1
NODE_IP=10.250.0.2
NODE=raftnet-e2e
POD_CIDR=10.244.0.0/24
SVC_CIDR=10.96.0.0/16
SVC_IP=10.96.0.1
DOMAIN=cluster.local
PAUSE_IMAGE=registry.k8s.io/pause:3.6
VOLUMES=64 # pre-made PersistentVolumes behind the default StorageClass

PIDS=$STATE/pids
LOGS=$STATE/logs
PKI=$STATE/pki
HOSTREC=$STATE/host # what `up` found on the host, so `down` removes only what the cluster made
SOCK=$STATE/containerd/containerd.sock
ADMIN_KUBECONFIG=$STATE/admin.kubeconfig
DNS_DIR=$STATE/dns

# The daemons, in start order (`teardown` stops them in its own order).
DAEMONS=(etcd containerd dnsmasq kube-apiserver kube-controller-manager kube-scheduler kubelet
  kube-proxy cluster-dns)

# Paths kubelet 1.20, containerd 1.6, CNI, iptables and util-linux's mount write whatever their
# flags say.
FIXED_HOST_PATHS=(/var/log/pods /var/log/containers /var/lib/kubelet/device-plugins
  /var/lib/cni/results /run/containerd/s /run/containerd/runc /run/xtables.lock /run/mount)

say() { echo "local.sh: $*" >&2; }
die() {
  say "error: $*"
  exit 1
}

need_root() { ((EUID == 0)) || die "must run as root (network namespaces, mounts, cgroups)"; }

# ---------------------------------------------------------------------------------------------
# Processes: started detached with PID and start time recorded; a PID counts as ours only while
# /proc/PID still shows the start time recorded at spawn (PIDs get reused).

# Prints "STATE STARTTIME" of a process (fields 3 and 22 of /proc/PID/stat).
proc_stat() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) } # the command name may hold spaces and parentheses
  local -a f
  read -ra f <<<"$stat"
  echo "${f[0]} ${f[19]}"
}

pid_of() { cat "$PIDS/$1.pid" 2>/dev/null; }

# True while the daemon NAME this script started is running (a zombie counts as gone).
alive() {
  local pid start st
  pid=$(pid_of "$1") || return 1
  start=$(cat "$PIDS/$1.start" 2>/dev/null) || return 1
  st=$(proc_stat "$pid") || return 1
  [[ ${st#* } == "$start" && ${st%% *} != Z ]]
}

# Closes every descriptor above 2, so a daemon holds no pipe of whoever ran `up` (a caller
# reading our output to its end would otherwise wait for the daemons' exit).
close_fds() {
  local fd
  for fd in "/proc/$BASHPID/fd"/*; do
    fd=${fd##*/}
    if ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null || true; fi
  done
}

# spawn NAME ns|host CMD...: starts CMD detached (own session, stdin from /dev/null, output to
# logs/NAME.log), in the cluster's network namespace or on the host, and records its PID.
# nsenter (not `ip netns exec`, which remounts /sys and hides the cgroup mounts) and setsid
# exec the command in place, so the recorded PID is the daemon's own.
spawn() {
  local name=$1 where=$2
  shift 2
  local -a enter=()
  [[ $where == ns ]] && enter=(nsenter "--net=$NETNS_PATH" --)
  (
    exec </dev/null >>"$LOGS/$name.log" 2>&1
    close_fds
    exec setsid "${enter[@]}" "$@"
  ) &
  local pid=$!
  echo "$pid" >"$PIDS/$name.pid"
  local st
  st=$(proc_stat "$pid") || die "$name exited at once; see $LOGS/$name.log"
  echo "${st#* }" >"$PIDS/$name.start"
  STARTED+=("$name")
}
STARTED=()

# stop NAME...: SIGTERM to those alive, up to 10 s for them to exit, then SIGKILL.
stop() {
  local name i left
  for name; do
    if alive "$name"; then kill -TERM "$(pid_of "$name")" 2>/dev/null || true; fi
  done
  for ((i = 0; i < 100; i++)); do
    left=0
    for name; do if alive "$name"; then left=1; fi; done
    ((left)) || return 0
    sleep 0.1
  done
  for name; do
    if alive "$name"; then
      say "$name (pid $(pid_of "$name")) did not stop within 10 s; killing it"
      kill -KILL "$(pid_of "$name")" 2>/dev/null || true
    fi
  done
  for ((i = 0; i < 20; i++)); do
    left=0
    for name; do if alive "$name"; then left=1; fi; done
    ((left)) || return 0
    sleep 0.1
  done
}

# Fails with a clear message when a daemon started by this `up` has died.
check_daemons() {
  local name
  for name in "${STARTED[@]}"; do alive "$name" || die "$name exited; see $LOGS/$name.log"; done
}

# wait_until DESCRIPTION SECONDS CMD...: polls CMD every 0.5 s for at most SECONDS (bounded in
# both tries and time), failing early when a daemon died.
wait_until() {
  local desc=$1 secs=$2 i
  shift 2
  local deadline=$((SECONDS + secs))
  for ((i = 0; i < secs * 2 && SECONDS <= deadline; i++)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    check_daemons
    sleep 0.5
  done
  die "timed out after ${secs} s waiting for $desc"
}

# ---------------------------------------------------------------------------------------------
# Packages and artifacts.

# ensure_packages PKG...: installs the Debian packages that are missing (only those).
ensure_packages() {
  local p missing=()
  for p; do
    [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] ||
      missing+=("$p")
  done
  ((${#missing[@]})) || return 0
  say "installing ${missing[*]}"
  # Packaged services (containerd, etcd) must not start on the host: only our copies run.
  local policy=/usr/sbin/policy-rc.d own_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  local rc=0
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"; } >&2 || rc=$?
  ((own_policy)) && rm -f "$policy"
  ((rc == 0)) || die "apt-get install ${missing[*]} failed"
}

install_packages() {
  ensure_packages etcd-server containerd runc containernetworking-plugins iptables conntrack \
    dnsmasq-base umoci skopeo gcc libc6-dev openssl iproute2 util-linux procps
  # Any kubectl will do (1.32 works against 1.20); Debian's is 1.20.
  command -v kubectl >/dev/null 2>&1 || ensure_packages kubernetes-client
}

# Builds the cluster-dns watcher (debug profile) and prints the binary's path.
build_cluster_dns() {
  command -v cargo >/dev/null 2>&1 || die "cargo not found (needed to build cluster-dns)"
  say "building cluster-dns"
  (cd "$REPO" && cargo build -p raftnet-e2e --bin cluster-dns >&2) ||
    die "cargo build -p raftnet-e2e --bin cluster-dns failed"
  local target
  target=$(cd "$REPO" && cargo metadata --format-version 1 --no-deps 2>/dev/null |
    grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4) || true
  target=${target:-${CARGO_TARGET_DIR:-$REPO/target}}
  [[ -x $target/debug/cluster-dns ]] || die "no $target/debug/cluster-dns after the build"
  echo "$target/debug/cluster-dns"
}

# Builds the pause image from pause.c once per version of the source, caches the docker-archive
# tarball and prints its path.
pause_image_tar() {
  local sum tar
  sum=$(sha256sum "$HERE/pause.c" | cut -c1-16)
  tar=$CACHE/images/pause-3.6-$sum.tar
  if [[ -s $tar ]]; then
    echo "$tar"
    return
  fi
  say "building $PAUSE_IMAGE from pause.c"
  local tmp blobcache
  tmp=$(mktemp -d)
  # skopeo (as root) keeps a blob-info cache in /var/lib/containers whatever its flags say.
  blobcache=$(topmost_missing /var/lib/containers/cache)
  (
    set -e
    cd "$tmp"
    gcc -static -O2 -s -o pause "$HERE/pause.c"
    umoci init --layout oci
    umoci new --image oci:3.6
    umoci insert --image oci:3.6 pause /pause
    umoci config --image oci:3.6 --config.entrypoint /pause --config.user 65535:65535
    mkdir -p "$CACHE/images"
    skopeo --insecure-policy copy -q oci:oci:3.6 "docker-archive:$tar.tmp:$PAUSE_IMAGE"
    mv "$tar.tmp" "$tar"
  ) >&2 || {
    rm -rf "$tmp" "$tar.tmp"
    [[ -z $blobcache ]] || rm -rf "$blobcache"
    die "building the pause image failed"
  }
  rm -rf "$tmp"
  [[ -z $blobcache ]] || rm -rf "$blobcache"
  echo "$tar"
}

import_images() {
  local f
  for f; do
    [[ -f $f ]] || die "no such file: $f"
    ctr --address "$SOCK" -n k8s.io images import "$f" >&2 || die "importing $f failed"
  done
}

# ---------------------------------------------------------------------------------------------
# Configuration.

# Writes the PKI: a CA, the API server's and kubelet's serving certs, one client cert per
# component, and the service-account key pair. EC keys: fast to make, accepted by all parts.
make_pki() {
  mkdir -p "$PKI"
  cat >"$PKI/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign, digitalSignature
subjectKeyIdentifier = hash
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
authorityKeyIdentifier = keyid
subjectAltName = $ENV::SANS
EOF
  local cnf=$PKI/openssl.cnf
  export SANS=DNS:unused # the config file refers to it whichever section is used
  ec_key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
  ec_key "$PKI/ca.key"
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=raftnet-e2e-ca" -days 30 \
    -config "$cnf" -extensions ca -out "$PKI/ca.crt" 2>/dev/null
  # cert NAME SUBJECT client|server [SANS]
  cert() {
    ec_key "$PKI/$1.key"
    SANS=${4:-DNS:unused} openssl req -new -key "$PKI/$1.key" -subj "$2" -config "$cnf" 2>/dev/null |
      SANS=${4:-DNS:unused} openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" \
        -CAcreateserial -days 30 -extfile "$cnf" -extensions "$3" -out "$PKI/$1.crt" 2>/dev/null
  }
  cert apiserver "/CN=kube-apiserver" server \
    "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.$DOMAIN,DNS:localhost,IP:127.0.0.1,IP:$SVC_IP,IP:$NODE_IP"
  cert kubelet-serving "/CN=$NODE" server "DNS:$NODE,IP:$NODE_IP"
  cert admin "/O=system:masters/CN=raftnet-e2e-admin" client
  cert controller-manager "/CN=system:kube-controller-manager" client
  cert scheduler "/CN=system:kube-scheduler" client
  cert node "/O=system:nodes/CN=system:node:$NODE" client
  cert kube-proxy "/CN=system:kube-proxy" client
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  chmod 600 "$PKI"/*.key
}

# kubeconfig NAME: a self-contained kubeconfig for client cert NAME at $STATE/NAME.kubeconfig.
kubeconfig() {
  cat >"$STATE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: $NODE
  cluster:
    server: https://$NODE_IP:6443
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$1.crt")
    client-key-data: $(base64 -w0 "$PKI/$1.key")
contexts:
- name: $NODE
  context:
    cluster: $NODE
    user: $1
current-context: $NODE
EOF
  chmod 600 "$STATE/$1.kubeconfig"
}

write_configs() {
  mkdir -p "$STATE/containerd" "$STATE/cni/net.d" "$STATE/kubelet" "$DNS_DIR"
  cat >"$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$STATE/containerd/state"
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$STATE/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without it runc fails to write /proc/self/oom_score_adj (no CAP_SYS_RESOURCE here).
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$STATE/cni/net.d"
EOF
  cat >"$STATE/cni/net.d/10-raftnet-e2e.conflist" <<EOF
{
  "cniVersion": "0.4.0",
  "name": "raftnet-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$POD_CIDR"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$STATE/cni/ipam"
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
  # Pods get the cluster DNS (clusterDNS); this is the "host" resolv.conf kubelet merges in.
  echo "nameserver $NODE_IP" >"$DNS_DIR/kubelet-resolv.conf"
  # What `exec` mounts over /etc/resolv.conf: the search path a pod in `default` has.
  cat >"$DNS_DIR/resolv.conf" <<EOF
nameserver $NODE_IP
search default.svc.$DOMAIN svc.$DOMAIN $DOMAIN
options ndots:5
EOF
  : >"$DNS_DIR/hosts"
  chmod 755 "$DNS_DIR" && chmod 644 "$DNS_DIR"/*
  cat >"$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$PKI/ca.crt"}
authorization: {mode: Webhook}
tlsCertFile: "$PKI/kubelet-serving.crt"
tlsPrivateKeyFile: "$PKI/kubelet-serving.key"
cgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
failSwapOn: false
clusterDomain: $DOMAIN
clusterDNS: ["$NODE_IP"]
resolvConf: "$DNS_DIR/kubelet-resolv.conf"
healthzBindAddress: 127.0.0.1
# The disk is shared with everything else on the machine: evict only when it is really full.
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
  cat >"$STATE/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Zeroes leave the kernel's conntrack settings alone (no CAP_SYS_RESOURCE, shared host).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
}

# Storage as kind has it: a default StorageClass `standard`. Nothing provisions dynamically here
# (the in-tree hostPath provisioner makes root-only directories under /tmp), so the class is
# backed by a pool of pre-made hostPath PersistentVolumes in the state dir, world-writable for
# pods running as non-root, bound by the PV controller. A released volume is not reused (Retain:
# nothing could scrub it); the pool is sized for a test run and is gone with `down`.
make_storage() {
  local i name
  {
    cat <<EOF
apiVersion: storage.k8s.io/v1
kind: StorageClass
metadata:
  name: standard
  annotations: {storageclass.kubernetes.io/is-default-class: "true"}
provisioner: kubernetes.io/no-provisioner
reclaimPolicy: Retain
volumeBindingMode: Immediate
EOF
    for ((i = 0; i < VOLUMES; i++)); do
      name=$(printf 'raftnet-e2e-pv-%02d' "$i")
      mkdir -p "$STATE/volumes/$name"
      chmod 777 "$STATE/volumes/$name"
      cat <<EOF
---
apiVersion: v1
kind: PersistentVolume
metadata: {name: $name}
spec:
  storageClassName: standard
  capacity: {storage: 100Gi}
  accessModes: [ReadWriteOnce]
  persistentVolumeReclaimPolicy: Retain
  hostPath: {path: "$STATE/volumes/$name"}
EOF
    done
  } | kubectl_admin create -f - >/dev/null || die "creating the StorageClass and volumes failed"
}

# ---------------------------------------------------------------------------------------------
# Host bookkeeping: what existed before `up`, so `down` removes exactly what the cluster made.

# Prints the topmost missing ancestor of PATH (PATH itself if only it is missing), or nothing.
topmost_missing() {
  local p=$1 top=
  while [[ $p != / && ! -e $p && ! -L $p ]]; do
    top=$p
    p=$(dirname "$p")
  done
  echo "$top"
}

record_host() {
  mkdir -p "$HOSTREC"
  local p m
  : >"$HOSTREC/paths"
  for p in "${FIXED_HOST_PATHS[@]}"; do
    m=$(topmost_missing "$p")
    [[ -n $m ]] && echo "$m" >>"$HOSTREC/paths"
  done
  sort -u -o "$HOSTREC/paths" "$HOSTREC/paths"
  # containerd makes /sys/fs/cgroup/<controller>/k8s.io; note the ones already there.
  : >"$HOSTREC/cgroups-before"
  for p in /sys/fs/cgroup/*/k8s.io; do [[ -d $p ]] && echo "$p" >>"$HOSTREC/cgroups-before"; done
  find /run/netns -mindepth 1 -maxdepth 1 >"$HOSTREC/netns-before" 2>/dev/null || true
  # `ip netns add` makes /run/netns a bind mount (and the directory) if it is not one yet.
  [[ -e /run/netns ]] || echo created >"$HOSTREC/run-netns-dir"
  mountpoint -q /run/netns 2>/dev/null || echo mounted >"$HOSTREC/run-netns-mount"
  return 0
}

# The k8s.io cgroup directories containerd made for this cluster (none without the record).
our_cgroups() {
  [[ -f $HOSTREC/cgroups-before ]] || return 0
  local p
  for p in /sys/fs/cgroup/*/k8s.io; do
    [[ -d $p ]] || continue
    grep -qxF "$p" "$HOSTREC/cgroups-before" 2>/dev/null || echo "$p"
  done
}

# The /run/netns/cni-* namespaces containerd made for this cluster's pods (none without the
# record).
our_pod_netns() {
  [[ -f $HOSTREC/netns-before ]] || return 0
  local p
  for p in /run/netns/cni-*; do
    [[ -e $p ]] || continue
    grep -qxF "$p" "$HOSTREC/netns-before" 2>/dev/null || echo "$p"
  done
}

# Mount points under the state dir, our network namespace, and our pods' namespaces, deepest
# first (a path mounted twice is listed twice).
our_mounts() {
  awk -v state="$STATE" -v ns="/run/netns/$NETNS" -v pods="$(our_pod_netns | tr '\n' ' ')" '
    BEGIN { n = split(pods, list, " "); for (i = 1; i <= n; i++) pod[list[i]] = 1 }
    { mp = $5; gsub(/\\040/, " ", mp) }
    mp == state || index(mp, state "/") == 1 || mp == ns || (mp in pod) { print mp }
  ' /proc/self/mountinfo
}

our_mounts_deepest_first() { our_mounts | awk '{ print length($0) "\t" $0 }' | sort -rn | cut -f2-; }

# Processes of this cluster outside the recorded daemons: containerd shims (their command line
# names our socket) and whatever is left in our cgroups. Zombies are left out: they are dead
# already and go once their parent (init) reaps them.
stray_pids() {
  local f pid st cg
  while IFS= read -r f; do
    pid=${f#/proc/}
    pid=${pid%/cmdline}
    [[ $(cat "/proc/$pid/comm") == containerd-shim* ]] && echo "$pid"
  done < <(grep -lasF -- "$SOCK" /proc/[0-9]*/cmdline)
  for cg in $(our_cgroups); do
    while IFS= read -r pid; do
      st=$(proc_stat "$pid") && [[ ${st%% *} != Z ]] && echo "$pid"
    done < <(find "$cg" -name cgroup.procs -exec cat {} +)
  done
  return 0
} 2>/dev/null

# ---------------------------------------------------------------------------------------------
# up

# Prefix that runs a command in the cluster's network namespace and in a private mount namespace
# whose /etc/resolv.conf points at the cluster DNS with a pod's search path; both namespaces end
# with the command (sh execs it).
# shellcheck disable=SC2016 # $0 and $@ are sh's
IN_CLUSTER=(nsenter "--net=$NETNS_PATH" -- unshare --mount --propagation private --
  sh -c 'mount --bind "$0" /etc/resolv.conf && exec "$@"' "$DNS_DIR/resolv.conf")

setup_network() {
  ip netns add "$NETNS"
  ip link add "$VETH_HOST" type veth peer name "$VETH_NODE"
  ip link set "$VETH_NODE" netns "$NETNS"
  ip addr add "$HOST_IP/30" dev "$VETH_HOST"
  ip link set "$VETH_HOST" up
  ip -n "$NETNS" addr add "$NODE_IP/30" dev "$VETH_NODE"
  ip -n "$NETNS" link set "$VETH_NODE" up
  ip -n "$NETNS" link set lo up
  # No default route: nothing in the cluster needs one, and without it the kubelet's probes of
  # cloud metadata addresses fail at once instead of timing out (seconds off the bring-up).
}

# True if any part of a cluster is there: its namespace, a daemon, or records of an unfinished
# teardown.
is_up() {
  [[ -e $NETNS_PATH || -d $HOSTREC ]] && return 0
  local n
  for n in "${DAEMONS[@]}"; do alive "$n" && return 0; done
  return 1
}

# kubectl keeps its discovery cache in the state dir, not in ~/.kube.
kubectl_admin() {
  kubectl --kubeconfig "$ADMIN_KUBECONFIG" --cache-dir "$STATE/kubectl-cache" "$@" 2>/dev/null
}

api_ready() { [[ $(kubectl_admin get --raw /readyz) == ok ]]; }
node_ready() {
  [[ $(kubectl_admin get node "$NODE" \
    -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}') == True ]]
}
# The default ServiceAccount with its token: pods can be created in `default` from then on.
default_sa_ready() { [[ -n $(kubectl_admin -n default get sa default -o jsonpath='{.secrets[0].name}') ]]; }
dns_ready() { [[ $("${IN_CLUSTER[@]}" getent hosts "kubernetes.default.svc.$DOMAIN") == "$SVC_IP "* ]]; }
port_open() { nsenter --net="$NETNS_PATH" bash -c ": </dev/tcp/$1/$2"; }
containerd_ready() { ctr --address "$SOCK" version; }

on_up_exit() {
  local rc=$?
  ((rc == 0)) && return 0
  trap - EXIT INT TERM
  say "bring-up failed (exit $rc); the daemons' logs follow, then the teardown"
  print_logs >&2 || true
  teardown || true
  if finish_teardown; then say "torn down"; else say "run '$0 down' to finish the teardown"; fi
  exit "$rc"
}

cmd_up() {
  need_root
  install_packages
  local bin dns_bin pause_tar
  bin=$("$HERE/kube-binaries.sh") || die "kube-binaries.sh failed"
  dns_bin=$(build_cluster_dns)
  pause_tar=$(pause_image_tar)

  mkdir -p "$STATE"
  lock
  if is_up; then
    die "the cluster is already up (or a teardown did not finish): run '$0 down' first"
  fi
  local t0=$SECONDS
  # A fresh state dir, with the previous run's logs kept aside.
  rm -rf "$STATE/logs.prev"
  [[ -d $LOGS ]] && mv "$LOGS" "$STATE/logs.prev"
  remove_state
  mkdir -p "$PIDS" "$LOGS"
  trap on_up_exit EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM

  record_host
  say "network namespace $NETNS, node IP $NODE_IP"
  setup_network
  make_pki
  local c
  for c in admin controller-manager scheduler node kube-proxy; do kubeconfig "$c"; done
  write_configs

  say "starting etcd, containerd, dnsmasq"
  spawn etcd ns etcd --name "$NODE" --data-dir "$STATE/etcd" --logger=zap \
    --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
    --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
    --initial-cluster "$NODE=http://127.0.0.1:2380" --listen-metrics-urls http://127.0.0.1:2381
  spawn containerd ns containerd --config "$STATE/containerd/config.toml"
  # dnsmasq answers from the hosts file cluster-dns writes, and only from it: --local for the
  # cluster domain (else AAAA queries for known names get REFUSED) and for every other domain
  # (NXDOMAIN, as a real upstream would say, instead of REFUSED, which some resolvers treat as
  # a hard failure).
  spawn dnsmasq ns dnsmasq --no-daemon --log-facility=- --no-resolv --no-hosts \
    --addn-hosts="$DNS_DIR/hosts" --listen-address="$NODE_IP" --bind-interfaces \
    --local="/$DOMAIN/" --local=/#/
  wait_until "etcd to listen on 127.0.0.1:2379" 30 port_open 127.0.0.1 2379

  say "starting kube-apiserver"
  spawn kube-apiserver ns "$bin/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
    --bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
    --insecure-port=0 --cert-dir="$PKI/apiserver" \
    --service-cluster-ip-range="$SVC_CIDR" --allow-privileged=true \
    --client-ca-file="$PKI/ca.crt" \
    --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
    --kubelet-client-certificate="$PKI/admin.crt" --kubelet-client-key="$PKI/admin.key" \
    --kubelet-preferred-address-types=InternalIP \
    --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
    --service-account-issuer="https://kubernetes.default.svc.$DOMAIN" \
    --authorization-mode=Node,RBAC
  wait_until "containerd" 30 containerd_ready
  import_images "$pause_tar"
  # The kubelet spends its first ~5 s in cAdvisor probing for a Docker socket: starting it now
  # overlaps that with the API server's start (it retries the API until then).
  say "starting kubelet"
  spawn kubelet ns "$bin/kubelet" --config="$STATE/kubelet-config.yaml" \
    --kubeconfig="$STATE/node.kubeconfig" --container-runtime=remote \
    --container-runtime-endpoint="unix://$SOCK" --node-ip="$NODE_IP" \
    --hostname-override="$NODE" --root-dir="$STATE/kubelet"
  wait_until "the API server to be ready" 60 api_ready

  say "starting controller-manager, scheduler, kube-proxy, cluster-dns"
  spawn kube-controller-manager ns "$bin/kube-controller-manager" \
    --kubeconfig="$STATE/controller-manager.kubeconfig" --bind-address=127.0.0.1 --port=0 \
    --cert-dir="$PKI/controller-manager" \
    --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
    --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
    --use-service-account-credentials=true --leader-elect=false --controllers='*,-nodeipam'
  spawn kube-scheduler ns "$bin/kube-scheduler" --kubeconfig="$STATE/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --port=0 --cert-dir="$PKI/scheduler" --leader-elect=false
  spawn kube-proxy ns "$bin/kube-proxy" --config="$STATE/kube-proxy.yaml"
  # On the host: it reaches the API at the node IP and signals dnsmasq by PID.
  spawn cluster-dns host "$dns_bin" --kubeconfig "$ADMIN_KUBECONFIG" --hosts "$DNS_DIR/hosts" \
    --dnsmasq-pid "$PIDS/dnsmasq.pid" --domain "$DOMAIN"

  make_storage
  wait_until "node $NODE to be Ready" 90 node_ready
  wait_until "the default ServiceAccount in namespace default" 60 default_sa_ready
  wait_until "DNS to answer for kubernetes.default.svc.$DOMAIN" 60 dns_ready
  trap - EXIT INT TERM
  say "up in $((SECONDS - t0)) s (state $STATE)"
  echo "export KUBECONFIG=$ADMIN_KUBECONFIG"
}

# ---------------------------------------------------------------------------------------------
# down

# Removes the state dir's contents except the logs. Refuses while anything is mounted below it.
remove_state() {
  [[ -d $STATE ]] || return 0
  if [[ -n $(our_mounts) ]]; then
    say "not removing $STATE: mounts remain below it"
    return 1
  fi
  find "$STATE" -mindepth 1 -maxdepth 1 ! -name logs ! -name logs.prev ! -name .lock \
    -exec rm -rf {} +
}

# Kills and deletes every container task (pods' sandboxes and containers); their shims exit then.
# `tasks rm` can report "not found" for a task containerd's CRI plugin deleted meanwhile (after
# its sandbox was killed), so it goes by rounds until nothing is listed.
remove_tasks() {
  local i tasks
  for ((i = 0; i < 5; i++)); do
    tasks=$(timeout 20 ctr --address "$SOCK" -n k8s.io tasks ls -q 2>/dev/null) || return 0
    [[ -z $tasks ]] && return 0
    # shellcheck disable=SC2086 # one argument per task id
    timeout 60 ctr --address "$SOCK" -n k8s.io tasks rm -f $tasks >/dev/null 2>&1
  done
  say "containerd still lists tasks: ${tasks//$'\n'/ } (their processes get killed below)"
}

# Best-effort teardown: every step runs even when an earlier one failed.
teardown() {
  # The kubelet first, so it does not restart the containers removed next.
  stop kubelet
  alive containerd && remove_tasks
  stop kube-proxy cluster-dns dnsmasq kube-scheduler kube-controller-manager
  stop kube-apiserver
  stop etcd
  stop containerd

  # Shims exit once their task is deleted; whatever is left of the cluster gets killed.
  local i pids
  for ((i = 0; i < 20; i++)); do
    pids=$(stray_pids | sort -u)
    [[ -z $pids ]] && break
    ((i == 10)) && say "killing leftover processes: ${pids//$'\n'/ }"
    # shellcheck disable=SC2086
    ((i >= 10)) && kill -KILL $pids 2>/dev/null
    sleep 0.2
  done

  # Mounts: kubelet's self-bind of its root dir, secret tmpfs, shm, overlays, pod netns.
  local mp pass
  for ((pass = 0; pass < 3; pass++)); do
    while IFS= read -r mp; do
      [[ -n $mp ]] || continue
      umount "$mp" 2>/dev/null || umount -l "$mp" 2>/dev/null || say "cannot unmount $mp"
    done < <(our_mounts_deepest_first)
    [[ -z $(our_mounts) ]] && break
  done
  local ns
  for ns in $(our_pod_netns); do rm -f "$ns"; done

  # The network namespace (the veth pair goes with it) and /run/netns if `up` made it.
  [[ -e $NETNS_PATH ]] && { ip netns delete "$NETNS" 2>/dev/null || say "cannot delete netns $NETNS"; }
  # The veth pair goes with the namespace, a moment later.
  for ((i = 0; i < 20; i++)); do
    ip link show "$VETH_HOST" >/dev/null 2>&1 || break
    sleep 0.1
  done
  ip link delete "$VETH_HOST" >/dev/null 2>&1
  if [[ -f $HOSTREC/run-netns-mount ]] && mountpoint -q /run/netns 2>/dev/null &&
    [[ -z $(ls -A /run/netns 2>/dev/null) ]]; then
    umount /run/netns 2>/dev/null || umount -l /run/netns
  fi
  if [[ -f $HOSTREC/run-netns-dir ]] && ! mountpoint -q /run/netns 2>/dev/null; then
    rmdir /run/netns 2>/dev/null || true
  fi

  # cgroups containerd made, deepest first (rmdir only: a cgroup with processes stays; a few
  # tries, as exited processes may leave them a moment later).
  local cg
  for ((i = 0; i < 25; i++)); do
    for cg in $(our_cgroups); do
      find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    [[ -z $(our_cgroups) ]] && break
    sleep 0.2
  done

  # Paths kubelet, containerd and CNI wrote outside the state dir, where `up` found none.
  local p
  if [[ -f $HOSTREC/paths ]]; then
    while IFS= read -r p; do
      [[ -n $p && -e $p ]] || continue
      if grep -qF " $p" /proc/self/mountinfo; then
        say "not removing $p: something is mounted below it"
      else
        rm -rf "$p"
      fi
    done <"$HOSTREC/paths"
  fi
}

# Checks that nothing of the cluster is left; prints what is and fails if anything.
verify_clean() {
  local left=() n p
  for n in "${DAEMONS[@]}"; do alive "$n" && left+=("process $n (pid $(pid_of "$n"))"); done
  for p in $(stray_pids | sort -u); do left+=("process $p: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)"); done
  while IFS= read -r p; do [[ -n $p ]] && left+=("mount $p"); done < <(our_mounts)
  [[ -e $NETNS_PATH ]] && left+=("network namespace $NETNS")
  ip link show "$VETH_HOST" >/dev/null 2>&1 && left+=("link $VETH_HOST")
  for p in $(our_cgroups); do left+=("cgroup $p"); done
  for p in $(our_pod_netns); do left+=("pod network namespace $p"); done
  if [[ -f $HOSTREC/paths ]]; then
    while IFS= read -r p; do [[ -n $p && -e $p ]] && left+=("path $p"); done <"$HOSTREC/paths"
  fi
  if ((${#left[@]})); then
    say "teardown incomplete; left behind:"
    printf '  %s\n' "${left[@]}" >&2
    return 1
  fi
}

# After a clean teardown: the state dir without its big parts (containerd's root, etcd's data)
# and without the records; the logs stay for a failing test to print.
finish_teardown() { verify_clean && remove_state; }

cmd_down() {
  need_root
  [[ -d $STATE ]] || { [[ -e $NETNS_PATH ]] || { say "nothing to tear down"; return 0; }; }
  mkdir -p "$STATE"
  lock
  local t0=$SECONDS
  teardown || true
  finish_teardown || die "teardown incomplete; run '$0 down' again (logs kept in $LOGS)"
  say "down in $((SECONDS - t0)) s (logs kept in $LOGS)"
}

# ---------------------------------------------------------------------------------------------
# exec, load, logs, status

cmd_exec() {
  need_root
  [[ ${1:-} == -- ]] && shift
  (($#)) || die "usage: $0 exec -- CMD..."
  [[ -e $NETNS_PATH && -f $DNS_DIR/resolv.conf ]] || die "the cluster is not up"
  exec "${IN_CLUSTER[@]}" "$@"
}

cmd_load() {
  need_root
  (($#)) || die "usage: $0 load FILE.tar..."
  alive containerd || die "the cluster is not up (containerd not running)"
  import_images "$@"
}

print_logs() {
  local f n=${RAFTNET_E2E_LOG_LINES:-60}
  for f in "$LOGS"/*.log; do
    [[ -f $f ]] || continue
    echo "===== $f (last $n lines) ====="
    tail -n "$n" "$f"
  done
}

cmd_logs() {
  [[ -d $LOGS ]] || die "no logs in $LOGS"
  print_logs
}

# Exit status 0 when up, 1 when down or partly up.
cmd_status() {
  local n lines=() running=0
  for n in "${DAEMONS[@]}"; do
    if alive "$n"; then
      lines+=("$(printf '%-24s pid %s' "$n" "$(pid_of "$n")")")
      running=$((running + 1))
    else
      lines+=("$(printf '%-24s not running' "$n")")
    fi
  done
  if ((running == ${#DAEMONS[@]})); then
    echo "raftnet-e2e cluster: up (KUBECONFIG=$ADMIN_KUBECONFIG)"
  elif ((running == 0)) && ! is_up; then
    echo "raftnet-e2e cluster: down"
    return 1
  else
    echo "raftnet-e2e cluster: partly up; run '$0 down'"
  fi
  printf '  %s\n' "${lines[@]}"
  ((running == ${#DAEMONS[@]}))
}

# Serializes up and down (the descriptor is closed in every daemon, see close_fds).
lock() {
  exec 9>"$STATE/.lock"
  flock -n 9 || die "another 'local.sh up/down' is running"
}

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//' >&2
  exit 2
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
load) shift && cmd_load "$@" ;;
exec) shift && cmd_exec "$@" ;;
logs) cmd_logs ;;
status) cmd_status ;;
*) usage ;;
esac
