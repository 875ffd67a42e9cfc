#include "edgefd/runtime/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

namespace edgefd::runtime {

std::string PrometheusText(const StageCounters& c, int stage) {
  uint64_t frames = c.frames.load();
  double span_s = double(c.last_frame_ns.load() - c.first_frame_ns.load()) / 1e9;
  double fps = frames > 1 && span_s > 0 ? double(frames - 1) / span_s : 0.0;
  double stage_ms = frames ? double(c.compute_ns.load()) / 1e6 / double(frames) : 0.0;
  char buf[2048];
  std::snprintf(buf, sizeof buf,
                "# HELP edgefd_pipeline_frames_total Frames this stage processed.\n"
                "# TYPE edgefd_pipeline_frames_total counter\n"
                "edgefd_pipeline_frames_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_drops_total Frames replaced unread at this stage's input.\n"
                "# TYPE edgefd_pipeline_drops_total counter\n"
                "edgefd_pipeline_drops_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_send_errors_total Failed sends to the next stage.\n"
                "# TYPE edgefd_pipeline_send_errors_total counter\n"
                "edgefd_pipeline_send_errors_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_reconnects_total Re-established links to the next stage.\n"
                "# TYPE edgefd_pipeline_reconnects_total counter\n"
                "edgefd_pipeline_reconnects_total{stage=\"%d\"} %llu\n"
                "# HELP edgefd_pipeline_fps Frames per second over the run so far.\n"
                "# TYPE edgefd_pipeline_fps gauge\n"
                "edgefd_pipeline_fps{stage=\"%d\"} %.3f\n"
                "# HELP edgefd_pipeline_stage_ms Mean compute milliseconds per frame.\n"
                "# TYPE edgefd_pipeline_stage_ms gauge\n"
                "edgefd_pipeline_stage_ms{stage=\"%d\"} %.4f\n",
                stage, (unsigned long long)frames, stage, (unsigned long long)c.drops.load(), stage,
                (unsigned long long)c.send_errors.load(), stage,
                (unsigned long long)c.reconnects.load(), stage, fps, stage, stage_ms);
  return buf;
}

struct MetricsServer::Thread {
  std::thread t;
};

Result<std::unique_ptr<MetricsServer>> MetricsServer::Start(int port, const StageCounters* counters,
                                                            int stage) {
  auto s = std::unique_ptr<MetricsServer>(new MetricsServer());
  s->counters_ = counters;
  s->stage_ = stage;
  s->listen_fd_ = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (s->listen_fd_ < 0)
    return Error{std::string("--metrics-port: socket: ") + std::strerror(errno)};
  int one = 1, zero = 0;
  setsockopt(s->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  setsockopt(s->listen_fd_, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_any;
  addr.sin6_port = htons(uint16_t(port));
  if (bind(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(s->listen_fd_, 16) != 0) {
    return Error{"--metrics-port " + std::to_string(port) + ": " + std::strerror(errno)};
  }
  socklen_t len = sizeof addr;
  getsockname(s->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  s->port_ = ntohs(addr.sin6_port);
  if (pipe2(s->stop_pipe_, O_CLOEXEC) != 0) return Error{"--metrics-port: pipe failed"};
  s->thread_ = std::make_unique<Thread>();
  MetricsServer* raw = s.get();
  s->thread_->t = std::thread([raw] { raw->Serve(); });
  return s;
}

MetricsServer::~MetricsServer() {
  if (thread_) {
    char b = 0;
    (void)!write(stop_pipe_[1], &b, 1);
    thread_->t.join();
  }
  for (int fd : {listen_fd_, stop_pipe_[0], stop_pipe_[1]}) {
    if (fd >= 0) close(fd);
  }
}

void MetricsServer::Serve() {
  for (;;) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents) return;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One short request per connection; a slow client gets 1 s.
    pollfd in{fd, POLLIN, 0};
    char req[1024] = {};
    if (poll(&in, 1, 1000) == 1) (void)!read(fd, req, sizeof req - 1);
    std::string body, status = "200 OK";
    if (std::strncmp(req, "GET /metrics", 12) == 0) {
      body = PrometheusText(*counters_, stage_);
    } else if (std::strncmp(req, "GET /healthz", 12) == 0) {
      body = "ok\n";
    } else {
      status = "404 Not Found";
      body = "try /metrics\n";
    }
    std::string resp = "HTTP/1.0 " + status +
                       "\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    (void)!write(fd, resp.data(), resp.size());
    close(fd);
  }
}

}  // namespace edgefd::runtime
