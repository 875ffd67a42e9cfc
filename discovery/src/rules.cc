#include "edgefd/discovery/rules.h"

#include <fnmatch.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <regex>
#include <set>

#include "edgefd/common/files.h"

namespace edgefd {
namespace {

// A parse failure carrying the node it is about; turned into "SOURCE:LINE: ..." at the top.
struct RuleError {
  YAML::Mark mark;
  std::string message;
};

constexpr size_t kMaxRuleName = 50;  // "accel." + name + ".count" fits a 63-char label name

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string UnknownKey(const std::string& key, const std::vector<std::string_view>& known) {
  std::string msg = "unknown key '" + key + "'";
  std::string_view best;
  size_t best_distance = 3;  // suggest only near misses
  for (std::string_view k : known) {
    size_t d = EditDistance(key, k);
    if (d < best_distance) {
      best_distance = d;
      best = k;
    }
  }
  if (!best.empty()) return msg + " \u2014 did you mean '" + std::string(best) + "'?";
  msg += " (expected one of:";
  for (std::string_view k : known) msg += " " + std::string(k);
  return msg + ")";
}

std::string Where(const std::string& rule) { return rule.empty() ? "" : "rule '" + rule + "': "; }

// Checks a fnmatch pattern for the mistakes fnmatch silently tolerates: an unclosed bracket
// expression, an empty class and a trailing backslash.
std::optional<std::string> GlobProblem(const std::string& glob) {
  if (glob.empty()) return "empty pattern";
  for (size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (i + 1 == glob.size()) return "trailing backslash";
      ++i;
    } else if (glob[i] == '[') {
      size_t j = i + 1;
      if (j < glob.size() && (glob[j] == '!' || glob[j] == '^')) ++j;
      if (j < glob.size() && glob[j] == ']') ++j;  // a leading ']' is a member
      while (j < glob.size() && glob[j] != ']') ++j;
      if (j >= glob.size()) return "unclosed '['";
      i = j;
    }
  }
  return std::nullopt;
}

bool IsHex(std::string_view s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
}

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

class RuleParser {
 public:
  // Counts one value taken from the document. Aliases are followed, so the count is what the
  // document expands to, and the work and memory of a conversion stay bounded by it.
  void Count(const YAML::Node& node) {
    if (++values_ > kMaxRuleValues) {
      throw RuleError{node.Mark(), "the document expands to more than " +
                                       std::to_string(kMaxRuleValues) +
                                       " values (are YAML aliases copying a list over and "
                                       "over?); refusing it"};
    }
  }

  std::vector<Rule> Parse(const YAML::Node& doc, const std::string& source) {
    source_ = source;
    if (!doc || doc.IsNull()) return {};  // an empty file adds nothing
    if (!doc.IsMap()) throw RuleError{doc.Mark(), "expected a mapping with a 'rules' list"};
    for (const auto& kv : doc) {
      std::string key = Scalar(kv.first, "");
      if (key != "rules") throw RuleError{kv.first.Mark(), UnknownKey(key, {"rules"})};
    }
    const YAML::Node& const_doc = doc;  // const: operator[] must not insert the key
    YAML::Node list = const_doc["rules"];
    if (!list) throw RuleError{doc.Mark(), "no 'rules' list"};
    if (!list.IsSequence()) throw RuleError{list.Mark(), "'rules' must be a list"};
    std::vector<Rule> rules;
    std::set<std::string> names;
    for (const YAML::Node& item : list) {
      Rule rule = ParseRule(item);
      if (!names.insert(rule.name).second) {
        throw RuleError{item.Mark(), "rule '" + rule.name + "' is defined twice in this file"};
      }
      rules.push_back(std::move(rule));
    }
    return rules;
  }

 private:
  std::string Scalar(const YAML::Node& node, const std::string& what) {
    Count(node);
    if (!node.IsScalar()) throw RuleError{node.Mark(), what + " must be a string"};
    return node.Scalar();
  }

  bool Bool(const YAML::Node& node, const std::string& what) {
    Count(node);
    bool value = false;
    if (!node.IsScalar() || !YAML::convert<bool>::decode(node, value)) {
      throw RuleError{node.Mark(), what + " must be true or false"};
    }
    return value;
  }

  // A string or a list of strings.
  std::vector<std::string> Strings(const YAML::Node& node, const std::string& what) {
    std::vector<std::string> out;
    if (node.IsScalar()) {
      out.push_back(Scalar(node, what));
    } else if (node.IsSequence()) {
      for (const YAML::Node& item : node) out.push_back(Scalar(item, what + " entries"));
    } else {
      throw RuleError{node.Mark(), what + " must be a string or a list of strings"};
    }
    if (out.empty()) throw RuleError{node.Mark(), what + " must not be empty"};
    return out;
  }

