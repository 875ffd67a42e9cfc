#!/usr/bin/env bash
# The end-to-end suite against upstream Kubernetes on this machine (run as root):
#
#   bash scripts/e2e.sh         build (cached), bring the cluster up, deploy edgefd, run the
#                               suite, tear everything down; exit 0 iff every test passed
#   bash scripts/e2e.sh up      build, bring up, deploy; leave it running (prints KUBECONFIG)
#   bash scripts/e2e.sh test [GO TEST FLAGS]   run the suite against a cluster that is up
#   bash scripts/e2e.sh down    stop every process this script started, remove its state
#   bash scripts/e2e.sh stop|start|restart PROGRAM   one program (kubelet, kube-apiserver, ...)
#
# The cluster: etcd, kube-apiserver (RBAC, Node authorizer, NodeRestriction, service-account
# tokens), kube-controller-manager, kube-scheduler, one real node (kubelet + containerd + runc +
# CNI bridge), kube-proxy and CoreDNS, all upstream and built from the Go module proxy at the
# versions pinned in e2e/go.mod; runc and the CNI plugins are Debian's. Beside the real node,
# "paper nodes" for boards of ../shared/devicetrees. Settings: e2e/cluster.env.
#
# Where things live: programs and images in ~/.cache/edgefd/e2e (kept across runs); the admin
# kubeconfig, certificates, configs and logs in build/e2e/; runtime state in /var/lib/kubelet,
# /var/lib/edgefd-e2e and /run/edgefd-e2e, which `down` removes.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
E2E_SRC="$REPO/e2e"
OUT="$REPO/build/e2e"
CACHE="${EDGEFD_CACHE:-$HOME/.cache/edgefd}"
BIN="$CACHE/e2e/bin"
IMAGES="$CACHE/e2e/images"
STATE=/var/lib/edgefd-e2e
RUN=/run/edgefd-e2e
KUBELET_DIR=/var/lib/kubelet
# shellcheck source=../e2e/cluster.env
source "$E2E_SRC/cluster.env"

# One set of build settings for every go command here (programs, suite, vet): a command with
# other flags would not reuse the cached packages and would compile Kubernetes again.
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/cache" CGO_ENABLED=0
export GOFLAGS="-mod=mod -trimpath -tags=urfave_cli_no_docs"
export PATH="$BIN:/usr/sbin:/sbin:$PATH"
NODE_NAME="$(hostname | tr '[:upper:]_' '[:lower:]-')"
KUBECONFIG_ADMIN="$OUT/kubeconfig"
EDGEFD_VERSION=0.1.0
EDGEFD_IMAGE_ARCHIVE="$REPO/build/image/edgefd_${EDGEFD_VERSION}_amd64.oci.tar"
PAUSE_IMAGE=docker.io/edgefd/pause:3.10-e2e
COREDNS_IMAGE=docker.io/edgefd/coredns:1.15.0-e2e
SHARED_DT="${EDGEFD_SHARED:-$REPO/../shared}/devicetrees"
# containerd's NRI socket: the path is fixed (edgefd-nri's default and its DaemonSet's mount).
NRI_SOCKET=/var/run/nri/nri.sock

