# syntax=docker/dockerfile:1
# edgefd: one image with every installed binary (edgefd-labeller and the edgefd-labeller-agent
# it execs, edgefd-deviceplugin, edgefd-nri, edgefd-pipeline, edgefd-plan), for linux/amd64,
# linux/arm64, linux/arm/v7.
#   bash scripts/image.sh --arch all     buildah on a Debian 12 base made by debootstrap
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t edgefd/edgefd:0.1.0 .
#
# Nothing compiles under emulation (hours on 2 cores): the build stage runs on the build
# machine's platform and cross-compiles against the target's libraries, which the sysroot
# stage installs on the target's platform (only apt runs there, under qemu-user when foreign).
# Package names come from scripts/install-deps.sh, the one list of them.
#   bash scripts/image.sh --from-build build    the runtime stage alone (--target runtime) with
#                                               the binaries of a build tree copied in

# ---- runtime: only the shared libraries the binaries load, the user, the entrypoint. First, so
# that `--target runtime` builds it and nothing else.
# The platform is spelled out: buildah 1.28 otherwise took the build machine's base (and its
# cached layers) here.
FROM --platform=$TARGETPLATFORM debian:12-slim AS runtime
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh --only runtime \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh \
 && groupadd --system --gid 10001 edgefd \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin edgefd
# The DaemonSets set the same user; runAsNonRoot needs a numeric one.
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/edgefd-labeller"]
CMD ["--root=/host"]

# ---- the target's Debian 12 with the -dev packages edgefd links: the cross build's sysroot
FROM --platform=$TARGETPLATFORM debian:12 AS sysroot
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN bash /tmp/install-deps.sh --only sysroot \
 && rm -rf /var/lib/apt/lists/* /tmp/install-deps.sh

# ---- build stage: the build machine's compilers, a cross compiler for a foreign target. With a
# compiler cache mounted at /ccache (scripts/image.sh mounts the one every build shares), it
# compiles through it.
FROM --platform=$BUILDPLATFORM debian:12 AS build
ARG TARGETARCH
COPY scripts/install-deps.sh /tmp/install-deps.sh
RUN case "$TARGETARCH" in arm) deb=armhf ;; *) deb=$TARGETARCH ;; esac \
 && bash /tmp/install-deps.sh --only build --target-arch "$deb" \
 && rm -rf /var/lib/apt/lists/*
COPY --from=sysroot / /sysroot
COPY . /src
RUN case "$TARGETARCH" in \
      amd64) triple=x86_64-linux-gnu ;; \
      arm64) triple=aarch64-linux-gnu ;; \
      arm) triple=arm-linux-gnueabihf ;; \
      *) echo "no toolchain for $TARGETARCH" >&2; exit 1 ;; \
    esac \
 && set -- \
 && if [ -d /ccache ]; then \
      export CCACHE_DIR=/ccache CCACHE_BASEDIR=/src; \
      set -- -DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache; \
    fi \
 && cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DCMAKE_TOOLCHAIN_FILE=/src/cmake/toolchains/$triple.cmake -DEDGEFD_SYSROOT=/sysroot \
          -DEDGEFD_BUILD_TESTS=OFF -DEDGEFD_BUILD_BENCH=OFF "$@" \
 && cmake --build /build \
 && DESTDIR=/out cmake --install /build --prefix /usr/local --strip

# ---- the image: the runtime stage and the binaries
FROM runtime
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
