#pragma once

#include <functional>
#include <string>
#include <thread>

#include "edgefd/result.h"
#include "edgefd/unique_fd.h"

namespace edgefd::deviceplugin {

/// What a handler answers to a GET.
struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// A deliberately tiny HTTP/1.1 responder for /metrics and the probes: GET only, one request
/// per connection, served one at a time on its own thread. Not a general web server.
class HttpResponder {
 public:
  using Handler = std::function<HttpResponse(const std::string& path)>;

  explicit HttpResponder(Handler handler) : handler_(std::move(handler)) {}
  ~HttpResponder() { Stop(); }
  HttpResponder(const HttpResponder&) = delete;
  HttpResponder& operator=(const HttpResponder&) = delete;

  /// Listens on `address` ("HOST:PORT", "[::]:9479", ":9479"; port 0 picks a free one).
  Status Start(const std::string& address);
  void Stop();
  /// The port actually bound (useful with port 0).
  int port() const { return port_; }

 private:
  void Loop();
  void ServeOne(int client);

  Handler handler_;
  UniqueFd listen_fd_;
  UniqueFd wake_fd_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace edgefd::deviceplugin
