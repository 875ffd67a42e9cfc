// The per-frame work of links on a core class (planner.h, LinkCosts): what `calibrate`
// measures beside the layers, so the planner charges a stage for the frames it receives and
// sends on its own cores, not only for its compute.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <vector>

#include "edgefd/runtime/planner.h"
#include "edgefd/runtime/tensor.h"
#include "edgefd/runtime/transport.h"
#include "edgefd/runtime/wire_format.h"

namespace edgefd::runtime {
namespace {

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A loopback TCP port nobody listens on now.
Result<int> FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Error{std::string("socket: ") + std::strerror(errno)};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  if (port <= 0) return Error{"no free loopback port"};
  return port;
}

// Milliseconds of one frame of `elements` floats pushed over a gRPC link on loopback TCP and
// read at the other end, both ends in this process (the median of `iterations` frames).
Result<double> GrpcFrameMs(size_t elements, int iterations) {
  auto port = FreePort();
  if (!port) return port.error();
  const std::string address = "127.0.0.1:" + std::to_string(*port);
  const Shape shape{1, 1, int(elements)};
  auto reader = ListenGrpc(address, shape, Policy::kBlock);
  if (!reader) return reader.error();
  auto writer = ConnectGrpc(address, shape.Bytes(), std::chrono::seconds(10));
  if (!writer) return writer.error();
  std::vector<double> ms;
  for (int i = 0; i < iterations + 2; ++i) {
    FillUniform((*writer)->Buffer(), elements, uint64_t(i), 0, 1);
    FrameMeta meta;
    meta.seq = uint64_t(i + 1);
    meta.shape = shape;
    const int64_t t0 = NowNs();
    meta.t_source_ns = t0;
    meta.source_clock = ClockId();
    if (Status s = (*writer)->Publish(meta); !s) return s.error();
    FrameMeta got;
    const float* data = nullptr;
    if ((*reader)->Next(&got, &data, std::chrono::seconds(10)) != ReadResult::kFrame) {
      return Error{"link calibration: a frame did not arrive over " + address};
    }
    if (i >= 2) ms.push_back(double(NowNs() - t0) / 1e6);  // the first two warm the link
  }
  (void)(*writer)->Close();
  return Median(ms);
}

// Nanoseconds per element of `run` over `n` elements (the median of `iterations`).
template <typename Run>
double NsPerElement(size_t n, int iterations, Run run) {
  std::vector<double> ns;
  for (int i = 0; i < iterations + 1; ++i) {
    const int64_t t0 = NowNs();
    run();
    if (i > 0) ns.push_back(double(NowNs() - t0) / double(n));
  }
  return Median(ns);
}

// Everything but the gRPC link: copies and the wire formats' conversions.
void MeasureLocal(LinkCosts& c, int iterations) {
  constexpr size_t kElements = 1 << 20;  // 4 MiB of float32, larger than most caches' share
  Buffer a(kElements), b(kElements);
  FillUniform(a.data(), kElements, 7, -1, 1);
  const double copy_ns = NsPerElement(
      kElements, iterations, [&] { std::memcpy(b.data(), a.data(), kElements * sizeof(float)); });
  c.copy_gbps = copy_ns > 0 ? double(sizeof(float)) / copy_ns : 0;
  std::vector<uint8_t> wire(WireBytes(WireFormat::kFloat32, kElements));
  for (WireFormat f : {WireFormat::kFloat16, WireFormat::kInt8}) {
    const std::string name = WireFormatName(f);
    c.encode_ns[name] = NsPerElement(kElements, iterations,
                                     [&] { EncodeWire(f, a.data(), kElements, wire.data()); });
    c.decode_ns[name] = NsPerElement(
        kElements, iterations, [&] { (void)DecodeWire(f, wire.data(), kElements, b.data()); });
  }
}

// The whole measurement in this process (the child's): pinned to `cpu`.
Result<LinkCosts> MeasureHere(int cpu, int iterations) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) {
    return Error{"link calibration: cannot run on CPU " + std::to_string(cpu) + ": " +
                 std::strerror(errno)};
  }
  LinkCosts c;
  MeasureLocal(c, iterations);
  // Two sizes give the fixed and the per-byte part of a frame's trip.
  constexpr size_t kSmall = 1024, kLarge = 256 * 1024;  // 4 KiB and 1 MiB frames
  auto small = GrpcFrameMs(kSmall, iterations * 4);
  if (!small) return small.error();
  auto large = GrpcFrameMs(kLarge, iterations * 4);
  if (!large) return large.error();
  const double per_byte_ms =
      std::max(0.0, (*large - *small) / double((kLarge - kSmall) * sizeof(float)));
  c.hop_ns_per_byte = per_byte_ms * 1e6;
  c.hop_ms = std::max(0.0, *small - per_byte_ms * double(kSmall * sizeof(float)));
  return c;
}

}  // namespace

Result<LinkCosts> CalibrateLinks(int cpu, int iterations) {
  // In a child process: gRPC's threads are made there, on the class's core, and end with it;
  // this process's own threads (OpenMP's) keep their places.
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return Error{std::string("pipe: ") + std::strerror(errno)};
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return Error{std::string("fork: ") + std::strerror(errno)};
  }
  if (pid == 0) {
    ::close(fds[0]);
    auto c = MeasureHere(cpu, iterations);
    const std::string text = c ? DumpJson(LinkCostsJson(*c)) : "!" + c.error().message;
    size_t done = 0;
    while (done < text.size()) {
      const ssize_t n = ::write(fds[1], text.data() + done, text.size() - done);
      if (n <= 0) break;
      done += size_t(n);
    }
    ::_exit(c ? 0 : 1);
  }
  ::close(fds[1]);
  std::string text;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  bool timed_out = false;
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd p{fds[0], POLLIN, 0};
    const int ready = ::poll(&p, 1, int(left.count()));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = ::read(fds[0], buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    text.append(buf, size_t(n));
    if (text.size() > (1 << 16)) break;
  }
  ::close(fds[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) return Error{"link calibration: no answer within 120 s"};
  if (!text.empty() && text[0] == '!') return Error{text.substr(1)};
  auto doc = ParseJson(text, "link calibration");
  if (!doc) return doc.error();
  return ParseLinkCosts(*doc, "link calibration");
}

}  // namespace edgefd::runtime
