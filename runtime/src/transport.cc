// What every link shares: the default PublishFrom, the check of every frame read from another
// process, and the choice of link for a --listen / --next address.
#include "edgefd/runtime/transport.h"

#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "edgefd/common/files.h"
#include "edgefd/common/hash.h"

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
  if (meta.stage_count > uint32_t(kMaxStages)) {
    return std::to_string(meta.stage_count) + " stages' times, at most " +
           std::to_string(kMaxStages);
  }
  // Monotonic nanoseconds since boot: never negative, and far below 2^62 (146 years).
  constexpr int64_t kMaxTimeNs = int64_t(1) << 62;
  if (meta.t_source_ns < 0 || meta.t_source_ns > kMaxTimeNs) {
    return "source time " + std::to_string(meta.t_source_ns) + " ns";
  }
  auto bad = [](int64_t d) { return d < 0 || d > kMaxDurationNs; };
  if (bad(meta.source_send_ns)) {
    return "source send time " + std::to_string(meta.source_send_ns) + " ns";
  }
  for (uint32_t i = 0; i < meta.stage_count; ++i) {
    const StageTimes& t = meta.stages[i];
    if (bad(t.wait_ns) || bad(t.compute_ns) || bad(t.send_ns)) {
      return "stage " + std::to_string(i) + " times (wait " + std::to_string(t.wait_ns) +
             ", compute " + std::to_string(t.compute_ns) + ", send " + std::to_string(t.send_ns) +
             " ns)";
    }
  }
  return {};
}

namespace {

// A small /proc file, or "" when it cannot be read (or is larger than `limit`).
std::string ReadSmallFile(const char* path, size_t limit) {
  Result<std::string> text = ReadFileAtMost(path, limit, path);
  return text ? std::move(*text) : std::string();
}

uint64_t ComputeClockId() {
  // The boot ID names the machine's boot; /proc/self/timens_offsets (Linux 5.6+, absent
  // where there are no time namespaces: offset 0) the offset of this process's namespace.
  std::string who = ReadSmallFile("/proc/sys/kernel/random/boot_id", 64);
  const std::string offsets = ReadSmallFile("/proc/self/timens_offsets", 256);
  const size_t mono = offsets.find("monotonic");
  if (mono != std::string::npos) {
    long long sec = 0, nsec = 0;
    if (std::sscanf(offsets.c_str() + mono, "monotonic %lld %lld", &sec, &nsec) == 2) {
      who += "|" + std::to_string(sec) + "." + std::to_string(nsec);
    }
  }
  // Without /proc nothing says two processes share a clock: a name of this process alone,
  // so the sink reports latency only when it runs the source itself.
  if (who.empty()) who = "process " + std::to_string(getpid()) + " " + std::to_string(NowNs());
  const uint64_t id = Fnv1a64(who);
  return id == 0 ? 1 : id;
}

}  // namespace

uint64_t ClockId() {
  static const uint64_t id = ComputeClockId();
  return id;
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
