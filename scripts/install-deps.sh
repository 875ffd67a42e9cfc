#!/usr/bin/env bash
# The one list of the Debian 12 packages edgefd needs, and their installer.
#
#   install-deps.sh              what building, testing and benchmarking on this machine needs
#   install-deps.sh --cross      also the arm64/armhf cross builds and their qemu-user tests
#   install-deps.sh --image      also scripts/image.sh (buildah, debootstrap, qemu-user)
#   install-deps.sh --e2e        also what the end-to-end suite's node needs (scripts/e2e.sh)
#   install-deps.sh --only G[,G] only these groups (the image's stages, a target's sysroot)
#   install-deps.sh --list G     print one group, one package a line
#   --target-arch A              with --only build: add the cross compiler for Debian arch A
#                                (nothing when A is this machine's architecture)
#
# Packages in `optional` that Debian does not build for this machine's architecture (oneDNN on
# armhf) are left out with a message; edgefd then builds without them and says so.
# Run as root (or through sudo). Safe to run again: apt-get skips what is there.
# Go >= 1.26 for the e2e suite comes from the machine (Debian 12's golang is too old to build
# Kubernetes 1.37).
set -euo pipefail

# What a release build of edgefd runs on the build machine, whatever the target (ccache: the
# image's build stage compiles through the cache every build shares, scripts/image.sh).
build=(build-essential cmake ninja-build pkg-config device-tree-compiler protobuf-compiler
       protobuf-compiler-grpc ccache)
# Developing and testing here: the above plus (openssl makes the test CA; procps for ps;
# qemu-user-static runs the pipeline as on older x86-64 CPUs, test Portable.*).
host=("${build[@]}" git clang libclang-rt-14-dev clang-format umockdev openssl procps
      qemu-user-static
      libomp-dev)  # clang finds OpenMP (the runtime links it) only with LLVM's: scripts/fuzz.sh
# Libraries edgefd links, as -dev packages.
libs=(
  libudev-dev libfdt-dev libyaml-cpp-dev                 # discovery
  libcurl4-openssl-dev libssl-dev                       # Kubernetes client (kube/: HTTP, TLS)
  libspdlog-dev libfmt-dev                              # logging
  nlohmann-json3-dev libcli11-dev                       # JSON, command lines
  libgrpc++-dev libprotobuf-dev                          # device plugin, pipeline transport
  libdnnl-dev                                            # runtime conv/fc kernels (oneDNN)
  libgtest-dev libgmock-dev libbenchmark-dev libumockdev-dev  # tests and benchmarks
)
# A target's root that cross builds compile against (scripts/debian-root.sh, the Dockerfile):
# the libraries, umockdev's preload library (the udev tests), OpenMP's runtime, and the gRPC
# plugins its CMake package insists exist (the build machine's protoc and plugin are the ones
# that run).
sysroot=("${libs[@]}" umockdev libgomp1 protobuf-compiler-grpc)
# Cross toolchains, user-mode emulation for the ARM test suites, and the sysroot maker.
cross=(crossbuild-essential-arm64 crossbuild-essential-armhf qemu-user-static binfmt-support
       debootstrap)
# The image builder (no registry is reachable: the Debian base is made with debootstrap).
image=(buildah debootstrap qemu-user-static binfmt-support)
# What the binaries load at run time: the image's runtime stage installs exactly these.
runtime=(libcurl4 libssl3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libfdt1 libudev1
         libgrpc++1.51 libprotobuf32 libprotobuf-lite32 libgomp1 libdnnl2 ca-certificates)
# The e2e node: runc (containerd's runtime), the CNI plugins (bridge, host-local, portmap),
# iptables and conntrack (kube-proxy), udev (systemd-udevd turns uevents into the events edgefd
# follows, as on a real node), curl (health checks), python3 (the CPU fixture writer), iproute2
# (the bridge, the hotplug veth pair).
e2e=(runc containernetworking-plugins iptables conntrack udev curl python3 iproute2)
optional=(libdnnl-dev libdnnl2)

group() {
  case "$1" in
    build | host | libs | sysroot | cross | image | runtime | e2e) declare -n g="$1"; printf '%s\n' "${g[@]}" ;;
    *) echo "install-deps.sh: unknown group '$1' (build, host, libs, sysroot, cross, image, runtime, e2e)" >&2; exit 2 ;;
  esac
}

packages=("${host[@]}" "${libs[@]}")
target_arch=
while [ $# -gt 0 ]; do
  case "$1" in
    --cross) packages+=("${cross[@]}") ;;
    --image) packages+=("${image[@]}") ;;
    --e2e) packages+=("${e2e[@]}") ;;
    --only)
      packages=()
      IFS=, read -r -a groups <<<"${2:?--only needs groups}"
      for g in "${groups[@]}"; do mapfile -t -O "${#packages[@]}" packages < <(group "$g"); done
      shift
      ;;
    --target-arch) target_arch=${2:?--target-arch needs a Debian architecture}; shift ;;
    --list) group "${2:?--list needs a group}"; exit 0 ;;
    *) echo "install-deps.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
  shift
done
if [ -n "$target_arch" ] && [ "$target_arch" != "$(dpkg --print-architecture)" ]; then
  packages+=("crossbuild-essential-$target_arch")
fi

if [ "$(id -u)" -ne 0 ]; then
  SUDO=sudo
else
  SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
# A mirror caught mid-sync fails an index now and then ("File has unexpected size"): try again,
# then go on with the indexes that did come (apt keeps the set it has consistent).
updated=
for try in 1 2; do
  if $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q; then
    updated=1
    break
  fi
  [ "$try" -eq 2 ] || sleep 5
done
[ -n "$updated" ] ||
  echo "install-deps.sh: warning: some package indexes could not be fetched (above); installing from the others" >&2
wanted=()
for p in "${packages[@]}"; do
  if [[ " ${optional[*]} " == *" $p "* ]] &&
    ! apt-cache show --no-all-versions "$p" >/dev/null 2>&1; then
    echo "install-deps.sh: Debian has no $(dpkg --print-architecture) build of $p: left out" >&2
    continue
  fi
  wanted+=("$p")
done
$SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${wanted[@]}"
