#pragma once

#include <string>
#include <string_view>

namespace edgefd {

/// `s` as a JSON string literal, quotes included. Bytes that are not valid UTF-8 are
/// replaced with U+FFFD so the output always parses.
std::string JsonQuote(std::string_view s);

}  // namespace edgefd
