#include "edgefd/common/output.h"

#include <algorithm>
#include <cctype>
#include <iterator>

namespace edgefd {

CLI::Option* AddOutputFlag(CLI::App& app, std::string& format, const std::string& what) {
  return app
      .add_option("--output", format,
                  "how " + what + " prints: text, json or yaml (default: " + format + ")")
      ->type_name("FORMAT")
      ->check(OneOf({"text", "json", "yaml"}));
}

namespace {

// A string YAML reads back as itself without quotes: no indicator first, nothing that makes
// it a number, a boolean or null, no ": " or " #" inside.
bool PlainYaml(const std::string& s) {
  if (s.empty()) return false;
  auto safe = [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '.' || c == '_' || c == '/' ||
           c == '-';
  };
  if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '/' && s[0] != '_') {
    return false;
  }
  if (!std::all_of(s.begin(), s.end(), safe)) return false;
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  static const char* const kWords[] = {"true", "false", "yes",  "no",  "on",   "off",
                                       "y",    "n",     "null", "nan", ".nan", ".inf"};
  return std::none_of(std::begin(kWords), std::end(kWords),
                      [&](const char* w) { return lower == w; });
}

std::string YamlScalar(const Json& v) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    return PlainYaml(s) ? s : DumpJson(v);
  }
  return DumpJson(v);  // numbers, booleans, null: JSON and YAML spell them alike
}

bool YamlInline(const Json& v) { return !v.is_structured() || v.empty(); }

void AppendYaml(const Json& v, int indent, std::string& out) {
  std::string pad(static_cast<size_t>(indent), ' ');
  if (v.is_object()) {
    for (const auto& [key, value] : v.items()) {
      out += pad + YamlScalar(Json(key)) + ":";
      if (YamlInline(value)) {
        out += " " + YamlScalar(value) + "\n";
      } else {
        out += "\n";
        AppendYaml(value, value.is_array() ? indent : indent + 2, out);
      }
    }
  } else if (v.is_array()) {
    for (const Json& item : v) {
      if (YamlInline(item)) {
        out += pad + "- " + YamlScalar(item) + "\n";
        continue;
      }
      // "- " then the item at two more spaces, its first line after the dash.
      std::string nested;
      AppendYaml(item, indent + 2, nested);
      out += pad + "- " + nested.substr(static_cast<size_t>(indent) + 2);
    }
  } else {
    out += pad + YamlScalar(v) + "\n";
  }
}

}  // namespace

std::string DumpYaml(const Json& value) {
  if (YamlInline(value)) return YamlScalar(value) + "\n";
  std::string out;
  AppendYaml(value, 0, out);
  return out;
}

std::string DumpDocument(const Json& value, std::string_view format) {
  return format == "yaml" ? DumpYaml(value) : DumpJson(value, 2) + "\n";
}

}  // namespace edgefd
