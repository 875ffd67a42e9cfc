#pragma once

// An API server that is hostile or broken on purpose, at the byte level: it reads each
// request's head and then runs a behaviour of the test's choosing on the connection (endless
// headers, a trickle, a huge body). Plain HTTP on 127.0.0.1 or [::1], ephemeral port.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace edgefd::testing {

class HostileServer {
 public:
  /// Writes to the client; false once the client has gone (or the server stops).
  class Conn {
   public:
    Conn(int fd, HostileServer& server) : fd_(fd), server_(server) {}
    bool Write(std::string_view bytes) {
      while (!bytes.empty()) {
        if (server_.stopping_.load()) return false;
        ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        server_.written_ += static_cast<size_t>(n);
        bytes.remove_prefix(static_cast<size_t>(n));
      }
      return true;
    }
    /// Waits `ms` unless the server stops; false when it does.
    bool Pause(int ms) {
      for (int i = 0; i < ms && !server_.stopping_.load(); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      return !server_.stopping_.load();
    }

   private:
    int fd_;
    HostileServer& server_;
  };
  using Behaviour = std::function<void(Conn& conn, const std::string& head)>;

  HostileServer(Behaviour behaviour, bool ipv6 = false) : behaviour_(std::move(behaviour)) {
    fd_ = ::socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_storage ss{};
    socklen_t len;
    if (ipv6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
      a->sin6_family = AF_INET6;
      a->sin6_addr = in6addr_loopback;
      len = sizeof *a;
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&ss);
      a->sin_family = AF_INET;
      a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      len = sizeof *a;
    }
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&ss), len) == 0 && ::listen(fd_, 16) == 0 &&
          ::getsockname(fd_, reinterpret_cast<sockaddr*>(&ss), &len) == 0;
    port_ = ntohs(ipv6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                       : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    url_ = std::string("http://") + (ipv6 ? "[::1]" : "127.0.0.1") + ":" + std::to_string(port_);
    accept_ = std::thread([this] { AcceptLoop(); });
  }
  ~HostileServer() {
    stopping_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    {
      std::lock_guard lock(mu_);
      for (int c : conns_) ::shutdown(c, SHUT_RDWR);
    }
    accept_.join();
    for (std::thread& t : threads_) t.join();
    for (int c : conns_) ::close(c);
    ::close(fd_);
  }
  HostileServer(const HostileServer&) = delete;
  HostileServer& operator=(const HostileServer&) = delete;

  bool ok() const { return ok_; }
  const std::string& url() const { return url_; }
  /// Every request head received (up to its blank line), in order.
  std::vector<std::string> Heads() {
    std::lock_guard lock(mu_);
    return heads_;
  }
  /// Bytes written to clients so far, all connections together.
  size_t Written() const { return written_.load(); }

 private:
  void AcceptLoop() {
    for (;;) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno == EINTR) continue;
        return;  // shut down
      }
      std::lock_guard lock(mu_);
      if (stopping_) {
        ::close(c);
        return;
      }
      conns_.push_back(c);
      threads_.emplace_back([this, c] { Serve(c); });
    }
  }

  void Serve(int c) {
    std::string pending;
    char buf[4096];
    for (;;) {
      size_t end;
      while ((end = pending.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0 || pending.size() > (1 << 20)) return;
        pending.append(buf, static_cast<size_t>(n));
      }
      std::string head = pending.substr(0, end);
      pending.erase(0, end + 4);
      {
        std::lock_guard lock(mu_);
        heads_.push_back(head);
      }
      Conn conn(c, *this);
      behaviour_(conn, head);
      if (stopping_) return;
    }
  }

  Behaviour behaviour_;
  int fd_ = -1;
  bool ok_ = false;
  uint16_t port_ = 0;
  std::string url_;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> written_{0};
  std::mutex mu_;
  std::vector<int> conns_;
  std::vector<std::string> heads_;
  std::vector<std::thread> threads_;
  std::thread accept_;
};

}  // namespace edgefd::testing