log() { printf '[e2e %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for DESCRIPTION SECONDS COMMAND...: polls COMMAND every 0.5 s until it succeeds.
wait_for() {
  local what="$1" limit="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${limit}s waiting for $what"
      return 1
    fi
    sleep 0.5
  done
}

kubectl() { "$BIN/kubectl" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }

# ---------------------------------------------------------------------------------------------
# Build: every step is skipped when its inputs did not change (stamps hold the inputs' hash).

inputs_hash() { cat "$@" | sha256sum | cut -d' ' -f1; }

build_programs() {
  local hash
  hash="$(inputs_hash "$E2E_SRC/go.mod" "$E2E_SRC/go.sum" "$E2E_SRC"/cmd/*/*.go \
    "$E2E_SRC"/internal/*/*.go)"
  if [[ -f "$BIN/.stamp" && "$(cat "$BIN/.stamp")" == "$hash" ]]; then
    log "programs up to date in $BIN"
    return
  fi
  log "building Kubernetes, etcd, containerd, CoreDNS (versions: e2e/go.mod) into $BIN"
  mkdir -p "$BIN"
  local k8s containerd
  k8s="$(cd "$E2E_SRC" && go list -m -f '{{.Version}}' k8s.io/kubernetes)"
  containerd="$(cd "$E2E_SRC" && go list -m -f '{{.Version}}' github.com/containerd/containerd/v2)"
  local minor="${k8s#v1.}"; minor="${minor%%.*}"
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s
    -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor
    -X k8s.io/component-base/version.gitTreeState=clean
    -X k8s.io/client-go/pkg/version.gitVersion=$k8s
    -X github.com/containerd/containerd/v2/version.Version=$containerd"
  # Static, no cgo (CGO_ENABLED=0 above): what Kubernetes and containerd release builds do.
  (cd "$E2E_SRC" && go build -ldflags="$(echo $ldflags)" -o "$BIN/" \
    ./cmd/kube ./cmd/coredns ./cmd/ocitar ./cmd/papernodes \
    github.com/containerd/containerd/v2/cmd/containerd \
    github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 \
    github.com/containerd/containerd/v2/cmd/ctr)
  for p in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl etcd; do
    ln -sf kube "$BIN/$p"
  done
  echo "$hash" >"$BIN/.stamp"
}

# node-feature-discovery's nfd-master and its CRDs (the same module version), from their own
# module e2e/tools/nfd, whose Kubernetes pins are e2e/go.mod's: it compiles little more than
# NFD's own packages (the Kubernetes ones are in the build cache already). Own stamp.
NFD_SRC="$E2E_SRC/tools/nfd"
build_nfd() {
  local hash
  hash="$(inputs_hash "$NFD_SRC/go.mod" "$NFD_SRC/go.sum" "$NFD_SRC/tools.go")"
  if [[ -f "$BIN/.nfd-stamp" && "$(cat "$BIN/.nfd-stamp")" == "$hash" && -f "$BIN/nfd-crds.yaml" ]]; then
    log "nfd-master up to date in $BIN"
    return
  fi
  local version dir t0=$SECONDS
  version="$(cd "$NFD_SRC" && go list -m -f '{{.Version}}' sigs.k8s.io/node-feature-discovery)"
  log "building nfd-master $version (e2e/tools/nfd) into $BIN"
  (cd "$NFD_SRC" && go build \
    -ldflags="-s -w -X sigs.k8s.io/node-feature-discovery/pkg/version.version=$version" \
    -o "$BIN/" sigs.k8s.io/node-feature-discovery/cmd/nfd-master)
  dir="$(cd "$NFD_SRC" && go list -m -f '{{.Dir}}' sigs.k8s.io/node-feature-discovery)"
  cp "$dir/deployment/base/nfd-crds/nfd-api-crds.yaml" "$BIN/nfd-crds.yaml"
  chmod 644 "$BIN/nfd-crds.yaml"
  log "nfd-master built in $((SECONDS - t0)) s"
  echo "$hash" >"$BIN/.nfd-stamp"
}

build_images() {
  mkdir -p "$IMAGES"
  local hash
  hash="$(inputs_hash "$E2E_SRC/images/pause.c" "$BIN/.stamp")"
  if [[ -f "$IMAGES/.stamp" && "$(cat "$IMAGES/.stamp")" == "$hash" ]]; then
    log "pause and CoreDNS images up to date"
    return
  fi
  log "building the pause and CoreDNS images"
  gcc -Os -static -Wall -Wextra -Werror -o "$IMAGES/pause" "$E2E_SRC/images/pause.c"
  strip "$IMAGES/pause"
  "$BIN/ocitar" -o "$IMAGES/pause.oci.tar" -ref "$PAUSE_IMAGE" -entrypoint /pause \
    -user 65535:65535 /pause="$IMAGES/pause"
  "$BIN/ocitar" -o "$IMAGES/coredns.oci.tar" -ref "$COREDNS_IMAGE" -entrypoint /coredns \
    /coredns="$BIN/coredns"
  echo "$hash" >"$IMAGES/.stamp"
}

build_edgefd() {
  if [[ -n "${EDGEFD_E2E_IMAGE:-}" ]]; then
    log "building edgefd-labeller, edgefd-deviceplugin and edgefd-plan (the dry run, the paper nodes, the planner)"
    if [[ -f "$REPO/build/build.ninja" ]]; then
      cmake --build "$REPO/build" --target edgefd-labeller edgefd-deviceplugin edgefd-plan
    else
      bash "$REPO/scripts/build.sh" --target edgefd-labeller --target edgefd-deviceplugin --target edgefd-plan
    fi >"$OUT/logs/edgefd-build.log" 2>&1 ||
      { tail -40 "$OUT/logs/edgefd-build.log"; die "edgefd build failed"; }
    EDGEFD_IMAGE_ARCHIVE="$EDGEFD_E2E_IMAGE"
  else
    # The programs of ./build (CI's host part compiled them already), which the paper nodes
    # run too, copied onto the Dockerfile's runtime stage: nothing compiles twice.
    log "building edgefd and its image from ./build (scripts/image.sh --from-build build)"
    bash "$REPO/scripts/image.sh" --from-build "$REPO/build" >"$OUT/logs/image.log" 2>&1 ||
      { tail -40 "$OUT/logs/image.log"; die "scripts/image.sh failed"; }
  fi
  [[ -f "$EDGEFD_IMAGE_ARCHIVE" ]] || die "no image archive at $EDGEFD_IMAGE_ARCHIVE"
}

build() {
  mkdir -p "$OUT/logs"
  if ! { command -v runc && [[ -x /usr/lib/cni/bridge ]] && command -v conntrack && command -v curl &&
    [[ -x /lib/systemd/systemd-udevd ]] && command -v iptables && command -v ip; } >/dev/null; then
    log "installing the e2e node's packages (scripts/install-deps.sh --e2e)"
    bash "$REPO/scripts/install-deps.sh" --e2e >"$OUT/logs/install-deps.log" 2>&1 ||
      { tail -20 "$OUT/logs/install-deps.log"; die "scripts/install-deps.sh --e2e failed"; }
  fi
  local go_minor
  go_minor="$(go env GOVERSION 2>/dev/null | sed -n 's/^go1\.\([0-9]*\).*/\1/p')"
  [[ -n "$go_minor" && "$go_minor" -ge 26 ]] || die "Go >= 1.26 is needed to build Kubernetes 1.37 (found: $(go version 2>&1))"
  build_programs
  build_nfd
  # Helm, for the suite's chart test (its own module: e2e/tools/helm; skipped when built).
  bash "$REPO/scripts/build-helm.sh" >/dev/null 2>"$OUT/logs/helm-build.log" ||
    { tail -20 "$OUT/logs/helm-build.log"; die "building helm failed"; }
  build_images
  build_edgefd
}

# ---------------------------------------------------------------------------------------------
# Certificates and kubeconfigs: one CA; EC P-256 keys (fast to make).

PKI="$OUT/pki"

make_cert() { # NAME SUBJECT [SANS]
  local name="$1" subject="$2" sans="${3:-}"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/$name.key" 2>/dev/null
  openssl req -new -key "$PKI/$name.key" -subj "$subject" -out "$PKI/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    if [[ -n "$sans" ]]; then
      echo "extendedKeyUsage=serverAuth,clientAuth"
      echo "subjectAltName=$sans"
    else
      echo "extendedKeyUsage=clientAuth"
    fi
  } >"$PKI/$name.ext"
  openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 30 -sha256 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt" 2>/dev/null
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

make_kubeconfig() { # FILE CERT_NAME
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: edgefd-e2e
  cluster:
    server: https://$E2E_NODE_IP:$E2E_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $2
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$2.crt")
    client-key-data: $(base64 -w0 "$PKI/$2.key")
contexts:
- name: edgefd-e2e
  context: {cluster: edgefd-e2e, user: $2}
current-context: edgefd-e2e
EOF
  chmod 600 "$1"
}

make_pki() {
  rm -rf "$PKI"; mkdir -p "$PKI"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/ca.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=edgefd-e2e-ca" -days 30 -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "$PKI/ca.crt" 2>/dev/null
  local svc="DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  svc+=",DNS:kubernetes.default.svc.$E2E_CLUSTER_DOMAIN,DNS:localhost"
  make_cert apiserver "/CN=kube-apiserver" \
    "$svc,IP:$E2E_NODE_IP,IP:$E2E_APISERVER_SERVICE_IP,IP:127.0.0.1"
  make_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client"
  make_cert admin "/O=system:masters/CN=edgefd-e2e-admin"
  make_cert controller-manager "/CN=system:kube-controller-manager"
  make_cert scheduler "/CN=system:kube-scheduler"
  make_cert kube-proxy "/CN=system:kube-proxy"
  make_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME"
  make_cert kubelet-serving "/CN=$NODE_NAME" "DNS:$NODE_NAME,IP:$E2E_NODE_IP"
  openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$PKI/sa.key" 2>/dev/null
  openssl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>/dev/null
  make_kubeconfig "$OUT/kubeconfig" admin
  for c in controller-manager scheduler kube-proxy kubelet; do
    make_kubeconfig "$OUT/$c.kubeconfig" "$c"
  done
}

# ---------------------------------------------------------------------------------------------
# Processes: each runs in its own session with its log in build/e2e/logs and its pid in
# $RUN/pids, which is all `down` needs to stop it.

start() { # NAME COMMAND...
  local name="$1"; shift
  mkdir -p "$RUN/pids" "$OUT/logs"
  printf '%q ' "$@" >"$RUN/pids/$name.cmd" # for `e2e.sh start NAME` after a stop
  setsid "$@" >>"$OUT/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/pids/$name.pid"
  echo "$name" >>"$RUN/pids/order"
}

running() { [[ -f "$RUN/pids/$1.pid" ]] && kill -0 "$(cat "$RUN/pids/$1.pid")" 2>/dev/null; }

stop() { # NAME [SECONDS]: SIGTERM, then SIGKILL after SECONDS (default 15)
  local pidfile="$RUN/pids/$1.pid" pid grace="${2:-15}"
  [[ -f "$pidfile" ]] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    local t0=$SECONDS
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + grace))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 (pid $pid) still running $grace s after SIGTERM: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    ((SECONDS - t0 < 3)) || log "$1 took $((SECONDS - t0)) s to stop"
  fi
  rm -f "$pidfile"
}

