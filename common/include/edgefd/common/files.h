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

/// Writes `content` to `path` atomically: a hidden temporary file in the same directory (whose
/// name does not end in .json, so a reader watching the directory for *.json never reads it half
/// written), fsync, rename over `path`, fsync of the directory. Errors name the path.
Status WriteFileAtomically(const std::filesystem::path& path, std::string_view content);

/// `digits` lower-case hexadecimal digits from the kernel's random source: a token that sets
/// apart names made by different runs (/dev/shm rings, scratch files), where a pid alone does
/// not (a pid is reused, and is 1 in every PID namespace).
std::string RandomHex(size_t digits);

}  // namespace edgefd
