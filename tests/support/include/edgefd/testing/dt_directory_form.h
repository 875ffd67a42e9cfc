#pragma once

#include <filesystem>
#include <fstream>

#include "edgefd/discovery/devicetree.h"

namespace edgefd::testing {

/// Writes a tree out in the kernel's directory form, as /sys/firmware/devicetree/base has it
/// (a directory per node, a file per property); the inverse of ReadDeviceTreeDir.
inline void WriteDirectoryForm(const DtNode& node, const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  for (const auto& [name, value] : node.properties) {
    std::ofstream(dir / name, std::ios::binary) << value;
  }
  for (const DtNode& child : node.children) WriteDirectoryForm(child, dir / child.name);
}

}  // namespace edgefd::testing
