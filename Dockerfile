# syntax=docker/dockerfile:1
# edgefd: one image with every installed binary (edgefd-labeller and the edgefd-labeller-agent
# it execs; the device plugin and pipeline runtime once they have install rules).
#   docker build -t edgefd/edgefd:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t edgefd/edgefd:0.1.0 .

# ---- build stage: the same Debian 12 packages CI uses, from the one list of them ----
FROM debian:12 AS build
COPY scripts/install-deps.sh /src/scripts/install-deps.sh
RUN /src/scripts/install-deps.sh && rm -rf /var/lib/apt/lists/*
COPY . /src
RUN cmake -S /src -B /build -G Ninja -DCMAKE_BUILD_TYPE=Release \
          -DEDGEFD_BUILD_TESTS=OFF -DEDGEFD_BUILD_BENCH=OFF \
 && cmake --build /build \
 && DESTDIR=/out cmake --install /build --prefix /usr/local --strip

# ---- runtime stage: only the shared libraries the binaries load ----
FROM debian:12-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libcpprest2.10 libssl3 libspdlog1.10 libfmt9 libyaml-cpp0.7 libfdt1 libudev1 \
      libgrpc++1.51 libprotobuf32 libprotobuf-lite32 libdnnl2 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 edgefd \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin edgefd
COPY --from=build /out/usr/local/bin/ /usr/local/bin/
# The DaemonSets set the same user; runAsNonRoot needs a numeric one.
USER 10001:10001
ENTRYPOINT ["/usr/local/bin/edgefd-labeller"]
CMD ["--root=/host"]
