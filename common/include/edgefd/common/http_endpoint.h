#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

/// What an HttpEndpoint handler answers to a GET.
struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain";
  std::string body;
};

/// A small plain-HTTP/1.1 endpoint for health probes and /metrics (the labeller agent, the
/// device plugin): GET and HEAD only, one request per connection, served one at a time on its
/// own thread, so no HTTP server library is needed. Not a general web server.
class HttpEndpoint {
 public:
  /// Called on the endpoint's thread with the request path (query string removed).
  using Handler = std::function<HttpReply(std::string_view path)>;

  /// Listens on `address` ("host:port", "[::1]:port" or ":port" for all interfaces; port 0
  /// picks a free one). Errors start with `flag` and the address ("--metrics-addr 'x': ...").
  static Result<std::unique_ptr<HttpEndpoint>> Start(const std::string& address, Handler handler,
                                                     const std::string& flag);
  /// Stops the thread and closes the socket.
  virtual ~HttpEndpoint() = default;
  /// The port actually bound.
  virtual uint16_t port() const = 0;
};

}  // namespace edgefd
