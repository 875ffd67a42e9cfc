#!/usr/bin/env bash
# Installs the Debian 12 packages, builds, and runs the whole test suite with ctest.
#
#   test.sh                  this machine: ./build, the tests run natively
#   test.sh --arch arm64     cross-built into ./build-arm64 against a Debian 12 arm64 sysroot
#   test.sh --arch armhf     (./build-armhf); the same tests run under qemu-user
#
# The sysroots are made once and cached in ~/.cache/edgefd/ (scripts/debian-root.sh). Extra
# arguments after -- go to ctest (e.g. -- -R Kernels).
set -euo pipefail
cd "$(dirname "$0")/.."
arch=host
while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      arch=${2:?--arch needs arm64 or armhf}
      shift
      ;;
    --) shift; break ;;
    *) echo "usage: test.sh [--arch arm64|armhf] [-- CTEST_ARGS...]" >&2; exit 2 ;;
  esac
  shift
done

jobs=$(nproc)
if [ "$arch" = host ]; then
  bash scripts/install-deps.sh
  bash scripts/build.sh
  exec ctest --test-dir build --output-on-failure -j"$jobs" --timeout 300 "$@"
fi

case "$arch" in
  arm64) triple=aarch64-linux-gnu ;;
  armhf) triple=arm-linux-gnueabihf ;;
  *) echo "test.sh: unknown architecture '$arch' (arm64, armhf)" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh --cross
bash scripts/debian-root.sh binfmt
sysroot=$(bash scripts/debian-root.sh sysroot "$arch")
bash scripts/build.sh --dir "build-$arch" \
  -DCMAKE_TOOLCHAIN_FILE="cmake/toolchains/$triple.cmake" -DEDGEFD_SYSROOT="$sysroot" \
  -DEDGEFD_RUN_FROM_SYSROOT=ON
# ctest starts each test binary through qemu (CMAKE_CROSSCOMPILING_EMULATOR); the programs the
# tests start themselves run through binfmt_misc. Both find the sysroot's loader and libraries
# by the absolute paths linked in (EDGEFD_RUN_FROM_SYSROOT).
# Emulation makes every test 5-20x slower: the same tests with a longer timeout.
exec ctest --test-dir "build-$arch" --output-on-failure -j"$jobs" --timeout 900 "$@"
