#!/usr/bin/env bash
# Configures and builds edgefd (Release, Ninja).
#
#   build.sh [--dir DIR] [--target T]... [CMAKE_ARGS...]
#
#   --dir DIR      the build tree (default ./build)
#   --target T     build only T and what it needs (repeatable; default: every target, tests
#                  included): `build.sh --target edgefd-labeller` is all a dry run needs
#   CMAKE_ARGS     go to cmake's configure step (e.g. -DCMAKE_TOOLCHAIN_FILE=...)
#
# Compiler cache: every build (this machine's, the cross builds of test.sh --arch, the image's
# build stage) uses one ccache directory, $CCACHE_DIR or else $EDGEFD_CACHE/ccache (default
# ~/.cache/edgefd/ccache). The launcher names it and the clone as CCACHE_BASEDIR in the build
# tree itself, so a later `cmake --build` (scripts/e2e.sh, by hand) uses the same cache, and a
# fresh clone at another path (CI) reuses the objects of an earlier build of the same sources.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --dir) dir=${2:?--dir needs a directory}; shift ;;
    --target) targets+=(--target "${2:?--target needs a target}"); shift ;;
    *) break ;;
  esac
  shift
done
launcher=()
if command -v ccache >/dev/null; then
  ccache_dir=${CCACHE_DIR:-${EDGEFD_CACHE:-$HOME/.cache/edgefd}/ccache}
  mkdir -p "$ccache_dir"
  l="env;CCACHE_DIR=$ccache_dir;CCACHE_BASEDIR=$PWD;ccache"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$l" -DCMAKE_C_COMPILER_LAUNCHER="$l")
fi
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@"
cmake --build "$dir" -j"$(nproc)" "${targets[@]}"