  std::vector<std::string> Globs(const YAML::Node& node, const std::string& what) {
    std::vector<std::string> globs = Strings(node, what);
    for (const std::string& g : globs) {
      if (auto problem = GlobProblem(g)) {
        throw RuleError{node.Mark(), what + ": bad pattern '" + g + "': " + *problem};
      }
    }
    return globs;
  }

  std::vector<HexId> Ids(const YAML::Node& node, const std::string& what) {
    std::vector<HexId> ids;
    for (const std::string& s : Strings(node, what)) {
      size_t colon = s.find(':');
      HexId id{Lower(s.substr(0, colon)),
               colon == std::string::npos ? "" : Lower(s.substr(colon + 1))};
      if (id.product == "*") id.product.clear();
      bool ok = id.vendor.size() == 4 && IsHex(id.vendor) &&
                (colon == std::string::npos ? true
                                            : (id.product.empty() && s.substr(colon + 1) == "*") ||
                                                  (id.product.size() == 4 && IsHex(id.product)));
      if (!ok) {
        throw RuleError{node.Mark(), what + ": bad id '" + s +
                                         "' (expected 4 hex digits, optionally ':' and 4 hex "
                                         "digits or '*', e.g. \"03e7:2485\")"};
      }
      ids.push_back(std::move(id));
    }
    return ids;
  }

  RuleMatch ParseMatch(const YAML::Node& node) {
    static const std::vector<std::string_view> kKeys = {"subsystem", "usb",        "pci",
                                                        "pci-class", "driver",     "devnode",
                                                        "property",  "compatible", "dt-node"};
    Count(node);
    if (!node.IsMap())
      throw RuleError{node.Mark(), Where(rule_) + "match entries must be mappings"};
    if (node.size() == 0) throw RuleError{node.Mark(), Where(rule_) + "empty match entry"};
    RuleMatch m;
    bool udev_keys = false;
    for (const auto& kv : node) {
      std::string key = Scalar(kv.first, "a key");
      std::string what = Where(rule_) + "'" + key + "'";
      const YAML::Node& v = kv.second;
      if (key == "subsystem")
        m.subsystems = Globs(v, what);
      else if (key == "usb")
        m.usb = Ids(v, what);
      else if (key == "pci")
        m.pci = Ids(v, what);
      else if (key == "driver")
        m.drivers = Globs(v, what);
      else if (key == "devnode")
        m.devnodes = Globs(v, what);
      else if (key == "compatible")
        m.compatible = Globs(v, what);
      else if (key == "dt-node")
        m.dt_nodes = Strings(v, what);
      else if (key == "pci-class") {
        for (std::string c : Strings(v, what)) {
          if (c.rfind("0x", 0) == 0) c = c.substr(2);
          if ((c.size() != 2 && c.size() != 4 && c.size() != 6) || !IsHex(c)) {
            throw RuleError{v.Mark(),
                            what + ": bad class '" + c +
                                "' (expected 2, 4 or 6 hex digits, e.g. \"03\" or \"0302\")"};
          }
          m.pci_classes.push_back(Lower(c));
        }
      } else if (key == "property") {
        if (!v.IsMap() || v.size() == 0) {
          throw RuleError{v.Mark(), what + " must be a mapping of udev property to pattern"};
        }
        for (const auto& p : v) {
          std::string name = Scalar(p.first, what + " names");
          std::string glob = Scalar(p.second, what + " '" + name + "'");
          if (auto problem = GlobProblem(glob)) {
            throw RuleError{p.second.Mark(),
                            what + " '" + name + "': bad pattern '" + glob + "': " + *problem};
          }
          m.properties[name] = glob;
        }
      } else {
        throw RuleError{kv.first.Mark(), Where(rule_) + UnknownKey(key, kKeys)};
      }
      if (key != "compatible" && key != "dt-node") udev_keys = true;
    }
    if (udev_keys && m.IsDeviceTree()) {
      throw RuleError{node.Mark(), Where(rule_) +
                                       "a match entry uses either udev keys or "
                                       "devicetree keys (compatible, dt-node), not both"};
    }
    return m;
  }

