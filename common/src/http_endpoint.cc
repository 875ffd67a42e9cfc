// A few lines of HTTP on one thread: the health and metrics endpoints of every edgefd binary.
// Every connection is a non-blocking socket in one poll set with a deadline of its own, so no
// client, however slow, holds the thread.
#include "edgefd/common/http_endpoint.h"

#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <vector>

#include "edgefd/common/http_wire.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd {
namespace {

using Clock = std::chrono::steady_clock;

class HttpEndpointImpl final : public HttpEndpoint {
 public:
  HttpEndpointImpl(UniqueFd listener, uint16_t port, Handler handler, HttpEndpointLimits limits)
      : listener_(std::move(listener)),
        stop_(eventfd(0, EFD_CLOEXEC)),
        port_(port),
        handler_(std::move(handler)),
        limits_(limits),
        thread_([this] { Serve(); }) {}

  ~HttpEndpointImpl() override {
    uint64_t one = 1;
    ssize_t ignored = write(stop_.get(), &one, sizeof one);
    (void)ignored;
    thread_.join();
  }

  uint16_t port() const override { return port_; }

 private:
  struct Connection {
    UniqueFd fd;
    Clock::time_point deadline;
    std::string in;   // the request so far
    std::string out;  // the answer, once the request is complete
    size_t sent = 0;
    bool draining = false;  // answered; reading what the client still sends until it closes
    uint64_t round = 0;     // the round of Serve that accepted it
  };

