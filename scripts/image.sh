#!/usr/bin/env bash
# Builds the edgefd image from the Dockerfile with buildah, for real, on this machine: no
# container registry is needed. The Debian 12 base comes from Debian's packages (debootstrap,
# cached in ~/.cache/edgefd/base-ARCH.tar), imported per architecture into a local manifest list
# under the name the Dockerfile's FROM lines use (debian:12, debian:12-slim).
#
#   image.sh [--arch amd64|arm64|armhf|all]     (default: this machine's architecture)
#   image.sh --from-build DIR [--arch A]        the binaries of the build tree DIR instead
#
# The Dockerfile compiles every binary inside buildah (a cross build against a sysroot stage of
# the target). --from-build skips that: it builds the installed programs in DIR (configuring
# it with scripts/build.sh if need be), installs them stripped and copies them onto the
# Dockerfile's runtime stage, the same base, libraries, user and entrypoint. The e2e suite uses
# it with ./build, which CI's host part has already compiled. DIR must be a Release build made
# for shipping: not a test.sh --arch tree (EDGEFD_RUN_FROM_SYSROOT bakes the build machine's
# sysroot paths into the binaries) and not -DEDGEFD_NATIVE_KERNELS=ON. Its architecture is that
# of its binaries (a --arch that differs is an error).
#
# Writes, for each architecture, build/image/edgefd_<version>_<arch>.oci.tar (an OCI archive
# whose image is named docker.io/edgefd/edgefd:<version>: `ctr -n k8s.io images import FILE`
# makes the manifests' edgefd/edgefd:<version> resolve) and, with several, the manifest list of
# all of them in build/image/edgefd_<version>_multiarch.oci.tar. Then it runs every installed
# binary inside each image (foreign ones under qemu-user): --version, a labeller dry run over a
# real devicetree from ../shared (when present), a short conv run of the pipeline.
# buildah's storage (layers reused by reruns) is ~/.cache/edgefd/buildah ($EDGEFD_CACHE). The
# Dockerfile's build stage compiles through ccache with the directory every other build uses
# (scripts/build.sh): a changed source recompiles only what changed, also after buildah's
# layers are invalidated.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
here=$(pwd)
host_arch=$(dpkg --print-architecture)
arches=("$host_arch")
arch_given=
from_build=
while [ $# -gt 0 ]; do
  case "$1" in
    --arch)
      case "${2:-}" in
        all) arches=(amd64 arm64 armhf) ;;
        amd64 | arm64 | armhf) arches=("$2") ;;
        *) echo "image.sh: --arch amd64|arm64|armhf|all" >&2; exit 2 ;;
      esac
      arch_given=$2
      shift
      ;;
    --from-build) from_build=$(cd "$caller" && realpath -m "${2:?--from-build needs a build directory}"); shift ;;
    *) echo "usage: image.sh [--arch amd64|arm64|armhf|all] [--from-build DIR]" >&2; exit 2 ;;
  esac
  shift
done

version=$(sed -n 's/^project(edgefd VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
name=docker.io/edgefd/edgefd:$version
cache=${EDGEFD_CACHE:-$HOME/.cache/edgefd}
out=build/image
log() { echo "image.sh: $*" >&2; }
die() { log "$*"; exit 1; }
t0=$SECONDS
# Every binary the build installs, and exactly those: a new one not listed here fails the check
# inside the image.
binaries=(edgefd-deviceplugin edgefd-deviceplugin-dra edgefd-labeller edgefd-labeller-agent
          edgefd-nri edgefd-pipeline edgefd-plan)

# --from-build: the programs of DIR, installed (stripped) into build/image/from-build-ARCH.
if [ -n "$from_build" ]; then
  targets=()
  for b in "${binaries[@]}"; do targets+=(--target "$b"); done
  if [ -f "$from_build/CMakeCache.txt" ]; then
    # A tree made for something else is refused before anything is built or installed.
    cached() { sed -n "s/^$1:[A-Z]*=//p" "$from_build/CMakeCache.txt"; }
    [ "$(cached CMAKE_BUILD_TYPE)" = Release ] ||
      die "$from_build is a '$(cached CMAKE_BUILD_TYPE)' build; the image ships Release builds (scripts/build.sh)"
    [ "$(cached EDGEFD_RUN_FROM_SYSROOT)" != ON ] ||
      die "$from_build was built with EDGEFD_RUN_FROM_SYSROOT=ON (scripts/test.sh --arch): its binaries load the build machine's sysroot; configure a tree without it"
    [ "$(cached EDGEFD_NATIVE_KERNELS)" != ON ] ||
      die "$from_build was built with EDGEFD_NATIVE_KERNELS=ON: its binaries run only on this machine's CPU"
    cmake --build "$from_build" -j"$(nproc)" "${targets[@]}" >&2
  else
    bash scripts/build.sh --dir "$from_build" "${targets[@]}" >&2
  fi
  machine=$(readelf -h "$from_build/labeller/edgefd-labeller" | sed -n 's/^ *Machine: *//p')
  case "$machine" in
    *X86-64) built_arch=amd64 ;;
    AArch64) built_arch=arm64 ;;
    ARM) built_arch=armhf ;;
    *) die "$from_build holds binaries for '$machine', not amd64, arm64 or armhf" ;;
  esac
  [ -z "$arch_given" ] || [ "$arch_given" = "$built_arch" ] ||
    die "$from_build holds $built_arch binaries, not $arch_given"
  arches=("$built_arch")
  staged=$out/from-build-$built_arch
  rm -rf "$staged"
  DESTDIR=$(realpath -m "$staged") cmake --install "$from_build" --prefix /usr/local --strip >/dev/null