  VersionSource ParseVersionSource(const YAML::Node& node, const std::string& what) {
    static const std::vector<std::string_view> kKeys = {"module", "bound-driver", "file", "regex",
                                                        "usb-bcd"};
    Count(node);
    if (!node.IsMap() || node.size() == 0) {
      throw RuleError{node.Mark(), what +
                                       ": each source must be a mapping (module, "
                                       "bound-driver, file with optional regex, usb-bcd)"};
    }
    VersionSource s;
    int kinds = 0;
    for (const auto& kv : node) {
      std::string key = Scalar(kv.first, "a key");
      const YAML::Node& v = kv.second;
      if (key == "module") {
        s.module = Scalar(v, what + " 'module'");
        bool ok = !s.module.empty() && s.module.size() <= 64 &&
                  std::all_of(s.module.begin(), s.module.end(), [](char c) {
                    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
                  });
        if (!ok) {
          throw RuleError{v.Mark(), what + " 'module': '" + s.module +
                                        "' is not a kernel module name ([A-Za-z0-9_-])"};
        }
        ++kinds;
      } else if (key == "bound-driver") {
        s.bound_driver = Bool(v, what + " 'bound-driver'");
        ++kinds;
      } else if (key == "usb-bcd") {
        s.usb_bcd = Bool(v, what + " 'usb-bcd'");
        ++kinds;
      } else if (key == "file") {
        s.file = Scalar(v, what + " 'file'");
        if (s.file.empty() || s.file[0] != '/' || s.file.find("..") != std::string::npos) {
          throw RuleError{v.Mark(), what + " 'file': '" + s.file +
                                        "' must be an absolute path without '..' (it is read "
                                        "below --root)"};
        }
        ++kinds;
      } else if (key == "regex") {
        s.regex = Scalar(v, what + " 'regex'");
        try {
          std::regex check(s.regex, std::regex::ECMAScript);
        } catch (const std::regex_error& e) {
          throw RuleError{v.Mark(), what + " 'regex': '" + s.regex + "': " + e.what()};
        }
      } else {
        throw RuleError{kv.first.Mark(), what + ": " + UnknownKey(key, kKeys)};
      }
    }
    if (kinds != 1) {
      throw RuleError{node.Mark(), what +
                                       ": a source names exactly one of module, "
                                       "bound-driver, file, usb-bcd"};
    }
    if (!s.regex.empty() && s.file.empty()) {
      throw RuleError{node.Mark(), what + ": 'regex' goes with 'file'"};
    }
    return s;
  }

  RuleVersions ParseVersions(const YAML::Node& node, const std::string& what) {
    static const std::vector<std::string_view> kKeys = {"driver", "firmware", "runtime"};
    Count(node);
    if (!node.IsMap()) {
      throw RuleError{node.Mark(), what +
                                       " must be a mapping of driver/firmware/runtime to "
                                       "sources"};
    }
    RuleVersions versions;
    for (const auto& kv : node) {
      std::string key = Scalar(kv.first, "a key");
      std::vector<VersionSource>* list = key == "driver"     ? &versions.driver
                                         : key == "firmware" ? &versions.firmware
                                         : key == "runtime"  ? &versions.runtime
                                                             : nullptr;
      if (list == nullptr) throw RuleError{kv.first.Mark(), what + ": " + UnknownKey(key, kKeys)};
      const YAML::Node& v = kv.second;
      std::string where = what + " '" + key + "'";
      if (v.IsMap()) {
        list->push_back(ParseVersionSource(v, where));
      } else if (v.IsSequence() && v.size() > 0) {
        for (const YAML::Node& item : v) list->push_back(ParseVersionSource(item, where));
      } else {
        throw RuleError{v.Mark(), where + " must be a source or a non-empty list of sources"};
      }
    }
    return versions;
  }

