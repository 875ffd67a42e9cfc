#!/usr/bin/env bash
# Builds nri-peer into the file $1. Go's module and build caches live under
# ~/.cache/edgefd (outside the clone), so a rebuild, also from a fresh clone, is quick.
set -euo pipefail
out="$(realpath -m "$1")"
cd "$(dirname "$0")"
export GOMODCACHE="${GOMODCACHE:-$HOME/.cache/edgefd/gomod}"
export GOCACHE="${GOCACHE:-$HOME/.cache/edgefd/gocache}"
export GOFLAGS="-modcacherw -buildvcs=false"
# Tests may build it from several processes at once: each writes its own file, then renames.
go build -o "$out.$$" .
mv -f "$out.$$" "$out"