# Waits until a restarted program serves again.
wait_ready() {
  case "$1" in
    etcd) wait_for "etcd health" 60 curl -fsS "http://127.0.0.1:$E2E_ETCD_CLIENT_PORT/health" ;;
    kube-apiserver) wait_for "kube-apiserver /readyz" 120 kubectl get --raw /readyz ;;
    containerd) wait_for "containerd" 60 "$BIN/ctr" --address "$RUN/containerd/containerd.sock" version ;;
    kubelet) wait_for "kubelet healthz" 60 curl -fsS http://127.0.0.1:10248/healthz ;;
    kube-proxy) wait_for "kube-proxy healthz" 60 curl -fsS http://127.0.0.1:10256/healthz ;;
    *) running "$1" ;;
  esac
}

# `e2e.sh stop|start|restart NAME`: what the fault tests (and a user) do to one program.
program() {
  local verb="$1" name="$2"
  [[ -f "$RUN/pids/$name.cmd" ]] || die "$name was not started by this script (no $RUN/pids/$name.cmd)"
  if [[ "$verb" == stop || "$verb" == restart ]]; then
    # kube-apiserver stops listening within a second of SIGTERM, then (measured) hangs in its
    # shutdown until the 15 s grace ends in SIGKILL; its state is etcd's, so 3 s lose nothing
    # and save the fault test 12 s.
    if [[ "$name" == kube-apiserver ]]; then stop "$name" 3; else stop "$name"; fi
  fi
  if [[ "$verb" == start || "$verb" == restart ]]; then
    running "$name" && die "$name is already running"
    eval "start $name $(cat "$RUN/pids/$name.cmd")"
    wait_ready "$name"
  fi
}

