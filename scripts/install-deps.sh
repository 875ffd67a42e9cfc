#!/usr/bin/env bash
# Installs every Debian 12 package edgefd needs to build, test and benchmark.
# Run as root (or through sudo). Safe to run again: apt-get skips what is there.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git clang libclang-rt-14-dev clang-format
  # clang finds OpenMP (the runtime links it) only with LLVM's libomp: scripts/fuzz.sh
  libomp-dev
  # discovery
  libudev-dev libfdt-dev device-tree-compiler libyaml-cpp-dev
  # Kubernetes client, logging, JSON, command lines
  libcpprest-dev libssl-dev libspdlog-dev libfmt-dev nlohmann-json3-dev libcli11-dev
  # device plugin and pipeline transport
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
  # runtime kernels (oneDNN: conv/fc kernels faster than anything we would hand-write)
  libdnnl-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev umockdev libumockdev-dev
  # used by tests (openssl makes the test CA; procps for ps in scripts)
  openssl procps
)

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${packages[@]}"
