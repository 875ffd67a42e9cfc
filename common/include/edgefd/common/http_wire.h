#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

/// One HTTP/1.1 request as it arrived on the wire (the health/metrics endpoint and the tests'
/// API server both read requests this way; neither needs chunked request bodies). The server
/// half of HTTP only: the Kubernetes API client is libcurl's (kube/).
struct HttpRequest {
  std::string method;                          ///< "GET", "PATCH", ...
  std::string target;                          ///< "/api/v1/nodes/n1?x=y"
  std::map<std::string, std::string> headers;  ///< names lower-cased
  std::string body;

  /// The header's value, or "" when absent; `name` must be lower-case.
  std::string Header(const std::string& name) const;
  /// The target without its query string.
  std::string_view Path() const;
};

/// Reads `count` bytes at most into `buf`; returns the number read, 0 at end of stream, < 0 on
/// error (a timeout counts as an error).
using ReadFn = std::function<long(char* buf, size_t count)>;

/// Reads one request from a connection. `pending` holds bytes read past the previous request
/// (pipelining) and keeps those past this one. Returns nullopt when the peer closed the
/// connection cleanly before a new request began; an Error on a malformed request or a
/// request larger than `max_bytes`.
Result<std::optional<HttpRequest>> ReadHttpRequest(const ReadFn& read, std::string& pending,
                                                   size_t max_bytes = 1 << 20);

/// A complete HTTP/1.1 response with Content-Length; `extra_headers` are "Name: value\r\n"
/// lines.
std::string FormatHttpResponse(int status, std::string_view content_type, std::string_view body,
                               std::string_view extra_headers = {}, bool close = false);

/// The standard reason phrase for `status` ("Not Found"); "Unknown" for the rest.
std::string_view HttpReason(int status);

}  // namespace edgefd
