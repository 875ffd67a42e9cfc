#!/usr/bin/env bash
# Checks that every C++ source in the repository is formatted by .clang-format (clang-format
# from Debian 12). With --fix, formats them in place instead. Run by ctest (test clang_format).
set -euo pipefail
cd "$(dirname "$0")/.."
clang_format=${CLANG_FORMAT:-clang-format}
if ! command -v "$clang_format" >/dev/null; then
  echo "check-format: $clang_format not found (apt-get install clang-format)" >&2
  exit 2
fi
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files -- '*.cc' '*.h' ':!:testdata/**')
else  # an exported tree: every source but build trees and fixtures
  mapfile -t files < <(find . \( -path './build*' -o -path ./testdata -o -path ./.cache \) -prune \
                         -o -type f \( -name '*.cc' -o -name '*.h' \) -print | sort)
fi
if [ "${1:-}" = "--fix" ]; then
  "$clang_format" -i "${files[@]}"
  exit 0
fi
if ! "$clang_format" --dry-run -Werror "${files[@]}"; then
  echo "check-format: files above are not formatted; run: bash scripts/check-format.sh --fix" >&2
  exit 1
fi
echo "check-format: ${#files[@]} files formatted"
