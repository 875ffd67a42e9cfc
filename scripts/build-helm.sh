#!/usr/bin/env bash
# Builds Helm, at the version e2e/tools/helm/go.mod pins, from the Go module proxy into the e2e
# cache: ~/.cache/edgefd/e2e/bin/helm ($EDGEFD_CACHE/e2e/bin/helm). The chart's ctest checks
# (tests/chart: helm lint --strict, helm template) and the e2e group that installs the chart
# use it. Skipped when the binary is there and go.mod/go.sum did not change (the stamp holds
# their hash, like scripts/e2e.sh's programs).
#
#   build-helm.sh            build if needed; prints the binary's path on stdout
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$REPO/e2e/tools/helm"
CACHE="${EDGEFD_CACHE:-$HOME/.cache/edgefd}"
BIN="$CACHE/e2e/bin"
# The e2e suite's module and build caches and scripts/e2e.sh's build settings, to the letter:
# e2e/tools/helm/go.mod pins Kubernetes' modules at e2e/go.mod's versions, so the packages helm
# shares with Kubernetes (client-go, api, apimachinery, ...; 580 of its 730) compile once, for
# whichever of the two builds comes first. Other flags would make other cache keys.
export GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/cache" CGO_ENABLED=0
export GOFLAGS="-mod=mod -trimpath -tags=urfave_cli_no_docs"

hash="$(cat "$SRC/go.mod" "$SRC/go.sum" | sha256sum | cut -d' ' -f1)"
stamp="$BIN/.helm.stamp"
if [[ -x "$BIN/helm" && -f "$stamp" && "$(cat "$stamp")" == "$hash" ]]; then
  echo "$BIN/helm"
  exit 0
fi
command -v go >/dev/null || { echo "build-helm.sh: needs Go >= 1.26 (see scripts/install-deps.sh)" >&2; exit 1; }
mkdir -p "$BIN"
version="$(cd "$SRC" && go list -m -f '{{.Version}}' helm.sh/helm/v3)"
echo "build-helm.sh: building Helm $version into $BIN (e2e/tools/helm/go.mod)" >&2
start=$SECONDS
(cd "$SRC" && go build -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$version" \
  -o "$BIN/helm.tmp" helm.sh/helm/v3/cmd/helm)
mv "$BIN/helm.tmp" "$BIN/helm"
echo "$hash" >"$stamp"
echo "build-helm.sh: built in $((SECONDS - start)) s" >&2
echo "$BIN/helm"
