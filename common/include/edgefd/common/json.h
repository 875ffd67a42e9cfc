#pragma once

// The one JSON library of edgefd (nlohmann/json), for every JSON document a binary writes or
// parses: the dry run's --output json, the Node merge patch, the pipeline reports.

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

/// A JSON value. Objects keep their keys in insertion order, so reports read in the order
/// they are written.
using Json = nlohmann::ordered_json;

/// `value` as JSON text: compact (indent < 0) or indented by `indent` spaces. The text is
/// always valid JSON and valid UTF-8: bytes of a string that are not valid UTF-8 (stray
/// continuation bytes, overlong forms, surrogates, code points above U+10FFFF) become U+FFFD,
/// and numbers that are not finite (NaN, infinities) become null.
std::string DumpJson(const Json& value, int indent = -1);

/// `value` rounded to `digits` decimals, for figures in reports (NaN and infinities are kept,
/// and DumpJson writes them as null).
double RoundTo(double value, int digits);

/// Parses a JSON document; the error names `source` and the position.
Result<Json> ParseJson(std::string_view text, std::string_view source);

}  // namespace edgefd
