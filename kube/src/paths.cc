#include "edgefd/kube/paths.h"

#include <cctype>

namespace edgefd::kube {
namespace {

bool Unreserved(unsigned char c) {
  return std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~';
}

// A segment that a server decodes to "." or "..".
bool DotSegment(std::string_view segment) {
  std::string decoded;
  for (size_t i = 0; i < segment.size(); ++i) {
    if (segment[i] == '%' && i + 2 < segment.size() && segment[i + 1] == '2' &&
        (segment[i + 2] == 'e' || segment[i + 2] == 'E')) {
      decoded += '.';
      i += 2;
    } else {
      decoded += segment[i];
    }
  }
  return decoded == "." || decoded == "..";
}

}  // namespace

std::string Escape(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (Unreserved(c)) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

Status CheckName(std::string_view name, std::string_view what) {
  auto refused = [&](const char* why) {
    return Error{std::string(what) + " '" + Escape(name.substr(0, 300)) + "' " + why,
                 ErrorCode::kInvalidArgument};
  };
  if (name.empty()) return refused("is empty");
  if (name.size() > 253) return refused("is longer than 253 bytes");
  if (name == "." || name == "..") return refused("may not be '.' or '..'");
  for (char ch : name) {
    const auto c = static_cast<unsigned char>(ch);
    if (c < 0x20 || c == 0x7f) return refused("holds a control byte (CR, LF, NUL, ...)");
    if (c == '/' || c == '%') return refused("may not hold '/' or '%'");
  }
  return Ok{};
}

Result<std::string> PathOf(std::string_view prefix, std::initializer_list<std::string_view> parts) {
  std::string out(prefix);
  bool name = false;
  for (std::string_view part : parts) {
    if (name) {
      if (Status s = CheckName(part, "name"); !s) return s.error();
    }
    out += '/';
    out += Escape(part);
    name = !name;
  }
  return out;
}

Status CheckRequestPath(std::string_view path) {
  auto refused = [&](const char* why) {
    return Error{"request path '" + Escape(path.substr(0, 300)) + "' " + why,
                 ErrorCode::kInvalidArgument};
  };
  if (path.empty() || path.front() != '/') return refused("is not absolute");
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (c <= 0x20 || c >= 0x7f) return refused("holds a control byte, a space or non-ASCII");
    if (c == '#') return refused("holds '#'");
  }
  const size_t query = path.find('?');
  if (query != std::string_view::npos && path.find('?', query + 1) != std::string_view::npos) {
    return refused("holds more than one '?'");
  }
  std::string_view rest = path.substr(1, query == std::string_view::npos ? path.npos : query - 1);
  while (true) {
    const size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (segment.empty() && slash != std::string_view::npos) return refused("has an empty segment");
    if (DotSegment(segment)) return refused("has a '.' or '..' segment");
    if (slash == std::string_view::npos) break;
    rest.remove_prefix(slash + 1);
  }
  return Ok{};
}

}  // namespace edgefd::kube
