// What every link shares: the default PublishFrom, the check of every frame read from another
// process, and the choice of link for a --listen / --next address.
#include "edgefd/runtime/transport.h"

#include <cstring>
#include <optional>
#include <string>

namespace edgefd::runtime {

Status FrameWriter::PublishFrom(const FrameMeta& meta, const float* data) {
  std::memcpy(Buffer(), data, meta.shape.Bytes());
  return Publish(meta);
}

std::string CheckFrameMeta(const FrameMeta& meta, size_t max_bytes) {
  const Shape& s = meta.shape;
  if (s.h < 1 || s.w < 1 || s.c < 1) return "shape " + s.ToString() + " has a dimension below 1";
  // Divisions, not a product: no overflow whatever the dimensions.
  const size_t max_floats = max_bytes / sizeof(float);
  const size_t h = size_t(s.h), w = size_t(s.w), c = size_t(s.c);
  if (h > max_floats || w > max_floats / h || c > max_floats / (h * w)) {
    return "shape " + s.ToString() + " does not fit the link's " + std::to_string(max_bytes) +
           "-byte frames";
  }
  if (meta.stamp_count > uint32_t(kMaxStages)) {
    return std::to_string(meta.stamp_count) + " stage stamps, at most " +
           std::to_string(kMaxStages);
  }
  // Monotonic nanoseconds since boot: never negative, and far below 2^62 (146 years); the
  // sink subtracts them, which must not overflow.
  constexpr int64_t kMaxTimeNs = int64_t(1) << 62;
  auto bad = [](int64_t t) { return t < 0 || t > kMaxTimeNs; };
  if (bad(meta.t_source_ns)) return "source time " + std::to_string(meta.t_source_ns) + " ns";
  for (uint32_t i = 0; i < 2 * meta.stamp_count; ++i) {
    if (bad(meta.stamps[i])) return "stamp " + std::to_string(meta.stamps[i]) + " ns";
  }
  return {};
}

namespace {

std::optional<Error> TlsOnShm(const std::string& address, const LinkSecurity& tls) {
  if (!tls.Tls() && !tls.Token()) return std::nullopt;
  return Error{address +
               ": --token-file and --tls-cert/--tls-key/--tls-ca secure gRPC links; a shm ring "
               "is local to the node, and its file's permissions say who may use it"};
}

}  // namespace

Result<std::unique_ptr<FrameReader>> OpenReader(const std::string& address, Shape shape,
                                                Policy policy, const LinkSecurity& tls) {
  if (address.rfind("shm:", 0) == 0) {
    if (auto e = TlsOnShm(address, tls)) return *e;
    return OpenShmReader(address.substr(4), shape.Bytes(), policy);
  }
  return ListenGrpc(address, shape, policy, tls);
}

Result<std::unique_ptr<FrameWriter>> OpenWriter(const std::string& address, Shape shape,
                                                Policy policy,
                                                std::chrono::milliseconds reconnect_timeout,
                                                const LinkSecurity& tls) {
  if (address.rfind("shm:", 0) == 0) {
    if (auto e = TlsOnShm(address, tls)) return *e;
    return OpenShmWriter(address.substr(4), shape.Bytes(), policy, reconnect_timeout);
  }
  return ConnectGrpc(address, shape.Bytes(), reconnect_timeout, tls);
}

}  // namespace edgefd::runtime
