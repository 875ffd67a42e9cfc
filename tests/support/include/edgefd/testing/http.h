#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace edgefd::testing {

/// One plain HTTP/1.1 GET to 127.0.0.1:`port` (Connection: close); the whole response, status
/// line and headers included, as far as it came within `timeout`; "" when nothing answered.
std::string HttpGet(uint16_t port, const std::string& path,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10));

}  // namespace edgefd::testing
