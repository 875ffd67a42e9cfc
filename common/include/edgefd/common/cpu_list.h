#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace edgefd {

/// Parses a kernel CPU list ("0-3,6,8-9", as in /sys and in EDGEFD_*_CPUS): ascending, no
/// duplicates; "" is an empty list. nullopt when malformed or a CPU number is 65536 or more.
std::optional<std::vector<int>> ParseCpuList(std::string_view text);

/// "4,5" (comma-separated, no ranges): the form the device plugin writes.
std::string FormatCpuList(const std::vector<int>& cpus);

}  // namespace edgefd
