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

std::string_view Trim(std::string_view s) {
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
    headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return Ok{};
}

// Reads until `pending` holds a "\r\n\r\n"-terminated head; its length without the blank line.
Result<size_t> ReadHead(const ReadFn& read, std::string& pending, size_t max_bytes,
                        const char* what) {
  size_t head_end;
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
    if (pending.size() > max_bytes) return Error{std::string(what) + " head larger than the limit"};
    if (!Fill(read, pending)) {
      return Error{"connection closed in the middle of an " + std::string(what) + " head"};
    }
  }
  return head_end;
}

// A whole non-negative decimal or hexadecimal number, or nullopt.
std::optional<size_t> ParseSize(std::string_view text, int base) {
  size_t value = 0;
  if (text.empty()) return std::nullopt;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), value, base);
  if (ec != std::errc() || p != text.data() + text.size()) return std::nullopt;
  return value;
}

// A chunked body (RFC 9112 7.1) from the start of `pending` into `body`; erases what it used.
Status ReadChunkedBody(const ReadFn& read, std::string& pending, size_t max_bytes,
                       std::string& body) {
  for (;;) {
    size_t line_end;
    while ((line_end = pending.find("\r\n")) == std::string::npos) {
      if (pending.size() > 1024) return Error{"malformed HTTP chunk size line"};
      if (!Fill(read, pending)) return Error{"connection closed in the middle of a chunked body"};
    }
    std::string_view line(pending.data(), line_end);
    line = Trim(line.substr(0, line.find(';')));  // chunk extensions are ignored
    std::optional<size_t> size = ParseSize(line, 16);
    if (!size) return Error{"malformed HTTP chunk size '" + std::string(line.substr(0, 40)) + "'"};
    if (*size > max_bytes || body.size() + *size > max_bytes) {
      return Error{"HTTP response body larger than the limit"};
    }
    pending.erase(0, line_end + 2);
    if (*size == 0) {
      // Trailer fields, then the blank line.
      for (;;) {
        while ((line_end = pending.find("\r\n")) == std::string::npos) {
          if (pending.size() > max_bytes) return Error{"HTTP trailer larger than the limit"};
          if (!Fill(read, pending)) return Error{"connection closed in an HTTP trailer"};
        }
        pending.erase(0, line_end + 2);
        if (line_end == 0) return Ok{};
      }
    }
    while (pending.size() < *size + 2) {
      if (!Fill(read, pending)) return Error{"connection closed in the middle of a chunked body"};
    }
    if (pending.compare(*size, 2, "\r\n") != 0) return Error{"HTTP chunk not followed by CRLF"};
    body.append(pending, 0, *size);
    pending.erase(0, *size + 2);
  }
}

}  // namespace

std::string HttpResponse::Header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpResponse> ReadHttpResponse(const ReadFn& read, std::string& pending, size_t max_bytes,
                                      bool head_only) {
  auto head_end = ReadHead(read, pending, max_bytes, "HTTP response");
  if (!head_end) return head_end.error();
  std::string_view head(pending.data(), *head_end);
  HttpResponse res;
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 200 OK": the version, a space, three digits, then an optional reason.
  std::optional<size_t> code;
  if (status_line.size() >= 12 && status_line.substr(0, 5) == "HTTP/" && status_line[8] == ' ') {
    code = ParseSize(status_line.substr(9, 3), 10);
  }
  if (!code || *code < 100 || *code > 599 || (status_line.size() > 12 && status_line[12] != ' ')) {
    return Error{"malformed HTTP status line '" + std::string(status_line.substr(0, 80)) + "'"};
  }
  res.status = static_cast<int>(*code);
  if (Status headers = ParseHeaderLines(head, line_end, res.headers); !headers) {
    return headers.error();
  }
  pending.erase(0, *head_end + 4);
  const bool http10 = status_line.substr(0, 8) == "HTTP/1.0";
  const std::string connection = Lower(res.Header("connection"));
  res.reusable = !http10 && connection.find("close") == std::string::npos;
  // No body: HEAD, 1xx, 204, 304.
  if (head_only || res.status < 200 || res.status == 204 || res.status == 304) return res;
  if (Lower(res.Header("transfer-encoding")).find("chunked") != std::string::npos) {
    if (Status body = ReadChunkedBody(read, pending, max_bytes, res.body); !body) {
      return body.error();
    }
    return res;
  }
  if (std::string cl = res.Header("content-length"); !cl.empty()) {
    std::optional<size_t> length = ParseSize(cl, 10);
    if (!length) return Error{"bad Content-Length '" + cl.substr(0, 40) + "'"};
    if (*length > max_bytes) return Error{"HTTP response body larger than the limit"};
    while (pending.size() < *length) {
      if (!Fill(read, pending)) return Error{"connection closed in the middle of an HTTP body"};
    }
    res.body = pending.substr(0, *length);
    pending.erase(0, *length);
    return res;
  }
  // Neither: the body ends when the server closes the connection.
  res.reusable = false;
  while (Fill(read, pending)) {
    if (pending.size() > max_bytes) return Error{"HTTP response body larger than the limit"};
  }
  res.body = std::move(pending);
  pending.clear();
  return res;
}

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
  while ((head_end = pending.find("\r\n\r\n")) == std::string::npos) {
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
