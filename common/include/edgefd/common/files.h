#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd {

/// The whole of a small input file (rules, inventory): an Error naming the file and `what` it
/// is when it cannot be read or holds more than `max_bytes`. Never reads past `max_bytes` + 1,
/// so a huge file (or /dev/zero) costs no memory.
Result<std::string> ReadFileAtMost(const std::filesystem::path& path, size_t max_bytes,
                                   std::string_view what);

}  // namespace edgefd
