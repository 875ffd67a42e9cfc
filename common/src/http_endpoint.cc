// A few lines of HTTP on one thread: the health and metrics endpoints of every edgefd binary.
#include "edgefd/common/http_endpoint.h"

#include <netdb.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "edgefd/common/http_wire.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd {
namespace {

class HttpEndpointImpl final : public HttpEndpoint {
 public:
  HttpEndpointImpl(UniqueFd listener, uint16_t port, Handler handler)
      : listener_(std::move(listener)),
        stop_(eventfd(0, EFD_CLOEXEC)),
        port_(port),
        handler_(std::move(handler)),
        thread_([this] { Serve(); }) {}

  ~HttpEndpointImpl() override {
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
        spdlog::error("http endpoint: poll: {}", std::strerror(errno));
        return;
      }
      if (fds[1].revents != 0) return;
      if (fds[0].revents != 0) {
        UniqueFd conn(accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (conn.valid()) Handle(conn.get());
      }
    }
  }

  // One request per connection; probes and scrapers reconnect anyway. A slow or silent client
  // holds the thread for two seconds at most.
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
      if (req.method != "GET" && req.method != "HEAD") {
        response =
            FormatHttpResponse(405, "text/plain", "only GET\n", "Allow: GET, HEAD\r\n", true);
      } else {
        HttpReply reply = handler_(req.Path());
        response = FormatHttpResponse(reply.status, reply.content_type, reply.body, {}, true);
      }
      if (req.method == "HEAD") response.resize(response.find("\r\n\r\n") + 4);
    }
    for (size_t off = 0; off < response.size();) {
      ssize_t n = send(fd, response.data() + off, response.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  }

  UniqueFd listener_;
  UniqueFd stop_;
  uint16_t port_;
  Handler handler_;
  std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(const std::string& address,
                                                          Handler handler,
                                                          const std::string& flag) {
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
    UniqueFd fd(socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol));
    if (!fd.valid()) continue;
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
    return std::unique_ptr<HttpEndpoint>(
        std::make_unique<HttpEndpointImpl>(std::move(fd), bound_port, std::move(handler)));
  }
  return Error{where + ": cannot listen: " + last_error};
}

}  // namespace edgefd
