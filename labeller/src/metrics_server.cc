// The agent's health and metrics endpoint: a few lines of HTTP on one thread, so the agent
// needs no HTTP server library and stays small.
#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "edgefd/http_wire.h"
#include "edgefd/metrics.h"

namespace edgefd {
namespace {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  Fd& operator=(Fd&& other) noexcept {
    std::swap(fd_, other.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

void AppendMetric(std::string& out, const char* name, const char* type, const char* help,
                  double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" +
         name + " ";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g\n", value);
  out += buf;
}

class HealthServerImpl final : public HealthServer {
 public:
  HealthServerImpl(Fd listener, uint16_t port, const AgentMetrics& metrics)
      : listener_(std::move(listener)),
        stop_(eventfd(0, EFD_CLOEXEC)),
        port_(port),
        metrics_(metrics),
        thread_([this] { Serve(); }) {}

  ~HealthServerImpl() override {
    uint64_t one = 1;
    ssize_t ignored = write(stop_.get(), &one, sizeof one);
    (void)ignored;
    thread_.join();
  }

  uint16_t port() const override { return port_; }

 private:
  void Serve() {
    pollfd fds[2] = {{listener_.get(), POLLIN, 0}, {stop_.get(), POLLIN, 0}};
    while (true) {
      if (poll(fds, 2, -1) < 0) {
        if (errno == EINTR) continue;
        spdlog::error("metrics endpoint: poll: {}", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) {
        Fd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (conn.get() >= 0) Handle(conn.get());
      }
    }
  }

  // One request per connection; probes and scrapers reconnect anyway.
  void Handle(int fd) {
    timeval tv{2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    std::string pending;
    auto request = ReadHttpRequest(
        [fd](char* buf, size_t n) { return static_cast<long>(recv(fd, buf, n, 0)); }, pending,
        16 * 1024);
    std::string response;
    if (!request || !*request) {
      response = FormatHttpResponse(400, "text/plain", "bad request\n", {}, true);
    } else {
      const HttpRequest& req = **request;
      std::string_view path = req.Path();
      if (req.method != "GET" && req.method != "HEAD") {
        response =
            FormatHttpResponse(405, "text/plain", "only GET\n", "Allow: GET, HEAD\r\n", true);
      } else if (path == "/healthz") {
        response = FormatHttpResponse(200, "text/plain", "ok\n", {}, true);
      } else if (path == "/readyz") {
        response = metrics_.ready
                       ? FormatHttpResponse(200, "text/plain", "ok\n", {}, true)
                       : FormatHttpResponse(503, "text/plain",
                                            "not ready: no successful reconcile yet\n", {}, true);
      } else if (path == "/metrics") {
        response = FormatHttpResponse(200, "text/plain; version=0.0.4; charset=utf-8",
                                      RenderPrometheus(metrics_), {}, true);
      } else {
        response = FormatHttpResponse(404, "text/plain", "not found\n", {}, true);
      }
      if (req.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
    }
    for (size_t off = 0; off < response.size();) {
      ssize_t n = send(fd, response.data() + off, response.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }

  Fd listener_;
  Fd stop_;
  uint16_t port_;
  const AgentMetrics& metrics_;
  std::thread thread_;
};

}  // namespace

std::string RenderPrometheus(const AgentMetrics& m) {
  std::string out;
  AppendMetric(out, "edgefd_reconciles_total", "counter", "Reconcile attempts.",
               static_cast<double>(m.reconciles.load()));
  AppendMetric(out, "edgefd_reconcile_failures_total", "counter",
               "Reconcile attempts that did not converge.", static_cast<double>(m.failures.load()));
  AppendMetric(out, "edgefd_node_patches_total", "counter",
               "Node patches accepted by the API server.", static_cast<double>(m.patches.load()));
  AppendMetric(out, "edgefd_patch_conflicts_total", "counter",
               "409 Conflict answers resolved by re-reading the Node.",
               static_cast<double>(m.conflicts.load()));
  AppendMetric(out, "edgefd_inventory_events_total", "counter",
               "Inventory change notifications received.", static_cast<double>(m.events.load()));
  AppendMetric(out, "edgefd_last_success_timestamp_seconds", "gauge",
               "Unix time of the last successful reconcile (0: none yet).",
               m.last_success_unix.load());
  AppendMetric(out, "edgefd_labels_owned", "gauge", "Labels edgefd owns on the Node.",
               static_cast<double>(m.labels_owned.load()));
  AppendMetric(out, "edgefd_discovery_duration_seconds", "gauge",
               "Duration of the latest discovery run.", m.discovery_seconds.load());
  AppendMetric(out, "edgefd_ready", "gauge", "1 once a reconcile has succeeded.",
               m.ready.load() ? 1 : 0);
  return out;
}

Result<std::unique_ptr<HealthServer>> HealthServer::Start(const std::string& address,
                                                          const AgentMetrics& metrics) {
  const std::string where = "--metrics-addr '" + address + "'";
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
    Fd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (fd.get() < 0) continue;
    int one = 1;
    setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(fd.get(), ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd.get(), 16) != 0) {
      last_error = std::strerror(errno);
      continue;
    }
    sockaddr_storage bound{};
    socklen_t len = sizeof bound;
    getsockname(fd.get(), reinterpret_cast<sockaddr*>(&bound), &len);
    uint16_t bound_port =
        ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                          : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
    return std::unique_ptr<HealthServer>(
        std::make_unique<HealthServerImpl>(std::move(fd), bound_port, metrics));
  }
  return Error{where + ": cannot listen: " + last_error};
}

}  // namespace edgefd
