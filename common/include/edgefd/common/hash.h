#pragma once

// FNV-1a: a short, stable hash of bytes, the same on every node, build and version (std::hash
// is none of these). What edgefd names or versions by content uses it: shortened label names,
// the rules files' version, the DRA checkpoint's checksum, the runtime's clock identity.

#include <cstdint>
#include <string_view>

namespace edgefd {

inline constexpr uint64_t kFnv1a64Start = 14695981039346656037ull;

/// FNV-1a 64 of `bytes`, continuing from `h` (kFnv1a64Start for a new hash).
inline uint64_t Fnv1a64(std::string_view bytes, uint64_t h = kFnv1a64Start) {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// FNV-1a 32 of `bytes`.
inline uint32_t Fnv1a32(std::string_view bytes) {
  uint32_t h = 2166136261u;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 16777619u;
  }
  return h;
}

}  // namespace edgefd
