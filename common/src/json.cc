#include "edgefd/common/json.h"

#include <cmath>

namespace edgefd {

std::string DumpJson(const Json& value, int indent) {
  // nlohmann writes non-finite numbers as null; `replace` turns every byte its UTF-8 decoder
  // rejects into U+FFFD instead of throwing.
  return value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

double RoundTo(double value, int digits) {
  if (!std::isfinite(value)) return value;
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

Result<Json> ParseJson(std::string_view text, std::string_view source) {
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return Error{std::string(source) + ": not valid JSON: " + e.what()};
  }
}

}  // namespace edgefd
