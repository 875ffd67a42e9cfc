#include "edgefd/common/json.h"

#include <algorithm>
#include <cmath>

namespace edgefd {

std::string DumpJson(const Json& value, int indent) {
  // nlohmann writes non-finite numbers as null; `replace` turns every byte its UTF-8 decoder
  // rejects into U+FFFD instead of throwing.
  return value.dump(indent, ' ', /*ensure_ascii=*/false, Json::error_handler_t::replace);
}

std::string ValidUtf8(std::string_view text) {
  // DumpJson's replacement, then the string read back: valid UTF-8 by construction.
  return Json::parse(DumpJson(Json(std::string(text)))).get<std::string>();
}

double RoundTo(double value, int digits) {
  if (!std::isfinite(value)) return value;
  const double scale = std::pow(10.0, digits);
  return std::round(value * scale) / scale;
}

namespace {

// Refuses, in one linear pass and before anything is allocated, a document nested deeper than
// kMaxJsonDepth or larger than kMaxJsonBytes: nlohmann builds a value for every '[' it reads,
// so 16 MB of '[' became 1.27 GB.
Status CheckJsonBounds(std::string_view text, std::string_view source) {
  if (text.size() > kMaxJsonBytes) {
    return Error{std::string(source) + ": JSON document larger than " +
                 std::to_string(kMaxJsonBytes >> 20) + " MiB"};
  }
  size_t depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth) {
        return Error{std::string(source) + ": JSON nested deeper than " +
                     std::to_string(kMaxJsonDepth) + " levels"};
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return Ok{};
}

}  // namespace

Result<Json> ParseJson(std::string_view text, std::string_view source) {
  if (Status s = CheckJsonBounds(text, source); !s) return s.error();
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    return Error{std::string(source) + ": not valid JSON: " + e.what()};
  }
}

Json ParseJsonOrNull(std::string_view text) {
  if (!CheckJsonBounds(text, "")) return Json(Json::value_t::discarded);
  return Json::parse(text, nullptr, /*allow_exceptions=*/false);
}

const Json* ValueAt(const Json& document, std::string_view pointer) {
  const Json* at = &document;
  while (!pointer.empty()) {
    if (pointer.front() != '/') return nullptr;
    pointer.remove_prefix(1);
    const size_t end = std::min(pointer.find('/'), pointer.size());
    std::string token;
    for (size_t i = 0; i < end; ++i) {  // unescape ~1 and ~0, in that order
      if (pointer[i] != '~') {
        token += pointer[i];
      } else if (i + 1 < end && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        token += pointer[++i] == '0' ? '~' : '/';
      } else {
        return nullptr;
      }
    }
    pointer.remove_prefix(end);
    if (at->is_object()) {
      auto it = at->find(token);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array()) {
      // An index: digits only, no leading zero, within the array.
      if (token.empty() || token.size() > 9 || (token.size() > 1 && token[0] == '0') ||
          token.find_first_not_of("0123456789") != std::string::npos) {
        return nullptr;
      }
      const size_t index = std::stoul(token);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

std::string StringAt(const Json& document, std::string_view pointer) {
  const Json* v = ValueAt(document, pointer);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

std::optional<int64_t> IntegerAt(const Json& document, std::string_view pointer) {
  const Json* v = ValueAt(document, pointer);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t{INT64_MAX}) return std::nullopt;
  return v->get<int64_t>();
}

}  // namespace edgefd
