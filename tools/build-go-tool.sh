#!/usr/bin/env bash
# Builds the Go tool in tools/$1 (cdi-validate, nri-peer) into the file $2. Go's module and
# build caches live under $EDGEFD_CACHE (default ~/.cache/edgefd; outside the clone), so a
# rebuild, also from a fresh clone, is quick; the module cache is the one scripts/e2e.sh
# fills, so the modules both need are downloaded once.
set -euo pipefail
tool=${1:?usage: build-go-tool.sh TOOL OUT}
out="$(realpath -m "${2:?usage: build-go-tool.sh TOOL OUT}")"
cd "$(dirname "$0")/$tool"
cache=${EDGEFD_CACHE:-$HOME/.cache/edgefd}
export GOMODCACHE="${GOMODCACHE:-$cache/go/mod}"
export GOCACHE="${GOCACHE:-$cache/gocache}"
export GOFLAGS="-modcacherw -buildvcs=false"
# Tests may build it from several processes at once: each writes its own file, then renames.
go build -o "$out.$$" .
mv -f "$out.$$" "$out"