feature_gates_flag() { [[ -z "$E2E_FEATURE_GATES" ]] || echo "--feature-gates=$E2E_FEATURE_GATES"; }

# YAML map of the feature gates for the kubelet and kube-proxy configuration files.
feature_gates_yaml() {
  local gate
  echo "featureGates:"
  [[ -n "$E2E_FEATURE_GATES" ]] || { echo "  {}"; return; }
  IFS=, read -ra gates <<<"$E2E_FEATURE_GATES"
  for gate in "${gates[@]}"; do echo "  ${gate%%=*}: ${gate#*=}"; done
}

# ---------------------------------------------------------------------------------------------
# Control plane.

start_etcd() {
  mkdir -p "$STATE/etcd"
  start etcd "$BIN/etcd" --name edgefd-e2e --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$E2E_ETCD_CLIENT_PORT" \
    --advertise-client-urls "http://127.0.0.1:$E2E_ETCD_CLIENT_PORT" \
    --listen-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-advertise-peer-urls "http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --initial-cluster "edgefd-e2e=http://127.0.0.1:$E2E_ETCD_PEER_PORT" \
    --listen-metrics-urls "" --log-level warn --quota-backend-bytes 1073741824
  wait_for "etcd health" 60 curl -fsS "http://127.0.0.1:$E2E_ETCD_CLIENT_PORT/health"
}

start_apiserver() {
  local runtime_config=()
  [[ -z "$E2E_RUNTIME_CONFIG" ]] || runtime_config=("--runtime-config=$E2E_RUNTIME_CONFIG")
  # shellcheck disable=SC2046
  start kube-apiserver "$BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$E2E_ETCD_CLIENT_PORT" \
    --bind-address "$E2E_NODE_IP" --advertise-address "$E2E_NODE_IP" \
    --secure-port "$E2E_APISERVER_PORT" \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/ca.crt" \
    --authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --service-account-issuer "https://kubernetes.default.svc.$E2E_CLUSTER_DOMAIN" \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range "$E2E_SERVICE_CIDR" \
    --kubelet-client-certificate "$PKI/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$PKI/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$PKI/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --allow-privileged=true --profiling=false --v=1 \
    $(feature_gates_flag) "${runtime_config[@]}"
  wait_for "kube-apiserver /readyz" 120 kubectl get --raw /readyz
}

start_controllers() {
  # shellcheck disable=SC2046
  start kube-controller-manager "$BIN/kube-controller-manager" \
    --kubeconfig "$OUT/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$OUT/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$OUT/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --cluster-signing-cert-file "$PKI/ca.crt" --cluster-signing-key-file "$PKI/ca.key" \
    --service-cluster-ip-range "$E2E_SERVICE_CIDR" --profiling=false --v=1 $(feature_gates_flag)
  # shellcheck disable=SC2046
  start kube-scheduler "$BIN/kube-scheduler" \
    --kubeconfig "$OUT/scheduler.kubeconfig" \
    --authentication-kubeconfig "$OUT/scheduler.kubeconfig" \
    --authorization-kubeconfig "$OUT/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false --v=1 $(feature_gates_flag)
  # The service-account controller creates "default" in each namespace: pods need it.
  wait_for "the default service account" 60 kubectl -n default get serviceaccount default
}

