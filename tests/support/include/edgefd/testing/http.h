#pragma once

#include <cstdint>
#include <string>

namespace edgefd::testing {

/// One plain HTTP/1.1 GET to 127.0.0.1:`port` (Connection: close); the whole response, status
/// line and headers included, or "" when nothing answered.
std::string HttpGet(uint16_t port, const std::string& path);

}  // namespace edgefd::testing