  void Serve() {
    std::vector<pollfd> fds;
    for (;;) {
      fds.clear();
      fds.push_back({listener_.get(), POLLIN, 0});
      fds.push_back({stop_.get(), POLLIN, 0});
      for (const Connection& c : connections_) {
        fds.push_back({c.fd.get(), short(!c.out.empty() && !c.draining ? POLLOUT : POLLIN), 0});
      }
      if (poll(fds.data(), fds.size(), PollTimeoutMs()) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("http endpoint: poll: {}", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      // Serve the connections that have something, then drop those that are done or too slow.
      for (size_t i = 0; i < connections_.size(); ++i) {
        if (fds[i + 2].revents != 0) Progress(connections_[i]);
      }
      const auto now = Clock::now();
      std::erase_if(connections_,
                    [now](const Connection& c) { return !c.fd.valid() || now >= c.deadline; });
      ++round_;
      if (fds[0].revents != 0) Accept();
    }
  }

  int PollTimeoutMs() const {
    if (connections_.empty()) return -1;
    auto first = std::min_element(connections_.begin(), connections_.end(),
                                  [](const Connection& a, const Connection& b) {
                                    return a.deadline < b.deadline;
                                  })
                     ->deadline;
    auto left = std::chrono::ceil<std::chrono::milliseconds>(first - Clock::now()).count();
    return int(std::clamp<int64_t>(left, 0, 60000));
  }

  void Accept() {
    for (;;) {
      UniqueFd fd(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!fd.valid()) return;  // EAGAIN: no more waiting (or a transient error: next poll)
      connections_.push_back(
          {std::move(fd), Clock::now() + limits_.request_deadline, {}, {}, 0, false, round_});
      // A probe sends its request with the connection: answer it now if it is here.
      Progress(connections_.back());
      if (!connections_.back().fd.valid()) connections_.pop_back();
      while (int(connections_.size()) > limits_.max_connections) {
        if (!Evict()) return;  // the rest wait in the backlog until this round's were served
      }
    }
  }

  // Makes room for one connection. The table is full either of clients that have been
  // answered, of clients that connect and say nothing, or of slow ones: close the first
  // kind first, then the oldest silent one, then the oldest. A connection accepted in this
  // round is never chosen, so every client gets at least one poll (a burst of connections
  // behind a probe used to push the probe out before its request was read); if only those
  // are left, the caller stops accepting until the next round (the table holds one more than
  // its limit meanwhile). False when nothing was closed.
  bool Evict() {
    auto rank = [](const Connection& c) { return c.draining ? 0 : c.in.empty() ? 1 : 2; };
    auto victim = connections_.end();
    for (auto it = connections_.begin(); it != connections_.end(); ++it) {
      if (it->round == round_) continue;
      if (victim == connections_.end() || rank(*it) < rank(*victim) ||
          (rank(*it) == rank(*victim) && it->deadline < victim->deadline)) {
        victim = it;
      }
    }
    if (victim == connections_.end()) return false;
    if (victim->draining) Progress(*victim);  // what it still sent, so closing resets nothing
    connections_.erase(victim);
    return true;
  }

  // Reads what arrived or writes what the socket takes; closes the connection when done.
  void Progress(Connection& c) {
    if (c.draining) {
      // Closing with unread bytes would reset the connection and could destroy the answer in
      // flight; so discard them until the client closes (or its deadline).
      char buf[4096];
      ssize_t n = recv(c.fd.get(), buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) c.fd.Reset();
      return;
    }
    if (c.out.empty()) {
      char buf[4096];
      ssize_t n = recv(c.fd.get(), buf, sizeof buf, 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        c.fd.Reset();
        return;
      }
      if (n < 0) return;
      c.in.append(buf, size_t(n));
      if (c.in.size() > limits_.max_request_bytes) {
        c.out = FormatHttpResponse(400, "text/plain", "request too large\n", {}, true);
      } else if (c.in.find("\r\n\r\n") != std::string::npos) {
        c.out = Answer(c.in);
      } else {
        return;  // more to come
      }
    }
    ssize_t n =
        send(c.fd.get(), c.out.data() + c.sent, c.out.size() - c.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n > 0) c.sent += size_t(n);
    if (n <= 0) {
      c.fd.Reset();
    } else if (c.sent == c.out.size()) {  // one request per connection
      shutdown(c.fd.get(), SHUT_WR);
      c.draining = true;
    }
  }

  // The answer to a complete request head in `in` (a GET carries no body).
  std::string Answer(std::string& in) {
    auto request = ReadHttpRequest([](char*, size_t) { return 0L; }, in, limits_.max_request_bytes);
    if (!request || !*request) {
      return FormatHttpResponse(400, "text/plain", "bad request\n", {}, true);
    }
    const HttpRequest& req = **request;
    if (req.method != "GET" && req.method != "HEAD") {
      return FormatHttpResponse(405, "text/plain", "only GET\n", "Allow: GET, HEAD\r\n", true);
    }
    HttpReply reply = handler_(req.Path());
    std::string response =
        FormatHttpResponse(reply.status, reply.content_type, reply.body, {}, true);
    if (req.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
    return response;
  }

  UniqueFd listener_;
  UniqueFd stop_;
  uint16_t port_;
  Handler handler_;
  HttpEndpointLimits limits_;
  std::vector<Connection> connections_;  // the serving thread's alone
  uint64_t round_ = 0;                   // rounds of poll, for Evict
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& address,
                                                          Handler handler, const std::string& flag,
                                                          HttpEndpointLimits limits) {
  const std::string where = flag + " '" + address + "'";
  size_t colon = address.rfind(':');
  if (colon == std::string::npos) return Error{where + ": expected HOST:PORT or :PORT"};
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found);
      rc != 0) {
    return Error{where + ": " + gai_strerror(rc)};
  }
  std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> list(found, &freeaddrinfo);
  std::string last_error = "no address";
  for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
    UniqueFd fd(
        socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK, ai->ai_protocol));
    if (!fd.valid()) continue;
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd.get(), SOMAXCONN) != 0) {
      last_error = std::strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    uint16_t bound_port =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return std::unique_ptr<HttpEndpoint>(
        std::make_unique<HttpEndpointImpl>(std::move(fd), bound_port, std::move(handler), limits));
  }
  return Error{where + ": cannot listen: " + last_error};
}

}  // namespace edgefd
