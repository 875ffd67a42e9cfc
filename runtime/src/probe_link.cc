// The link probe (probe_link.h): TCP with poll() deadlines on every wait.
#include "edgefd/runtime/probe_link.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "edgefd/common/unique_fd.h"
#include "edgefd/runtime/tensor.h"

namespace edgefd::runtime {
namespace {

using Clock = std::chrono::steady_clock;

constexpr size_t kChunk = 64 * 1024;
/// The client says how long it sends; the server waits at most this much longer for it.
constexpr uint32_t kMaxSendMs = 600000;

struct HostPort {
  std::string host, port;
};

Result<HostPort> SplitAddress(const std::string& address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string::npos || colon + 1 == address.size()) {
    return Error{"'" + address + "' is not HOST:PORT or :PORT"};
  }
  HostPort hp{address.substr(0, colon), address.substr(colon + 1)};
  if (hp.host.size() >= 2 && hp.host.front() == '[' && hp.host.back() == ']') {
    hp.host = hp.host.substr(1, hp.host.size() - 2);
  }
  return hp;
}

// Waits until `fd` is ready for `events` or `deadline` passes.
bool WaitFd(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, int(std::min<int64_t>(left.count(), 1 << 30)));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

Status SendAll(int fd, const void* data, size_t n, Clock::time_point deadline,
               const std::string& who) {
  const auto* p = static_cast<const uint8_t*>(data);
  while (n > 0) {
    if (!WaitFd(fd, POLLOUT, deadline)) return Error{who + ": send timed out"};
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (w <= 0) return Error{who + ": send failed: " + std::strerror(errno)};
    p += w;
    n -= size_t(w);
  }
  return Ok{};
}

Status RecvAll(int fd, void* data, size_t n, Clock::time_point deadline, const std::string& who) {
  auto* p = static_cast<uint8_t*>(data);
  while (n > 0) {
    if (!WaitFd(fd, POLLIN, deadline)) return Error{who + ": no answer in time"};
    const ssize_t r = ::recv(fd, p, n, 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r == 0) return Error{who + ": the peer closed the connection"};
    if (r < 0) return Error{who + ": receive failed: " + std::strerror(errno)};
    p += r;
    n -= size_t(r);
  }
  return Ok{};
}

// The segment sizes of a connected TCP socket (LinkProbe::mss, mtu); left 0 where unknown.
void SegmentSizes(int fd, LinkProbe* probe) {
  tcp_info info{};
  socklen_t len = sizeof info;
  if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len) == 0)
    probe->mss = int(info.tcpi_snd_mss);
  sockaddr_storage ss{};
  socklen_t ss_len = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &ss_len) != 0) return;
  int mtu = 0;
  len = sizeof mtu;
  const bool v6 = ss.ss_family == AF_INET6;
  if (::getsockopt(fd, v6 ? IPPROTO_IPV6 : IPPROTO_IP, v6 ? IPV6_MTU : IP_MTU, &mtu, &len) == 0) {
    probe->mtu = mtu;
  }
}

Result<UniqueFd> Listen(const std::string& address, int* port) {
  auto hp = SplitAddress(address);
  if (!hp) return hp.error();
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(hp->host.empty() ? nullptr : hp->host.c_str(), hp->port.c_str(),
                             &hints, &res);
      rc != 0) {
    return Error{address + ": " + ::gai_strerror(rc)};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
  UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Error{address + ": socket: " + std::strerror(errno)};
  const int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd.get(), res->ai_addr, res->ai_addrlen) != 0 || ::listen(fd.get(), 4) != 0) {
    return Error{address + ": cannot listen: " + std::strerror(errno)};
  }
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&ss), &len);
  *port = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  return fd;
}

}  // namespace

