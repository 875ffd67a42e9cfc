#!/usr/bin/env bash
# Debian 12 root filesystems of a target architecture, made from Debian's packages (no
# container registry needed) and cached under ~/.cache/edgefd/ so that reruns are instant:
#
#   debian-root.sh base ARCH      minbase Debian 12 as a tar (the image's base):
#                                 prints ~/.cache/edgefd/base-ARCH.tar
#   debian-root.sh sysroot ARCH   the base plus every library edgefd links, as -dev packages
#                                 (install-deps.sh --list sysroot), for cross builds:
#                                 prints ~/.cache/edgefd/sysroot-ARCH
#   debian-root.sh binfmt         registers qemu-user for foreign binaries (binfmt_misc)
#
# ARCH is a Debian architecture: amd64, arm64 or armhf. Foreign roots run their package
# scripts under qemu-user (binfmt_misc). Needs root, debootstrap, qemu-user-static and
# binfmt-support (install-deps.sh --cross). An optional -dev package that Debian does not build
# for ARCH is left out with a message (libdnnl-dev on armhf); the build then goes without it and
# says so.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cache=${EDGEFD_CACHE:-$HOME/.cache/edgefd}
mirror=${EDGEFD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${EDGEFD_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}
log() { echo "debian-root.sh: $*" >&2; }

binfmt() {
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (binfmt_misc, debootstrap, chroot)"
    exit 1
  fi
  if ! mountpoint -q /proc/sys/fs/binfmt_misc; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || [ ! -e /proc/sys/fs/binfmt_misc/qemu-arm ]; then
    update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
    update-binfmts --enable qemu-arm >/dev/null 2>&1 || true
  fi
  for f in qemu-aarch64 qemu-arm; do
    if ! grep -q '^enabled' "/proc/sys/fs/binfmt_misc/$f" 2>/dev/null; then
      log "qemu-user is not registered for $f (apt-get install qemu-user-static binfmt-support)"
      exit 1
    fi
  done
}

check_arch() {
  case "$1" in
    amd64 | arm64 | armhf) ;;
    *) log "unknown architecture '$1' (amd64, arm64, armhf)"; exit 2 ;;
  esac
}

# Runs a command inside ROOT with /proc and /dev mounted, unmounting them however it ends.
in_root() {
  local root=$1
  shift
  mount -t proc proc "$root/proc"
  mount --bind /dev "$root/dev"
  local rc=0
  chroot "$root" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 "$@" || rc=$?
  umount "$root/dev"
  umount "$root/proc"
  return $rc
}

base() {
  local arch=$1 tar="$cache/base-$1.tar"
  if [ -s "$tar" ]; then
    echo "$tar"
    return
  fi
  [ "$arch" = amd64 ] || binfmt
  mkdir -p "$cache"
  local dir
  dir=$(mktemp -d "$cache/base-$arch.XXXXXX")
  chmod 755 "$dir"  # the image's / : mktemp's 0700 would shut out its non-root user
  log "debootstrap --arch=$arch --variant=minbase bookworm (a minute or two)"
  debootstrap --arch="$arch" --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1 || {
    tail -n 20 "$dir.log" >&2
    log "debootstrap failed (log: $dir.log)"
    exit 1
  }
  # The same sources a Debian 12 container image has: updates and security too.
  rm -f "$dir/etc/apt/sources.list"
  cat >"$dir/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  # As in Debian's container images: no package caches, no man pages or docs.
  cat >"$dir/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
EOF
  cat >"$dir/etc/dpkg/dpkg.cfg.d/docker-excludes" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
EOF
  rm -rf "$dir"/var/cache/apt/archives/*.deb "$dir"/var/lib/apt/lists/* "$dir"/usr/share/doc/*/changelog* \
    "$dir"/usr/share/man/* "$dir"/usr/share/info/* "$dir"/usr/share/locale/*
  tar --numeric-owner --exclude='./dev/*' -C "$dir" -cf "$tar.tmp" .
  mv "$tar.tmp" "$tar"
  rm -rf "$dir" "$dir.log"
  echo "$tar"
}

sysroot() {
  local arch=$1 dir="$cache/sysroot-$1"
  # The package list decides: a changed list makes a new sysroot.
  local want
  want=$(bash "$here/install-deps.sh" --list sysroot | sort | tr '\n' ' ')
  if [ -f "$dir/.edgefd-stamp" ] && [ "$(cat "$dir/.edgefd-stamp")" = "$want" ]; then
    echo "$dir"
    return
  fi
  local tar
  tar=$(base "$arch")
  [ "$arch" = amd64 ] || binfmt
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  tar -C "$dir.tmp" -xf "$tar"
  log "installing the -dev packages into the $arch sysroot (a minute or two under emulation)"
  cp "$here/install-deps.sh" "$dir.tmp/tmp/install-deps.sh"
  in_root "$dir.tmp" bash /tmp/install-deps.sh --only sysroot >"$dir.log" 2>&1 || {
    tail -n 20 "$dir.log" >&2
    log "installing into the $arch sysroot failed (log: $dir.log)"
    exit 1
  }
  grep '^install-deps.sh:' "$dir.log" >&2 || true
  rm -f "$dir.tmp/tmp/install-deps.sh"
  # Absolute symlinks (libfoo.so -> /lib/...) would point into the build machine's root.
  find "$dir.tmp" -type l -lname '/*' -print0 | while IFS= read -r -d '' link; do
    ln -sfn "$(realpath -m --relative-to="$(dirname "$link")" "$dir.tmp$(readlink "$link")")" "$link"
  done
  rm -rf "$dir.tmp"/var/lib/apt/lists/* "$dir.tmp"/var/cache/apt/*
  echo "$want" >"$dir.tmp/.edgefd-stamp"
  mv "$dir.tmp" "$dir"
  rm -f "$dir.log"
  echo "$dir"
}

case "${1:-}" in
  base | sysroot)
    check_arch "${2:-}"
    "$1" "$2"
    ;;
  binfmt) binfmt ;;
  *)
    echo "usage: debian-root.sh base|sysroot ARCH | binfmt" >&2
    exit 2
    ;;
esac
