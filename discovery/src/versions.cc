#include "edgefd/discovery/versions.h"

#include <sys/utsname.h>

#include <algorithm>
#include <cctype>
#include <regex>
#include <system_error>

#include "edgefd/common/files.h"

namespace edgefd {
namespace fs = std::filesystem;

namespace {

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool IsIdentifierChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-';
}

std::string Trim(std::string_view s) {
  size_t begin = 0;
  size_t end = s.size();
  while (begin < end && std::isspace(static_cast<unsigned char>(s[begin]))) ++begin;
  while (end > begin && std::isspace(static_cast<unsigned char>(s[end - 1]))) --end;
  return std::string(s.substr(begin, end - begin));
}

// Dot-separated identifiers of [0-9A-Za-z-], none empty; with `numeric_rule`, a numeric
// identifier has no leading zero (semver's pre-release rule).
bool ValidIdentifiers(std::string_view s, bool numeric_rule) {
  if (s.empty()) return false;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    std::string_view id = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (id.empty() || !std::all_of(id.begin(), id.end(), IsIdentifierChar)) return false;
    if (numeric_rule && id.size() > 1 && id[0] == '0' &&
        std::all_of(id.begin(), id.end(), IsDigit)) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

// Printable ASCII, short: what a version file may hold. Anything else is garbage.
bool Printable(std::string_view s) {
  return !s.empty() && s.size() <= kMaxVersionLength &&
         std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

// A module name as sysfs spells it: no path separators, nothing a path could climb with.
bool ValidModuleName(std::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-';
  });
}

fs::path Under(const fs::path& root, std::string_view absolute) {
  std::string_view rel = absolute;
  while (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
  return root / rel;
}

// The first line of a small file; nullopt when the file is absent or unreadable.
std::optional<std::string> FirstLine(const fs::path& path) {
  auto text = ReadFileAtMost(path, kMaxVersionFileBytes, "version file");
  if (!text) return std::nullopt;
  return Trim(std::string_view(*text).substr(0, text->find('\n')));
}

std::optional<std::string> ModuleVersion(const fs::path& root, std::string name,
                                         std::vector<std::string>* warnings) {
  if (!ValidModuleName(name)) return std::nullopt;
  // A driver named "ehci-pci" lives in the module "ehci_pci".
  std::string underscored = name;
  std::replace(underscored.begin(), underscored.end(), '-', '_');
  for (const std::string& module : {name, underscored}) {
    fs::path dir = root / "sys/module" / module;
    for (const char* attribute : {"version", "srcversion"}) {
      std::optional<std::string> line = FirstLine(dir / attribute);
      if (!line) continue;
      if (Printable(*line)) return line;
      if (warnings != nullptr) {
        warnings->push_back((dir / attribute).string() + ": not a version (empty, binary or over " +
                            std::to_string(kMaxVersionLength) + " characters); left out");
      }
      return std::nullopt;
    }
  }
  return std::nullopt;
}

std::optional<std::string> FileVersion(const fs::path& root, const VersionSource& source,
                                       std::vector<std::string>* warnings) {
  fs::path path = Under(root, source.file);
  auto warn = [&](const std::string& why) {
    if (warnings != nullptr) warnings->push_back(path.string() + ": " + why + "; left out");
    return std::nullopt;
  };
  std::error_code ec;
  if (!fs::exists(path, ec)) return std::nullopt;
  auto text = ReadFileAtMost(path, kMaxVersionFileBytes, "version file");
  if (!text) return warn(text.error().message);
  if (source.regex.empty()) {
    std::string line = Trim(std::string_view(*text).substr(0, text->find('\n')));
    if (!Printable(line)) return warn("first line is not a version (empty, binary or too long)");
    return line;
  }
  // The rule's parser compiled it once already; a file's lines are at most 4 KiB.
  std::regex re(source.regex, std::regex::ECMAScript);
  size_t start = 0;
  while (start < text->size()) {
    size_t end = text->find('\n', start);
    if (end == std::string::npos) end = text->size();
    std::string line = text->substr(start, end - start);
    start = end + 1;
    std::smatch m;
    if (!std::regex_search(line, m, re)) continue;
    std::string version;
    if (m.size() <= 1) {
      version = m.str(0);
    } else {
      for (size_t i = 1; i < m.size(); ++i) {
        if (!m[i].matched) continue;
        if (!version.empty()) version += '.';
        version += m.str(i);
      }
    }
    version = Trim(version);
    if (!Printable(version)) return warn("'" + source.regex + "' captures no printable version");
    return version;
  }
  return warn("no line matches '" + source.regex + "'");
}

const Rule* FindRule(const std::vector<Rule>& rules, const std::string& name) {
  for (const Rule& r : rules) {
    if (r.name == name) return &r;
  }
  return nullptr;
}

std::optional<std::string> FirstVersion(const std::vector<VersionSource>& sources,
                                        const Device& device, const fs::path& root,
                                        std::vector<std::string>* warnings) {
  for (const VersionSource& s : sources) {
    if (auto v = ReadVersionSource(s, device, root, warnings)) return v;
  }
  return std::nullopt;
}

// os-release: KEY=value lines, values optionally quoted.
std::string OsReleaseValue(const std::string& text, std::string_view key) {
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + start, end - start);
    start = end + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != '=') {
      continue;
    }
    std::string value = Trim(line.substr(key.size() + 1));
    if (value.size() >= 2 && (value.front() == '"' || value.front() == '\'') &&
        value.back() == value.front()) {
      value = value.substr(1, value.size() - 2);
    }
    return Printable(value) ? value : std::string();
  }
  return {};
}

}  // namespace

