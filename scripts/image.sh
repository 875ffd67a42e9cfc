#!/usr/bin/env bash
# Builds the edgefd image from the Dockerfile with buildah, for real, on this machine: no
# container registry is needed. The Debian 12 base comes from Debian's packages (debootstrap,
# cached in ~/.cache/edgefd/base-ARCH.tar), imported per architecture into a local manifest list
# under the name the Dockerfile's FROM lines use (debian:12, debian:12-slim).
#
#   image.sh [--arch amd64|arm64|armhf|all]     (default: this machine's architecture)
#
# Writes, for each architecture, build/image/edgefd_<version>_<arch>.oci.tar (an OCI archive
# whose image is named docker.io/edgefd/edgefd:<version>: `ctr -n k8s.io images import FILE`
# makes the manifests' edgefd/edgefd:<version> resolve) and, with several, the manifest list of
# all of them in build/image/edgefd_<version>_multiarch.oci.tar. Then it runs every installed
# binary inside each image (foreign ones under qemu-user): --version, a labeller dry run over a
# real devicetree from ../shared (when present), a short conv run of the pipeline.
# buildah's storage (layers reused by reruns) is ~/.cache/edgefd/buildah.
set -euo pipefail
cd "$(dirname "$0")/.."
here=$(pwd)
host_arch=$(dpkg --print-architecture)
arches=("$host_arch")
while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      case "${2:-}" in
        all) arches=(amd64 arm64 armhf) ;;
        amd64 | arm64 | armhf) arches=("$2") ;;
        *) echo "image.sh: --arch amd64|arm64|armhf|all" >&2; exit 2 ;;
      esac
      shift
      ;;
    *) echo "usage: image.sh [--arch amd64|arm64|armhf|all]" >&2; exit 2 ;;
  esac
  shift
done

version=$(sed -n 's/^project(edgefd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
name=docker.io/edgefd/edgefd:$version
cache=${EDGEFD_CACHE:-$HOME/.cache/edgefd}
out=build/image
log() { echo "image.sh: $*" >&2; }
t0=$SECONDS

bash scripts/install-deps.sh --only image >/dev/null
bash scripts/debian-root.sh binfmt
mkdir -p "$out" "$cache/buildah"
# A storage of our own: vfs works everywhere (no overlay mounts needed), chroot isolation needs
# no user namespaces.
bah() {
  buildah --root "$cache/buildah/storage" --runroot "$cache/buildah/run" --storage-driver vfs "$@"
}

platform() {
  case "$1" in
    amd64) echo linux/amd64 ;;
    arm64) echo linux/arm64 ;;
    armhf) echo linux/arm/v7 ;;
  esac
}

# The bases every build needs: the build machine's and each target's.
bases=("$host_arch")
for a in "${arches[@]}"; do [[ " ${bases[*]} " == *" $a "* ]] || bases+=("$a"); done
for tag in debian:12 debian:12-slim; do
  bah manifest rm "docker.io/library/$tag" >/dev/null 2>&1 || true
  bah manifest create "docker.io/library/$tag" >/dev/null
done
for a in "${bases[@]}"; do
  tar=$(bash scripts/debian-root.sh base "$a")
  base=localhost/edgefd-base:bookworm-$a
  # Re-imported only when the cached tar is newer than the image made from it.
  stamp="$cache/buildah/base-$a.stamp"
  if ! bah inspect --type image "$base" >/dev/null 2>&1 || [ "$tar" -nt "$stamp" ]; then
    log "importing the debootstrapped Debian 12 $a base"
    p=$(platform "$a")
    ctr=$(bah from --pull-never scratch)
    bah add "$ctr" "$tar" / >/dev/null
    variant=()
    [ "$a" != armhf ] || variant=(--variant v7)
    bah config --os linux --arch "$(cut -d/ -f2 <<<"$p")" "${variant[@]}" --cmd /bin/bash \
      --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
    bah commit --rm --quiet "$ctr" "$base" >/dev/null
    touch "$stamp"
  fi
  for tag in debian:12 debian:12-slim; do
    bah manifest add "docker.io/library/$tag" "containers-storage:$base" >/dev/null
  done
done

run_in() {  # run_in ARCH IMAGE CMD...: as the image's user (10001), foreign ones under qemu
  local p img=$2
  p=$(platform "$1")
  shift 2
  local c rc=0
  c=$(bah from --pull-never --platform "$p" "${mounts[@]}" "$img")
  bah run --isolation chroot "$c" -- "$@" || rc=$?
  bah rm "$c" >/dev/null
  return $rc
}

shared=$(cd .. && pwd)/shared/devicetrees
mounts=()
[ -d "$shared" ] && mounts=(--volume "$shared:/dt:ro")
images=()
for a in "${arches[@]}"; do
  s=$SECONDS
  img=localhost/edgefd/edgefd:$version-$a
  log "building $img ($(platform "$a"))"
  # buildah 1.28 does not set BUILDPLATFORM itself.
  bah bud --isolation chroot --pull-never --layers --platform "$(platform "$a")" \
    --build-arg BUILDPLATFORM="$(platform "$host_arch")" \
    -f Dockerfile -t "$img" . >"$out/build-$a.log" 2>&1 || {
    tail -n 40 "$out/build-$a.log" >&2
    log "buildah bud for $a failed (log: $out/build-$a.log)"
    exit 1
  }
  file=$out/edgefd_${version}_$a.oci.tar
  rm -f "$file"
  bah push --quiet "$img" "oci-archive:$file:$name"
  python3 scripts/oci-name.py "$file" "$name"
  log "checking every binary inside the $a image"
  # Every binary the build installs, and exactly those: a new one not listed here fails too.
  want="edgefd-deviceplugin edgefd-deviceplugin-dra edgefd-labeller edgefd-labeller-agent edgefd-nri edgefd-pipeline"
  have=$(run_in "$a" "$img" /bin/sh -c 'cd /usr/local/bin && echo *')
  [ "$have" = "$want" ] || { log "the $a image has /usr/local/bin: $have; expected: $want"; exit 1; }
  for b in $want; do
    run_in "$a" "$img" "/usr/local/bin/$b" --version | head -n 3 >&2
  done
  if [ -d "$shared" ]; then
    run_in "$a" "$img" /usr/local/bin/edgefd-labeller --dry-run --dtb /dt/rockpro64.dtb | grep 'edgefd.io/soc=rockchip-rk3399' >&2
  else
    log "no ../shared/devicetrees: the labeller dry run over a real blob is skipped"
  fi
  run_in "$a" "$img" /usr/local/bin/edgefd-pipeline run --model conv --width 64 --height 64 --frames 3 | head -n 1 >&2
  size=$(bah images --format '{{.Size}}' "$img" | head -n 1)
  log "$file: $(du -m "$file" | cut -f1) MiB archive, image $size unpacked, built and checked in $((SECONDS - s)) s"
  images+=("$img")
done

if [ ${#images[@]} -gt 1 ]; then
  list=localhost/edgefd/edgefd:$version
  bah manifest rm "$list" >/dev/null 2>&1 || true
  bah manifest create "$list" >/dev/null
  for img in "${images[@]}"; do bah manifest add "$list" "containers-storage:$img" >/dev/null; done
  file=$out/edgefd_${version}_multiarch.oci.tar
  rm -f "$file"
  bah manifest push --all --quiet "$list" "oci-archive:$file:$name"
  python3 scripts/oci-name.py "$file" "$name"
  log "$file: manifest list of ${arches[*]}"
fi
log "done in $((SECONDS - t0)) s"
