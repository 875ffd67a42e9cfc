#include "edgefd/common/allocation.h"

#include <cctype>
#include <optional>

#include "edgefd/common/cpu_list.h"

namespace edgefd {
namespace {

constexpr std::string_view kPrefix = "EDGEFD_";
constexpr std::string_view kDevicesSuffix = "_DEVICES";
constexpr std::string_view kDevnodesSuffix = "_DEVNODES";
constexpr std::string_view kCpusSuffix = "_CPUS";

// NAME when `key` is EDGEFD_<NAME><suffix> with a non-empty NAME.
std::optional<std::string> NameIn(std::string_view key, std::string_view suffix) {
  if (key.size() <= kPrefix.size() + suffix.size() || !key.starts_with(kPrefix) ||
      !key.ends_with(suffix)) {
    return std::nullopt;
  }
  return std::string(key.substr(kPrefix.size(), key.size() - kPrefix.size() - suffix.size()));
}

}  // namespace

std::string_view CoreClassOf(std::string_view resource) {
  for (std::string_view cls : kCoreClasses) {
    if (resource.size() == cls.size() + kCoreResourceSuffix.size() && resource.starts_with(cls) &&
        resource.ends_with(kCoreResourceSuffix)) {
      return cls;
    }
  }
  return {};
}

std::string AllocationEnvName(std::string_view resource) {
  std::string out;
  for (char c : resource) {
    out += (c == '-' || c == '.') ? '_'
                                  : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

std::string DevicesVariable(std::string_view resource) {
  return std::string(kPrefix) + AllocationEnvName(resource) + std::string(kDevicesSuffix);
}

std::string DevnodesVariable(std::string_view resource) {
  return std::string(kPrefix) + AllocationEnvName(resource) + std::string(kDevnodesSuffix);
}

std::string CpusVariable(std::string_view core_class) {
  return std::string(kPrefix) + AllocationEnvName(core_class) + std::string(kCpusSuffix);
}

std::string DeviceMetadataVariable(std::string_view device_name, std::string_view attribute) {
  return std::string(kPrefix) + AllocationEnvName(device_name) + "_" + std::string(attribute);
}

std::string JoinAllocationList(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += ',';
    out += item;
  }
  return out;
}

std::vector<std::string> SplitAllocationList(std::string_view value) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t end = value.find(',', pos);
    if (end == std::string_view::npos) end = value.size();
    if (end > pos) out.emplace_back(value.substr(pos, end - pos));
    pos = end + 1;
  }
  return out;
}

Result<AllocationEnv> ParseAllocationEnv(const std::vector<std::string>& env) {
  AllocationEnv out;
  for (const std::string& kv : env) {
    const size_t eq = kv.find('=');
    if (eq == std::string::npos || !kv.starts_with(kPrefix)) continue;
    const std::string_view key = std::string_view(kv).substr(0, eq);
    const std::string_view value = std::string_view(kv).substr(eq + 1);
    bool is_cpus = false;
    for (std::string_view cls : kCoreClasses) {
      if (key != CpusVariable(cls)) continue;
      is_cpus = true;
      std::optional<std::vector<int>> cpus = ParseCpuList(value);
      if (!cpus) {
        return Error{std::string(key) + "=" + std::string(value) +
                     ": not a CPU list like 4,5 or 0-3"};
      }
      out.cpus[std::string(cls)] = std::move(*cpus);
    }
    if (is_cpus) continue;
    if (auto name = NameIn(key, kDevnodesSuffix)) {
      out.devnodes[*name] = SplitAllocationList(value);
    } else if (auto name = NameIn(key, kDevicesSuffix)) {
      out.devices[*name] = SplitAllocationList(value);
    }
  }
  return out;
}

}  // namespace edgefd
