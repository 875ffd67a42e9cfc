#!/usr/bin/env bash
# Installs the Debian 12 packages, builds, and prints the labels this machine would get.
# Extra arguments go to edgefd-labeller (e.g. --output json, --dtb FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh >/dev/null
bash scripts/build.sh >/dev/null
exec ./build/labeller/edgefd-labeller --dry-run "$@"
