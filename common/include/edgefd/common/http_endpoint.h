#pragma once

#include <chrono>
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

/// Limits of an HttpEndpoint. Probes come from the kubelet and scrapers, but on hostNetwork
/// daemons anyone who reaches the node's IP can connect.
struct HttpEndpointLimits {
  /// A connection's whole life, from accept to the last byte of the answer: a client that has
  /// not sent its request (or read the answer) by then is dropped.
  std::chrono::milliseconds request_deadline{2000};
  /// Connections served at once. A new one beyond this closes one that was answered, else
  /// the oldest that has sent nothing, else the oldest; never one that has not yet been read.
  int max_connections = 256;
  /// Largest request head accepted.
  size_t max_request_bytes = 16 * 1024;
};

/// A small plain-HTTP/1.1 endpoint for health probes and /metrics (every edgefd daemon): GET
/// and HEAD only, one request per connection, so no HTTP server library is needed. One thread
/// serves every connection at once without blocking on any (poll over non-blocking sockets),
/// so a slow or silent client never delays another's answer, and destroying the endpoint
/// returns at once whatever the clients do. Not a general web server.
class HttpEndpoint {
 public:
  /// Called on the endpoint's thread with the request path (query string removed); must not
  /// block (it delays every other client).
  using Handler = std::function<HttpReply(std::string_view path)>;

  /// Listens on `address` ("host:port", "[::1]:port" or ":port" for all interfaces; port 0
  /// picks a free one). Errors start with `flag` and the address ("--metrics-addr 'x': ...").
  static Result<std::unique_ptr<HttpEndpoint>> Start(const std::string& address, Handler handler,
                                                     const std::string& flag,
                                                     HttpEndpointLimits limits = {});
  /// Stops the thread and closes the socket and every connection.
  virtual ~HttpEndpoint() = default;
  /// The port actually bound.
  virtual uint16_t port() const = 0;
};

}  // namespace edgefd