std::optional<std::string> NormalizeSemver(std::string_view raw) {
  std::string s = Trim(raw);
  if (!s.empty() && (s[0] == 'v' || s[0] == 'V')) s.erase(0, 1);
  size_t i = 0;
  std::vector<std::string> numbers;
  while (true) {
    size_t begin = i;
    while (i < s.size() && IsDigit(s[i])) ++i;
    // 18 digits fit in the unsigned 64 bits Kubernetes' semver parser holds a number in.
    if (i == begin || i - begin > 18) return std::nullopt;
    std::string n = s.substr(begin, i - begin);
    n.erase(0, std::min(n.find_first_not_of('0'), n.size() - 1));
    numbers.push_back(std::move(n));
    if (i < s.size() && s[i] == '.' && i + 1 < s.size() && IsDigit(s[i + 1])) {
      ++i;
      continue;
    }
    break;
  }
  if (numbers.size() > 3) return std::nullopt;
  while (numbers.size() < 3) numbers.push_back("0");
  std::string rest = s.substr(i);
  std::string pre;
  std::string build;
  if (!rest.empty()) {
    size_t plus = rest.find('+');
    if (rest[0] == '-') {
      pre = rest.substr(1, plus == std::string::npos ? plus : plus - 1);
      if (!ValidIdentifiers(pre, /*numeric_rule=*/true)) return std::nullopt;
    } else if (rest[0] != '+') {
      return std::nullopt;
    }
    if (plus != std::string::npos) {
      build = rest.substr(plus + 1);
      if (!ValidIdentifiers(build, /*numeric_rule=*/false)) return std::nullopt;
    }
  }
  std::string out = numbers[0] + "." + numbers[1] + "." + numbers[2];
  if (!pre.empty()) out += "-" + pre;
  if (!build.empty()) out += "+" + build;
  if (out.size() > kMaxVersionLength) return std::nullopt;
  return out;
}

std::optional<std::string> BcdToVersion(std::string_view bcd) {
  std::string s = Trim(bcd);
  if (s.size() != 4 || !std::all_of(s.begin(), s.end(), IsDigit)) return std::nullopt;
  int major = (s[0] - '0') * 10 + (s[1] - '0');
  return std::to_string(major) + "." + s[2] + "." + s[3];
}

std::optional<std::string> ReadVersionSource(const VersionSource& source, const Device& device,
                                             const fs::path& root,
                                             std::vector<std::string>* warnings) {
  if (!source.module.empty()) return ModuleVersion(root, source.module, warnings);
  if (source.bound_driver) {
    if (device.driver.empty()) return std::nullopt;
    return ModuleVersion(root, device.driver, warnings);
  }
  if (source.usb_bcd) {
    if (device.usb_bcd.empty()) return std::nullopt;
    // bcdDevice is hex digits; only a BCD one reads as a version.
    return BcdToVersion(device.usb_bcd);
  }
  if (!source.file.empty()) return FileVersion(root, source, warnings);
  return std::nullopt;
}

void ReadDeviceVersions(const std::vector<Rule>& rules, const fs::path& root,
                        std::vector<Device>& devices, std::vector<std::string>* warnings) {
  static const std::vector<VersionSource> kDefaultDriver = [] {
    VersionSource s;
    s.bound_driver = true;
    return std::vector<VersionSource>{s};
  }();
  static const std::vector<VersionSource> kDefaultFirmware = [] {
    VersionSource s;
    s.usb_bcd = true;
    return std::vector<VersionSource>{s};
  }();
  for (Device& d : devices) {
    const Rule* rule = FindRule(rules, d.rule);
    if (rule == nullptr) continue;
    const RuleVersions& v = rule->versions;
    d.driver_version =
        FirstVersion(v.driver.empty() ? kDefaultDriver : v.driver, d, root, warnings).value_or("");
    d.firmware_version =
        FirstVersion(v.firmware.empty() ? kDefaultFirmware : v.firmware, d, root, warnings)
            .value_or("");
    d.runtime_version = FirstVersion(v.runtime, d, root, warnings).value_or("");
  }
}

SystemInfo ReadSystemInfo(const fs::path& root, bool live, std::vector<std::string>* warnings) {
  SystemInfo info;
  fs::path osrelease = root / "proc/sys/kernel/osrelease";
  if (std::optional<std::string> line = FirstLine(osrelease)) {
    if (Printable(*line)) {
      info.kernel_release = *line;
    } else if (warnings != nullptr) {
      warnings->push_back(osrelease.string() + ": not a kernel release; left out");
    }
  } else if (live) {
    // A container shares the host's kernel: uname says what the host runs.
    utsname u{};
    if (::uname(&u) == 0 && Printable(u.release)) info.kernel_release = u.release;
  }
  for (const char* candidate : {"etc/os-release", "usr/lib/os-release"}) {
    auto text = ReadFileAtMost(root / candidate, kMaxVersionFileBytes, "os-release");
    if (!text) continue;
    info.os_id = OsReleaseValue(*text, "ID");
    info.os_version_id = OsReleaseValue(*text, "VERSION_ID");
    if (info.os_id.empty() && warnings != nullptr) {
      warnings->push_back((root / candidate).string() + ": no ID=; the OS is left out");
    }
    break;
  }
  return info;
}

}  // namespace edgefd
