#pragma once

// The one JSON library of edgefd (nlohmann/json), for every JSON document a binary writes or
// parses: the dry run's --output json, the Node merge patch, the pipeline reports, the DRA
// plugin's ResourceSlices, claims, CDI specs and checkpoint.

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
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

/// `text` with every byte that is not part of valid UTF-8 replaced by U+FFFD, as DumpJson
/// writes it: for text from another party that goes where only UTF-8 is allowed (a protobuf
/// string field, an error message the kubelet logs).
std::string ValidUtf8(std::string_view text);

/// `value` rounded to `digits` decimals, for figures in reports (NaN and infinities are kept,
/// and DumpJson writes them as null).
double RoundTo(double value, int digits);

/// Bounds on every document ParseJson reads: another party's JSON is refused, before any
/// value is built, when nested deeper or larger than these.
inline constexpr size_t kMaxJsonDepth = 100;
inline constexpr size_t kMaxJsonBytes = 16 << 20;

/// Parses a JSON document within kMaxJsonDepth and kMaxJsonBytes; the error names `source`
/// and the position (or the bound).
Result<Json> ParseJson(std::string_view text, std::string_view source);
/// The same bounded parse for text whose errors do not matter (an API server's error body):
/// a discarded value (`is_discarded()`, and no object, string or array) when it is not JSON
/// or out of bounds. Never throws.
Json ParseJsonOrNull(std::string_view text);

/// Reading documents another party wrote (API answers, files on disk) without trusting their
/// shape: the value at JSON pointer `pointer` (RFC 6901: "/metadata/uid", "/items/0/spec";
/// "" is the whole document), or nullptr when any step is missing, of another type or not a
/// valid index, or the pointer is malformed. Never throws.
const Json* ValueAt(const Json& document, std::string_view pointer);
/// The string at `pointer`; "" when it is absent or not a string.
std::string StringAt(const Json& document, std::string_view pointer);
/// The integer at `pointer`; nullopt when it is absent or not an integer.
std::optional<int64_t> IntegerAt(const Json& document, std::string_view pointer);

}  // namespace edgefd
