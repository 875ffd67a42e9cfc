#include "edgefd/discovery/labels.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <map>

#include "edgefd/common/hash.h"

namespace edgefd {
namespace {

constexpr size_t kMaxNameLength = 63;
constexpr size_t kMaxPrefixLength = 253;

bool IsAlnum(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool IsNameChar(unsigned char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; }

std::string Sanitize(std::string_view raw) {
  std::string out;
  out.reserve(std::min(raw.size(), kMaxNameLength + 1));
  for (unsigned char c : raw) {
    char next = IsNameChar(c) ? static_cast<char>(c) : '-';
    // Collapse runs of '-' (each invalid byte, or several in a row, leave one dash).
    if (next == '-' && !out.empty() && out.back() == '-') continue;
    out.push_back(next);
  }
  size_t begin = 0;
  while (begin < out.size() && !IsAlnum(out[begin])) ++begin;
  size_t end = out.size();
  while (end > begin && !IsAlnum(out[end - 1])) --end;
  out = out.substr(begin, end - begin);
  if (out.size() > kMaxNameLength) {
    char suffix[10];
    std::snprintf(suffix, sizeof suffix, "-%08x", Fnv1a32(raw));
    out.resize(kMaxNameLength - 9);
    while (!out.empty() && !IsAlnum(out.back())) out.pop_back();
    out += suffix;
  }
  return out;
}

}  // namespace

std::string ShortHash(std::string_view s) {
  char out[9];
  std::snprintf(out, sizeof out, "%08x", Fnv1a32(s));
  return out;
}

namespace {

bool IsValidNamePart(std::string_view name, bool allow_empty) {
  if (name.empty()) return allow_empty;
  if (name.size() > kMaxNameLength) return false;
  if (!IsAlnum(name.front()) || !IsAlnum(name.back())) return false;
  for (unsigned char c : name) {
    if (!IsNameChar(c)) return false;
  }
  return true;
}

bool IsValidDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > kMaxPrefixLength) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view label = s.substr(start, dot == std::string_view::npos ? s.npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (unsigned char c : label) {
      if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return true;
}

}  // namespace

std::string SanitizeLabelName(std::string_view raw) { return Sanitize(raw); }
std::string SanitizeLabelValue(std::string_view raw) { return Sanitize(raw); }

std::string CompatibleToLabelName(std::string_view compatible) {
  std::string_view vendor;
  std::string_view model = compatible;
  if (size_t comma = compatible.find(','); comma != std::string_view::npos) {
    vendor = compatible.substr(0, comma);
    model = compatible.substr(comma + 1);
    if (size_t second = model.find(','); second != std::string_view::npos) {
      model = model.substr(0, second);
    }
  }
  if (vendor == "xlnx") vendor = "xilinx";
  std::string joined(vendor);
  if (!vendor.empty()) joined += '-';
  joined += model;
  return Sanitize(joined);
}

bool IsValidLabelKey(std::string_view key) {
  std::string_view name = key;
  if (size_t slash = key.find('/'); slash != std::string_view::npos) {
    if (!IsValidDnsSubdomain(key.substr(0, slash))) return false;
    name = key.substr(slash + 1);
  }
  return IsValidNamePart(name, /*allow_empty=*/false);
}

bool IsValidLabelValue(std::string_view value) {
  return IsValidNamePart(value, /*allow_empty=*/true);
}

void AddDeviceTreeLabels(const Inventory& inventory, Labels& labels) {
  std::map<std::string, int> counts;
  if (inventory.board) {
    for (const std::string& c : inventory.board->compatible) {
      std::string name = CompatibleToLabelName(c);
      if (!name.empty()) counts[name] = 1;
    }
  }
  for (const DtNodeInfo& node : inventory.dt_nodes) {
    // A node listing the same string twice still counts once.
    std::map<std::string, bool> seen;
    for (const std::string& c : node.compatible) {
      std::string name = CompatibleToLabelName(c);
      if (name.empty() || seen[name]) continue;
      seen[name] = true;
      ++counts[name];
    }
  }
  for (const auto& [name, count] : counts) {
    labels[std::string(kDtLabelPrefix) + name] = std::to_string(count);
  }
}

namespace {

std::string_view Vendor(std::string_view compatible) {
  return compatible.substr(0, compatible.find(','));
}

std::string_view Model(std::string_view compatible) {
  size_t comma = compatible.find(',');
  return comma == std::string_view::npos ? compatible : compatible.substr(comma + 1);
}

// Root compatibles that name a family of SoCs rather than a chip, where the chip's name does
// not start with the family's (an A311D and an S922X are both "amlogic,g12b").
bool KnownSocFamily(std::string_view compatible) {
  static constexpr std::string_view kFamilies[] = {
      "amlogic,g12a",       "amlogic,g12b",      "amlogic,sm1",       "amlogic,axg",
      "amlogic,meson-gxbb", "amlogic,meson-gxl", "amlogic,meson-gxm", "amlogic,meson8",
      "amlogic,meson8b",    "amlogic,meson8m2"};
  return std::find(std::begin(kFamilies), std::end(kFamilies), compatible) != std::end(kFamilies);
}

}  // namespace

SocCompatibles FindSoc(const std::vector<std::string>& compatible) {
  SocCompatibles out;
  if (compatible.empty()) return out;
  const std::string& last = compatible.back();
  out.soc = last;
  if (compatible.size() < 3) return out;  // the first names the board
  const std::string& chip = compatible[compatible.size() - 2];
  // "samsung,exynos5800" before "samsung,exynos5": the chip, then its family.
  bool same_vendor = Vendor(chip) == Vendor(last);
  bool family = KnownSocFamily(last) ||
                (Model(chip).size() > Model(last).size() && Model(chip).starts_with(Model(last)));
  if (same_vendor && family) {
    out.soc = chip;
    out.family = last;
  }
  return out;
}

void AddBoardLabels(const Inventory& inventory, Labels& labels) {
  if (!inventory.board) return;
  const BoardInfo& board = *inventory.board;
  std::string prefix(kLabelPrefix);
  if (!board.compatible.empty()) {
    std::string b = CompatibleToLabelName(board.compatible.front());
    if (!b.empty()) labels[prefix + "board"] = b;
    SocCompatibles socs = FindSoc(board.compatible);
    std::string soc = CompatibleToLabelName(socs.soc);
    if (!soc.empty()) labels[prefix + "soc"] = soc;
    std::string family = CompatibleToLabelName(socs.family);
    if (!family.empty()) labels[prefix + "soc.family"] = family;
  }
  std::string model = SanitizeLabelValue(board.model);
  if (!model.empty()) labels[prefix + "board.model"] = model;
}

void AddSystemLabels(const Inventory& inventory, Labels& labels) {
  std::string prefix(kLabelPrefix);
  const SystemInfo& system = inventory.system;
  for (const auto& [name, raw] : {std::pair{"kernel.version", &system.kernel_release},
                                  {"os.id", &system.os_id},
                                  {"os.version", &system.os_version_id}}) {
    std::string value = SanitizeLabelValue(*raw);
    if (!value.empty()) labels[prefix + name] = value;
  }
}

Labels RenderLabels(const Inventory& inventory) {
  Labels labels;
  AddDeviceTreeLabels(inventory, labels);
  AddBoardLabels(inventory, labels);
  AddCpuLabels(inventory, labels);
  AddDeviceLabels(inventory, labels);
  AddSystemLabels(inventory, labels);
  return labels;
}

}  // namespace edgefd