# ---------------------------------------------------------------------------------------------
# The node: bridge, containerd, kubelet, kube-proxy.

prepare_host() {
  mkdir -p "$STATE" "$RUN/cni/net.d" "$RUN/cni/networks" "$KUBELET_DIR/device-plugins"
  # Pods on the bridge go through iptables (kube-proxy's Service rules): br_netfilter is built in.
  # (`down` puts back the values found here.)
  sysctl -n net.bridge.bridge-nf-call-iptables net.ipv4.ip_forward >"$RUN/sysctl.orig"
  sysctl -qw net.bridge.bridge-nf-call-iptables=1 net.ipv4.ip_forward=1
  # The bridge exists before any pod, so the API server can listen on its address.
  if ! ip link show "$E2E_BRIDGE" >/dev/null 2>&1; then
    ip link add "$E2E_BRIDGE" type bridge
    ip addr add "$E2E_NODE_IP/${E2E_POD_CIDR#*/}" dev "$E2E_BRIDGE"
    ip link set "$E2E_BRIDGE" up
  fi
  # Pods reach each other, Services and this node, nothing beyond: forwarding is on for the
  # bridge only, so drop anything a pod would send out of another interface.
  iptables -C FORWARD -s "$E2E_POD_CIDR" ! -o "$E2E_BRIDGE" -j DROP \
    -m comment --comment edgefd-e2e 2>/dev/null ||
    iptables -I FORWARD 1 -s "$E2E_POD_CIDR" ! -o "$E2E_BRIDGE" -j DROP -m comment --comment edgefd-e2e
  cat >"$RUN/cni/net.d/10-edgefd-e2e.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "edgefd-e2e",
  "plugins": [
    {
      "type": "bridge", "bridge": "$E2E_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local", "dataDir": "$RUN/cni/networks",
        "ranges": [[{"subnet": "$E2E_POD_CIDR", "gateway": "$E2E_NODE_IP"}]],
        "routes": [{"dst": "0.0.0.0/0"}]
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
EOF
  # systemd-udevd turns kernel uevents into the udev events edgefd listens to, as on a real
  # node (the hotplug test needs it). Started here only if the host does not run one.
  if ! pgrep -x systemd-udevd >/dev/null; then
    start systemd-udevd /lib/systemd/systemd-udevd
    wait_for "systemd-udevd's control socket" 30 test -S /run/udev/control
  fi
}

start_containerd() {
  local cdi_dirs="" d
  for d in $E2E_CDI_SPEC_DIRS; do cdi_dirs+="\"$d\", "; mkdir -p "$d"; done
  mkdir -p "$STATE/containerd" "$RUN/containerd"
  cat >"$OUT/containerd.toml" <<EOF
version = 3
root = "$STATE/containerd"
state = "$RUN/containerd"

[grpc]
  address = "$RUN/containerd/containerd.sock"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins."io.containerd.cri.v1.runtime"]
  # CDI (the device plugin's cdi_devices, DRA's prepared devices) is always on in containerd
  # 2.x, which has no enable_cdi any more (it skips the key); these are the directories it reads.
  cdi_spec_dirs = [${cdi_dirs%, }]
  # This machine's root lacks CAP_SYS_RESOURCE, so no process may lower an oom_score_adj:
  # runc failed every pod sandbox with "nsexec: failed to update /proc/self/oom_score_adj:
  # Permission denied" (the kubelet asks -998 for sandboxes). containerd's own option for
  # that case keeps the kubelet's values but never below containerd's own (0 here).
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "$(command -v runc)"
        Root = "$RUN/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["/usr/lib/cni"]
    conf_dir = "$RUN/cni/net.d"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"

# NRI, through which edgefd-nri sets the cpusets of containers given edgefd cores (and keeps
# the others off them). containerd 2.x has it on with this socket by default (1.7 had it off);
# spelled out because the suite relies on it.
[plugins."io.containerd.nri.v1.nri"]
  disable = false
  socket_path = "$NRI_SOCKET"
EOF
  start containerd "$BIN/containerd" --config "$OUT/containerd.toml"
  wait_for "containerd" 60 "$BIN/ctr" --address "$RUN/containerd/containerd.sock" version
  local archive
  for archive in "$IMAGES/pause.oci.tar" "$IMAGES/coredns.oci.tar" "$EDGEFD_IMAGE_ARCHIVE"; do
    log "importing $(basename "$archive")"
    "$BIN/ctr" --address "$RUN/containerd/containerd.sock" -n k8s.io images import \
      --no-unpack=false "$archive" >>"$OUT/logs/ctr-import.log"
  done
}

start_kubelet() {
  cat >"$OUT/kubelet.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine has a cgroup v1 hierarchy; the kubelet refuses it unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$RUN/containerd/containerd.sock
address: $E2E_NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
clusterDomain: $E2E_CLUSTER_DOMAIN
clusterDNS: [$E2E_DNS_IP]
resolvConf: ""
failSwapOn: false
podCIDR: $E2E_POD_CIDR
# A shared build machine: never evict test pods for disk or memory pressure.
evictionHard: {memory.available: "0%", nodefs.available: "0%", imagefs.available: "0%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
$(feature_gates_yaml)
EOF
  start kubelet "$BIN/kubelet" --config "$OUT/kubelet.yaml" \
    --kubeconfig "$OUT/kubelet.kubeconfig" --hostname-override "$NODE_NAME" \
    --node-ip "$E2E_NODE_IP" --root-dir "$KUBELET_DIR" --v=1
  wait_for "node $NODE_NAME Ready" 120 \
    bash -c "'$BIN/kubectl' --kubeconfig '$KUBECONFIG_ADMIN' get node '$NODE_NAME' \
      -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].status}' | grep -qx True"
}

start_kube_proxy() {
  cat >"$OUT/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $OUT/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $E2E_NODE_IP
clusterCIDR: $E2E_POD_CIDR
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["$E2E_NODE_IP/32"]
# Leave the host's conntrack sysctls alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
$(feature_gates_yaml)
EOF
  start kube-proxy "$BIN/kube-proxy" --config "$OUT/kube-proxy.yaml" --v=1
  wait_for "kube-proxy healthz" 60 curl -fsS http://127.0.0.1:10256/healthz
}

start_coredns() {
  kubectl apply -f - >/dev/null <<EOF
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  # No forward plugin: nothing outside the cluster is reachable from here.
  Corefile: |
    .:53 {
        errors
        health
        ready
        kubernetes $E2E_CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
            ttl 30
        }
        cache 30
        loop
        reload
        loadbalance
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      priorityClassName: system-cluster-critical
      dnsPolicy: Default
      nodeSelector: {kubernetes.io/hostname: $NODE_NAME}
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: IfNotPresent
        args: [-conf, /etc/coredns/Corefile]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        - {name: metrics, containerPort: 9153, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}, periodSeconds: 2}
        livenessProbe: {httpGet: {path: /health, port: 8080}}
        resources: {requests: {cpu: 10m, memory: 32Mi}, limits: {memory: 128Mi}}
        volumeMounts: [{name: config, mountPath: /etc/coredns, readOnly: true}]
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $E2E_DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
  - {name: metrics, port: 9153, protocol: TCP}
EOF
}

# node-feature-discovery: its CRDs and nfd-master as a host process, with taints enabled (the
# NFD test's NodeFeatureRule taints), its namespace node-feature-discovery, no metrics or
# health ports. It labels only nodes that have NodeFeature objects (the NFD test makes one).
start_nfd_master() {
  local t0=$SECONDS
  kubectl apply -f "$BIN/nfd-crds.yaml" >/dev/null
  kubectl wait --for condition=established --timeout=60s \
    crd/nodefeatures.nfd.k8s-sigs.io crd/nodefeaturerules.nfd.k8s-sigs.io >/dev/null
  kubectl create namespace node-feature-discovery --dry-run=client -o yaml | kubectl apply -f - >/dev/null
  start nfd-master env NODE_NAME="$NODE_NAME" KUBERNETES_NAMESPACE=node-feature-discovery \
    "$BIN/nfd-master" -kubeconfig "$KUBECONFIG_ADMIN" -config "" -metrics 0 -grpc-health 0 \
    -enable-taints
  log "nfd-master started, its CRDs established, in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------------------------------------
# edgefd and the paper nodes.

deploy_edgefd() {
  # The overlays mount this fixture as the node's CPU tree (big.LITTLE cores on this x86 VM,
  # the big ones being the two CPUs this machine has, so pinning to them is real).
  python3 "$E2E_SRC/fixtures/node_root.py" "$STATE/node-root"
  kubectl apply -k "$E2E_SRC/deploy/labeller" >/dev/null
  kubectl apply -k "$E2E_SRC/deploy/deviceplugin" >/dev/null
  # edgefd as a DRA driver beside the device plugin (--mode dra; DeviceClasses included).
  kubectl apply -k "$E2E_SRC/deploy/dra" >/dev/null
  kubectl -n edgefd-system rollout status ds/edgefd-labeller --timeout=180s >/dev/null
  kubectl -n edgefd-system rollout status ds/edgefd-deviceplugin --timeout=180s >/dev/null
  kubectl -n edgefd-system rollout status ds/edgefd-nri --timeout=180s >/dev/null
  kubectl -n edgefd-system rollout status ds/edgefd-dra --timeout=180s >/dev/null
  kubectl -n kube-system rollout status deploy/coredns --timeout=180s >/dev/null
}

# Node objects for real boards, each with the capacity the device plugin would advertise there
# (`edgefd-deviceplugin --list --dtb`), labelled by `edgefd-labeller --once --dtb` with the
# labeller's own service account. papernodes keeps their leases fresh (the node lifecycle
# controller would otherwise taint them unreachable); their pods never start.
start_paper_nodes() {
  if [[ ! -d "$SHARED_DT" ]]; then
    log "no $SHARED_DT: no paper nodes (their tests skip)"
    return
  fi
  local board args=()
  for board in $E2E_PAPER_BOARDS; do
    args+=(--board "$board=$SHARED_DT/$board.dtb")
  done
  start papernodes "$BIN/papernodes" --kubeconfig "$KUBECONFIG_ADMIN" \
    --deviceplugin "$REPO/build/deviceplugin/edgefd-deviceplugin" \
    --labeller "$REPO/build/labeller/edgefd-labeller" "${args[@]}"
  # A kubeconfig for the labeller's service account per paper node: the paper nodes are
  # labelled with exactly the rights the DaemonSet has. Its admission policy lets a token change
  # only the Node it names (the pod-bound token of the DaemonSet names the pod's node), so each
  # token is bound to its paper Node, which gives it that node's name claim.
  local token
  for board in $E2E_PAPER_BOARDS; do
    wait_for "paper node paper-$board" 60 kubectl get node "paper-$board"
    token="$(kubectl -n edgefd-system create token edgefd-labeller --duration 2h \
      --bound-object-kind Node --bound-object-name "paper-$board")"
    cat >"$OUT/labeller-paper-$board.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: edgefd-e2e
  cluster:
    server: https://$E2E_NODE_IP:$E2E_APISERVER_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: edgefd-labeller
  user: {token: $token}
contexts:
- name: edgefd-e2e
  context: {cluster: edgefd-e2e, user: edgefd-labeller}
current-context: edgefd-e2e
EOF
    chmod 600 "$OUT/labeller-paper-$board.kubeconfig"
    "$REPO/build/labeller/edgefd-labeller" --once --dtb "$SHARED_DT/$board.dtb" \
      --kubeconfig "$OUT/labeller-paper-$board.kubeconfig" --node-name "paper-$board" \
      --log-level warn || die "edgefd-labeller --once failed for paper-$board"
  done
}

# ---------------------------------------------------------------------------------------------

up() {
  [[ $EUID -eq 0 ]] || die "run as root (it starts a kubelet and containerd)"
  build
  down_quiet
  mkdir -p "$OUT/logs" "$RUN/pids"
  : >"$RUN/pids/order"
  rm -f "$OUT"/logs/*.log
  local t0=$SECONDS
  log "bringing the cluster up (node $NODE_NAME, logs in $OUT/logs)"
  make_pki
  prepare_host
  start_etcd
  start_apiserver
  start_controllers
  start_containerd
  start_kubelet
  start_kube_proxy
  start_coredns
  log "deploying edgefd (e2e/deploy overlays of manifests/)"
  deploy_edgefd
  start_nfd_master
  start_paper_nodes
  log "cluster up in $((SECONDS - t0)) s"
  echo "export KUBECONFIG=$KUBECONFIG_ADMIN PATH=$BIN:\$PATH"
}

run_suite() {
  log "running the suite (e2e/)"
  (cd "$E2E_SRC" && E2E_KUBECONFIG="$KUBECONFIG_ADMIN" E2E_REPO="$REPO" E2E_NODE_NAME="$NODE_NAME" \
    E2E_SHARED_DT="$SHARED_DT" E2E_NODE_ROOT="$STATE/node-root" E2E_BIN="$BIN" \
    E2E_RUN="$RUN" E2E_LOGS="$OUT/logs" \
    go test -count=1 -timeout 40m -v ./internal/... ./suite/ "$@" 2>&1 | tee "$OUT/logs/suite.log")
}

# The chains kube-proxy --cleanup leaves: the kubelet's own (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
# KUBE-IPTABLES-HINT) in every table, IPv4 and IPv6: the jumps to them, then the chains.
remove_kube_chains() {
  local cmd table rule chain
  for cmd in iptables ip6tables; do
    command -v "$cmd" >/dev/null || continue
    for table in filter nat mangle; do
      "$cmd" -t "$table" -S 2>/dev/null | grep -E '^-A .* -j KUBE-' | grep -vE '^-A KUBE-' |
        while read -r rule; do
          eval "$cmd -t $table -D ${rule#-A }" 2>/dev/null || true
        done || true # no such rule: grep's status 1
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$cmd" -t "$table" -F "$chain" 2>/dev/null || true
      done
      for chain in $("$cmd" -t "$table" -S 2>/dev/null | sed -n 's/^-N \(KUBE-[^ ]*\)$/\1/p'); do
        "$cmd" -t "$table" -X "$chain" 2>/dev/null || true
      done
    done
  done
}

# Removes everything `up` made. Safe to run at any time, also after a failed or partial up.
down_quiet() {
  local name
  # Pods first, through containerd (their shims, mounts and network namespaces).
  if running containerd; then
    local ctr=("$BIN/ctr" --address "$RUN/containerd/containerd.sock" -n k8s.io) id
    stop kubelet
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks kill -s KILL "$id" >/dev/null 2>&1 || true
    done
    for id in $("${ctr[@]}" tasks ls -q 2>/dev/null); do
      "${ctr[@]}" tasks delete -f "$id" >/dev/null 2>&1 || true
    done
  fi
  if [[ -f "$RUN/pids/order" ]]; then
    # Their state is deleted next, so a short grace: kube-apiserver's graceful termination
    # can take more than 15 s once its clients are gone.
    for name in $(tac "$RUN/pids/order"); do stop "$name" 3; done
  fi
  # Shims that outlived their containerd: only ours, by the path of their executable.
  local pid exe
  for pid in $(ls /proc | grep -E '^[0-9]+$'); do
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    [[ "$exe" == "$BIN/containerd-shim-runc-v2" ]] && kill -KILL "$pid" 2>/dev/null || true
  done
  [[ -x "$BIN/kube-proxy" ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  remove_kube_chains
  while iptables -D FORWARD -s "$E2E_POD_CIDR" ! -o "$E2E_BRIDGE" -j DROP \
    -m comment --comment edgefd-e2e 2>/dev/null; do :; done
  # Mounts below our state directories (pod volumes, rootfs, network namespaces), deepest first.
  local m
  for m in $(awk '{print $2}' /proc/self/mounts |
    grep -E "^($KUBELET_DIR|$STATE|$RUN|/run/netns/cni-|/var/run/netns/cni-)" | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  rm -f /run/netns/cni-* 2>/dev/null || true
  ip link del "$E2E_BRIDGE" 2>/dev/null || true
  ip link del edgefd-e2e0 2>/dev/null || true
  # The pods' cgroups (cgroup v1: one tree per controller).
  local cg
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d "$cg" ]] && find "$cg" -depth -type d -exec rmdir {} \; 2>/dev/null || true
  done
  if [[ -f "$RUN/sysctl.orig" ]]; then
    local orig
    mapfile -t orig <"$RUN/sysctl.orig"
    sysctl -qw "net.bridge.bridge-nf-call-iptables=${orig[0]}" "net.ipv4.ip_forward=${orig[1]}" || true
  fi
  # The CDI specs edgefd's DRA plugin wrote (its pod is gone; nobody else removes them).
  for d in $E2E_CDI_SPEC_DIRS; do
    rm -f "$d"/edgefd.io-*.json "$d"/.edgefd.io-*
    rmdir "$d" 2>/dev/null || true
  done
  ip link del edgefd-dra0 2>/dev/null || true
  # The CNI library's cache (its path is fixed), under our network's and containerd's loopback
  # network's names, and the kubelet's pod logs (their path is fixed too).
  rm -f /var/lib/cni/results/edgefd-e2e-* /var/lib/cni/results/cni-loopback-*
  rmdir /var/lib/cni/results /var/lib/cni 2>/dev/null || true
  if ! pgrep -x kubelet >/dev/null; then rm -rf /var/log/pods /var/log/containers; fi
  rm -rf "$KUBELET_DIR" "$STATE" "$RUN"
  # containerd's shims put their sockets under /run/containerd/s whatever its state directory;
  # remove that only when no other containerd runs on this machine.
  if ! pgrep -x containerd >/dev/null; then
    rm -rf /run/containerd/s /run/containerd/runc
    rmdir /run/containerd 2>/dev/null || true
    # Its NRI socket's directory (fixed too; edgefd-nri's hostPath creates it if absent).
    rm -f "$NRI_SOCKET"
    rmdir "$(dirname "$NRI_SOCKET")" 2>/dev/null || true
  fi
}

down() {
  log "tearing the cluster down"
  down_quiet
  log "down: no process of the suite left, state removed"
}

all() {
  local t0=$SECONDS rc=0
  trap 'down' EXIT
  up
  log "up after $((SECONDS - t0)) s (build included)"
  run_suite || rc=$?
  log "e2e: build + up + suite in $((SECONDS - t0)) s; suite exit $rc"
  return "$rc"
}

case "${1:-all}" in
  all) all ;;
  up) up ;;
  test) shift; run_suite "$@" ;; # e.g. test -run 'TestHotplug|TestFaults' 
  down) down ;;
  build) mkdir -p "$OUT/logs"; build ;;
  stop | start | restart) [[ $# -eq 2 ]] || die "usage: $0 $1 PROGRAM"; program "$1" "$2" ;;
  *) echo "usage: $0 [all|up|test|down|build|stop|start|restart PROGRAM]" >&2; exit 2 ;;
esac
