#!/usr/bin/env bash
# Installs the Debian 12 packages, builds edgefd-labeller (only it: the dry run needs nothing
# else; scripts/test.sh builds the rest in the same ./build), and prints the labels this
# machine would get.
# Extra arguments go to edgefd-labeller (e.g. --output json, --dtb FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp -t edgefd-setup.XXXXXX.log)
quiet() {
  if ! "$@" >>"$log" 2>&1; then
    echo "dry-run.sh: '$*' failed; the last lines of $log:" >&2
    tail -n 30 "$log" >&2
    exit 1
  fi
}
echo "dry-run.sh: installing packages and building edgefd-labeller (log: $log)..." >&2
quiet bash scripts/install-deps.sh
quiet bash scripts/build.sh --target edgefd-labeller
exec ./build/labeller/edgefd-labeller --dry-run "$@"
