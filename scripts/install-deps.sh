#!/usr/bin/env bash
# Installs every Debian 12 package edgefd needs to build, test and benchmark.
# Run as root (or through sudo). Safe to run again: apt-get skips what is there.
# --e2e adds what the end-to-end suite's node needs (scripts/e2e.sh asks for it); Go >= 1.26
# comes from the machine (Debian 12's golang is too old to build Kubernetes 1.37).
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev clang-format
  # clang finds OpenMP (the runtime links it) only with LLVM's libomp: scripts/fuzz.sh
  libomp-dev
  # discovery
  libudev-dev libfdt-dev device-tree-compiler libyaml-cpp-dev
  # Kubernetes client (TLS), logging, JSON, command lines
  libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  # device plugin and pipeline transport
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # runtime kernels (oneDNN: conv/fc kernels faster than anything we would hand-write)
  libdnnl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev umockdev libumockdev-dev
  # used by tests (openssl makes the test CA; procps for ps in scripts)
  openssl procps
)

# The e2e node: runc (containerd's runtime), the CNI plugins (bridge, host-local, portmap),
# iptables and conntrack (kube-proxy), udev (systemd-udevd turns uevents into the events edgefd
# follows, as on a real node), curl (health checks), python3 (the CPU fixture writer), iproute2
# (the bridge, the hotplug veth pair).
e2e_packages=(runc containernetworking-plugins iptables conntrack udev curl python3 iproute2)
if [ "${1:-}" = "--e2e" ]; then
  packages+=("${e2e_packages[@]}")
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${packages[@]}"