Result<LinkProbe> ServeLinkProbe(const std::string& address, std::chrono::milliseconds timeout,
                                 const std::function<void(int port)>& on_listening) {
  int port = 0;
  auto listener = Listen(address, &port);
  if (!listener) return listener.error();
  if (on_listening) on_listening(port);
  const std::string who = "probe-link " + address;
  if (!WaitFd(listener->get(), POLLIN, Clock::now() + timeout)) {
    return Error{who + ": no client connected within " + std::to_string(timeout.count()) + " ms"};
  }
  UniqueFd fd(::accept4(listener->get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
  if (!fd.valid()) return Error{who + ": accept: " + std::strerror(errno)};
  // The client first says how long it will send (ms, big-endian), bounded.
  uint32_t send_ms_be = 0;
  if (Status s = RecvAll(fd.get(), &send_ms_be, sizeof send_ms_be, Clock::now() + timeout, who);
      !s) {
    return s.error();
  }
  const uint32_t send_ms = ntohl(send_ms_be);
  if (send_ms == 0 || send_ms > kMaxSendMs) {
    return Error{who + ": the client asked for " + std::to_string(send_ms) + " ms of sending"};
  }
  const auto deadline = Clock::now() + std::chrono::milliseconds(send_ms) + timeout;
  std::vector<uint8_t> buf(kChunk);
  LinkProbe probe;
  int64_t first_ns = 0, last_ns = 0;
  uint64_t first_bytes = 0;
  for (;;) {
    if (!WaitFd(fd.get(), POLLIN, deadline)) return Error{who + ": the client stalled"};
    const ssize_t r = ::recv(fd.get(), buf.data(), buf.size(), 0);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r < 0) return Error{who + ": receive failed: " + std::strerror(errno)};
    if (r == 0) break;  // the client shut down its sending side: done
    last_ns = NowNs();
    // The first read's bytes arrived before the clock started: left out of the rate.
    if (first_ns == 0) {
      first_ns = last_ns;
      first_bytes = uint64_t(r);
    }
    probe.bytes += uint64_t(r);
  }
  probe.bytes -= first_bytes;
  probe.seconds = double(last_ns - first_ns) / 1e9;
  SegmentSizes(fd.get(), &probe);
  uint64_t reply[2] = {probe.bytes, uint64_t(last_ns - first_ns)};
  if (Status s = SendAll(fd.get(), reply, sizeof reply, Clock::now() + timeout, who); !s) {
    return s.error();
  }
  return probe;
}

Result<LinkProbe> ProbeLink(const std::string& address, std::chrono::milliseconds duration,
                            std::chrono::milliseconds timeout) {
  const std::string who = "probe-link " + address;
  auto hp = SplitAddress(address);
  if (!hp) return hp.error();
  if (duration.count() < 1 || duration.count() > kMaxSendMs) {
    return Error{who + ": --seconds out of range"};
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(hp->host.c_str(), hp->port.c_str(), &hints, &res); rc != 0) {
    return Error{who + ": " + ::gai_strerror(rc)};
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> owner(res, &::freeaddrinfo);
  UniqueFd fd(::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return Error{who + ": socket: " + std::strerror(errno)};
  const auto connect_deadline = Clock::now() + timeout;
  if (::connect(fd.get(), res->ai_addr, res->ai_addrlen) != 0 && errno != EINPROGRESS) {
    return Error{who + ": cannot connect: " + std::strerror(errno)};
  }
  if (!WaitFd(fd.get(), POLLOUT, connect_deadline)) {
    return Error{who + ": no connection within " + std::to_string(timeout.count()) +
                 " ms (is 'edgefd-pipeline probe-link --listen' running there?)"};
  }
  int err = 0;
  socklen_t len = sizeof err;
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) return Error{who + ": cannot connect: " + std::strerror(err)};
  const uint32_t send_ms = htonl(uint32_t(duration.count()));
  if (Status s = SendAll(fd.get(), &send_ms, sizeof send_ms, Clock::now() + timeout, who); !s) {
    return s.error();
  }
  std::vector<uint8_t> chunk(kChunk, 0x5a);
  const auto stop = Clock::now() + duration;
  while (Clock::now() < stop) {
    if (Status s = SendAll(fd.get(), chunk.data(), chunk.size(), stop + timeout, who); !s) {
      return s.error();
    }
  }
  ::shutdown(fd.get(), SHUT_WR);
  uint64_t reply[2] = {0, 0};
  if (Status s = RecvAll(fd.get(), reply, sizeof reply, Clock::now() + timeout, who); !s) {
    return s.error();
  }
  LinkProbe probe;
  probe.bytes = reply[0];
  probe.seconds = double(reply[1]) / 1e9;
  SegmentSizes(fd.get(), &probe);
  return probe;
}

}  // namespace edgefd::runtime
