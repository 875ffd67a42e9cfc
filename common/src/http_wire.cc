#include "edgefd/common/http_wire.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace edgefd {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string_view TrimOws(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

// Reads more bytes into `pending`; false at end of stream or on error.
bool Fill(const ReadFn& read, std::string& pending) {
  char buf[4096];
  long n = read(buf, sizeof buf);
  if (n <= 0) return false;
  pending.append(buf, static_cast<size_t>(n));
  return true;
}

// The header lines of `head` after its first line into `headers` (names lower-cased).
Status ParseHeaderLines(std::string_view head, size_t line_end,
                        std::map<std::string, std::string>& headers) {
  while (line_end != std::string_view::npos) {
    size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    std::string_view line = head.substr(
        start, line_end == std::string_view::npos ? std::string_view::npos : line_end - start);
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) {
      return Error{"malformed HTTP header line '" + std::string(line.substr(0, 200)) + "'"};
    }
    headers[Lower(TrimOws(line.substr(0, colon)))] = TrimOws(line.substr(colon + 1));
  }
  return Ok{};
}

}  // namespace

std::string HttpRequest::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

std::string_view HttpRequest::Path() const {
  std::string_view t = target;
  return t.substr(0, t.find('?'));
}

Result<std::optional<HttpRequest>> ReadHttpRequest(const ReadFn& read, std::string& pending,
                                                   size_t max_bytes) {
  size_t head_end;
  // Each search starts where the last one stopped (less the three bytes a split "\r\n\r\n"
  // may have left): reading a head is linear in its size.
  size_t searched = 0;
  while ((head_end = pending.find("\r\n\r\n", searched)) == std::string::npos) {
    searched = pending.size() < 3 ? 0 : pending.size() - 3;
    if (pending.size() > max_bytes) return Error{"HTTP request head larger than the limit"};
    if (!Fill(read, pending)) {
      if (pending.empty()) return std::optional<HttpRequest>();
      return Error{"connection closed in the middle of an HTTP request head"};
    }
  }
  std::string_view head(pending.data(), head_end);
  HttpRequest req;
  size_t line_end = head.find("\r\n");
  std::string_view request_line = head.substr(0, line_end);
  size_t sp1 = request_line.find(' ');
  size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1 ||
      request_line.substr(sp2 + 1).substr(0, 5) != "HTTP/") {
    return Error{"malformed HTTP request line '" + std::string(request_line) + "'"};
  }
  req.method = request_line.substr(0, sp1);
  req.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (Status headers = ParseHeaderLines(head, line_end, req.headers); !headers) {
    return headers.error();
  }
  if (Lower(req.Header("transfer-encoding")).find("chunked") != std::string::npos) {
    return Error{"chunked HTTP request bodies are not supported"};
  }
  size_t length = 0;
  if (std::string cl = req.Header("content-length"); !cl.empty()) {
    auto [p, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
    if (ec != std::errc() || p != cl.data() + cl.size()) {
      return Error{"bad Content-Length '" + cl + "'"};
    }
  }
  if (length > max_bytes) return Error{"HTTP request body larger than the limit"};
  size_t body_start = head_end + 4;
  while (pending.size() < body_start + length) {
    if (!Fill(read, pending)) return Error{"connection closed in the middle of an HTTP body"};
  }
  req.body = pending.substr(body_start, length);
  pending.erase(0, body_start + length);
  return std::optional<HttpRequest>(std::move(req));
}

std::string_view HttpReason(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 429:
      return "Too Many Requests";
    case 500:
      return "Internal Server Error";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::string FormatHttpResponse(int status, std::string_view content_type, std::string_view body,
                               std::string_view extra_headers, bool close) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(HttpReason(status)) +
                    "\r\nContent-Type: " + std::string(content_type) +
                    "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  out += extra_headers;
  if (close) out += "Connection: close\r\n";
  out += "\r\n";
  out += body;
  return out;
}

}  // namespace edgefd