  Rule ParseRule(const YAML::Node& node) {
    static const std::vector<std::string_view> kKeys = {
        "name", "kind", "resource", "enabled", "match", "devnodes", "require-devnodes", "versions"};
    Count(node);
    if (!node.IsMap()) throw RuleError{node.Mark(), "each rule must be a mapping"};
    Rule rule;
    rule.origin = source_ + ":" + std::to_string(node.Mark().line + 1);
    rule_.clear();
    if (YAML::Node name = node["name"]) {
      rule.name = Scalar(name, "'name'");
      bool valid = !rule.name.empty() && rule.name.size() <= kMaxRuleName &&
                   std::isalnum(static_cast<unsigned char>(rule.name.front())) &&
                   std::isalnum(static_cast<unsigned char>(rule.name.back())) &&
                   std::all_of(rule.name.begin(), rule.name.end(), [](char c) {
                     return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
                   });
      if (!valid) {
        throw RuleError{name.Mark(), "'name': '" + rule.name +
                                         "' is not a valid rule name (lower-case "
                                         "letters, digits and '-', at most 50 characters)"};
      }
    } else {
      throw RuleError{node.Mark(), "rule without a 'name'"};
    }
    rule_ = rule.name;
    bool has_match = false;
    bool has_require = false;
    for (const auto& kv : node) {
      std::string key = Scalar(kv.first, "a key");
      std::string what = Where(rule_) + "'" + key + "'";
      const YAML::Node& v = kv.second;
      if (key == "name") continue;
      if (key == "kind") {
        std::string kind = Scalar(v, what);
        if (kind == "accelerator")
          rule.kind = RuleKind::kAccelerator;
        else if (kind == "camera")
          rule.kind = RuleKind::kCamera;
        else
          throw RuleError{v.Mark(), what + ": '" + kind + "' (expected accelerator or camera)"};
      } else if (key == "resource") {
        rule.resource = Bool(v, what);
      } else if (key == "enabled") {
        rule.enabled = Bool(v, what);
      } else if (key == "require-devnodes") {
        rule.require_devnodes = Bool(v, what);
        has_require = true;
      } else if (key == "devnodes") {
        rule.devnodes = Globs(v, what);
      } else if (key == "versions") {
        rule.versions = ParseVersions(v, what);
      } else if (key == "match") {
        has_match = true;
        if (v.IsMap()) {
          rule.match.push_back(ParseMatch(v));
        } else if (v.IsSequence() && v.size() > 0) {
          for (const YAML::Node& m : v) rule.match.push_back(ParseMatch(m));
        } else {
          throw RuleError{v.Mark(), what + " must be a mapping or a non-empty list of mappings"};
        }
      } else {
        throw RuleError{kv.first.Mark(), Where(rule_) + UnknownKey(key, kKeys)};
      }
    }
    if (!has_match && rule.enabled) throw RuleError{node.Mark(), Where(rule_) + "no 'match'"};
    if (has_require && rule.devnodes.empty()) {
      throw RuleError{node.Mark(), Where(rule_) + "'require-devnodes' without 'devnodes'"};
    }
    return rule;
  }

  std::string source_;
  std::string rule_;  // name of the rule being parsed, for messages
  size_t values_ = 0;
};

void Merge(std::vector<Rule>& into, std::vector<Rule> more) {
  for (Rule& r : more) {
    auto it =
        std::find_if(into.begin(), into.end(), [&](const Rule& x) { return x.name == r.name; });
    if (it != into.end())
      *it = std::move(r);
    else
      into.push_back(std::move(r));
  }
}

}  // namespace

bool GlobMatches(std::string_view pattern, std::string_view text) {
  return fnmatch(std::string(pattern).c_str(), std::string(text).c_str(), 0) == 0;
}

Result<std::vector<Rule>> ParseRules(std::string_view yaml, std::string_view source) {
  std::string src(source);
  if (yaml.size() > kMaxRulesBytes) {
    return Error{src + ": " + std::to_string(yaml.size()) + " bytes, more than a rules file may " +
                 "have (" + std::to_string(kMaxRulesBytes) + ")"};
  }
  try {
    YAML::Node doc = YAML::Load(std::string(yaml));
    return RuleParser().Parse(doc, src);
  } catch (const RuleError& e) {
    return Error{src + ":" + std::to_string(e.mark.line + 1) + ": " + e.message};
  } catch (const YAML::Exception& e) {
    // Syntax errors: yaml-cpp's message without its own "yaml-cpp: error at line..." prefix.
    return Error{src + ":" + std::to_string(e.mark.line + 1) + ":" +
                 std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg};
  }
}

Result<std::vector<Rule>> MergeRuleSources(const std::vector<RulesSource>& sources) {
  // The defaults are parsed once; they are tested, so failing here is a build defect.
  static const std::vector<Rule> kDefaults = [] {
    auto rules = ParseRules(DefaultRulesYaml(), "built-in rules");
    std::vector<Rule> out = rules ? *rules : std::vector<Rule>{};
    for (Rule& r : out) r.origin = "built-in";
    return out;
  }();
  std::vector<Rule> rules = kDefaults;
  for (const RulesSource& source : sources) {
    auto parsed = ParseRules(source.text, source.name);
    if (!parsed) return parsed.error();
    Merge(rules, std::move(*parsed));
  }
  std::erase_if(rules, [](const Rule& r) { return !r.enabled; });
  return rules;
}

Result<std::vector<Rule>> LoadRules(const std::vector<std::filesystem::path>& files) {
  std::vector<RulesSource> sources;
  for (const auto& file : files) {
    auto text = ReadFileAtMost(file, kMaxRulesBytes, "rules file");
    if (!text) return text.error();
    sources.push_back({file.string(), std::move(*text)});
  }
  return MergeRuleSources(sources);
}

}  // namespace edgefd
