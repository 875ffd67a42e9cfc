#!/usr/bin/env bash
# scripts/image.sh --from-build refuses a build tree whose binaries do not belong in the image,
# before it builds, installs or starts buildah: one line naming the tree and the setting.
set -euo pipefail
image_sh="$(cd "$(dirname "$0")/../.." && pwd)/scripts/image.sh"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0

# expect_refusal CACHE_LINES WANTED_MESSAGE
expect_refusal() {
  local dir
  dir=$(mktemp -d "$tmp/tree.XXXXXX")
  printf '%s\n' "$1" >"$dir/CMakeCache.txt"
  local rc=0 err
  err=$(bash "$image_sh" --from-build "$dir" 2>&1 >/dev/null) || rc=$?
  if [ "$rc" -ne 1 ] || [[ "$err" != *"$dir"*"$2"* ]]; then
    echo "FAIL: with $1: exit $rc, stderr: $err (wanted exit 1 and '$dir ... $2')" >&2
    failures=$((failures + 1))
  fi
  # Refused before anything was staged.
  if ls -d "$dir"/*/ >/dev/null 2>&1; then
    echo "FAIL: with $1: image.sh wrote into the tree: $(ls "$dir")" >&2
    failures=$((failures + 1))
  fi
}

expect_refusal 'CMAKE_BUILD_TYPE:STRING=Debug' "is a 'Debug' build"
expect_refusal $'CMAKE_BUILD_TYPE:STRING=Release\nEDGEFD_RUN_FROM_SYSROOT:BOOL=ON' \
  'EDGEFD_RUN_FROM_SYSROOT=ON'
expect_refusal $'CMAKE_BUILD_TYPE:STRING=Release\nEDGEFD_NATIVE_KERNELS:BOOL=ON' \
  'EDGEFD_NATIVE_KERNELS=ON'

# A missing argument is a usage error, not a build of the wrong tree.
rc=0
bash "$image_sh" --from-build >/dev/null 2>&1 || rc=$?
if [ "$rc" -eq 0 ]; then
  echo "FAIL: --from-build without a directory succeeded" >&2
  failures=$((failures + 1))
fi
[ "$failures" -eq 0 ] && echo "image.sh --from-build refusals: all pass"
exit "$failures"