fi

bash scripts/install-deps.sh --only image >/dev/null
bash scripts/debian-root.sh binfmt
ccache_dir=${CCACHE_DIR:-$cache/ccache}
mkdir -p "$out" "$cache/buildah" "$ccache_dir"
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

# The checks run in one working container per image (vfs copies the whole image into each
# new container: one per check made them most of the script's time).
checker=
trap '[ -z "$checker" ] || bah rm "$checker" >/dev/null 2>&1' EXIT
run_in() {  # run_in CMD...: in $checker as the image's user (10001), foreign ones under qemu
  bah run --isolation chroot "$checker" -- "$@"
}

shared=$(cd .. && pwd)/shared/devicetrees
mounts=()
[ -d "$shared" ] && mounts=(--volume "$shared:/dt:ro")
images=()
for a in "${arches[@]}"; do
  s=$SECONDS
  img=localhost/edgefd/edgefd:$version-$a
  # buildah 1.28 does not set BUILDPLATFORM itself. The build stage finds the compiler cache
  # at /ccache.
  bud=(bah bud --isolation chroot --pull-never --layers --platform "$(platform "$a")"
       --build-arg BUILDPLATFORM="$(platform "$host_arch")" -f Dockerfile)
  if [ -n "$from_build" ]; then
    log "building $img ($(platform "$a")) from the binaries of $from_build"
    "${bud[@]}" --target runtime -t "localhost/edgefd/edgefd-runtime:$version-$a" . \
      >"$out/build-$a.log" 2>&1 || {
      tail -n 40 "$out/build-$a.log" >&2
      die "buildah bud --target runtime for $a failed (log: $out/build-$a.log)"
    }
    # The image this replaces is no layer cache of anything: removed, or each run would leave
    # one more full copy in the vfs storage.
    previous=$(bah images --quiet --no-trunc "$img" 2>/dev/null || true)
    c=$(bah from --pull-never "localhost/edgefd/edgefd-runtime:$version-$a")
    bah copy --chown 0:0 "$c" "$staged/usr/local/bin/" /usr/local/bin/ >/dev/null
    bah commit --rm --quiet "$c" "$img" >/dev/null
    [ -z "$previous" ] || bah rmi "$previous" >/dev/null 2>&1 || true
  else
    log "building $img ($(platform "$a"))"
    "${bud[@]}" --volume "$ccache_dir:/ccache" -t "$img" . >"$out/build-$a.log" 2>&1 || {
      tail -n 40 "$out/build-$a.log" >&2
      die "buildah bud for $a failed (log: $out/build-$a.log)"
    }
  fi
  file=$out/edgefd_${version}_$a.oci.tar
  rm -f "$file"
  bah push --quiet "$img" "oci-archive:$file:$name"
  python3 scripts/oci-name.py "$file" "$name"
  log "checking every binary inside the $a image"
  checker=$(bah from --pull-never --platform "$(platform "$a")" "${mounts[@]}" "$img")
  want="${binaries[*]}"
  have=$(run_in /bin/sh -c 'cd /usr/local/bin && echo *')
  [ "$have" = "$want" ] || { log "the $a image has /usr/local/bin: $have; expected: $want"; exit 1; }
  for b in $want; do
    run_in "/usr/local/bin/$b" --version | head -n 3 >&2
  done
  if [ -d "$shared" ]; then
    run_in /usr/local/bin/edgefd-labeller --dry-run --dtb /dt/rockpro64.dtb | grep 'edgefd.io/soc=rockchip-rk3399' >&2
  else
    log "no ../shared/devicetrees: the labeller dry run over a real blob is skipped"
  fi
  run_in /usr/local/bin/edgefd-pipeline run --model conv --width 64 --height 64 --frames 3 | head -n 1 >&2
  bah rm "$checker" >/dev/null
  checker=
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
