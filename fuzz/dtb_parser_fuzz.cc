// Feeds arbitrary bytes to the blob parser and everything downstream of it; any crash,
// sanitizer report or invalid label is a finding.
#include <cstdio>
#include <cstdlib>
#include <string_view>

#include "edgefd/discovery/devicetree.h"
#include "edgefd/discovery/labels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view blob(reinterpret_cast<const char*>(data), size);
  auto tree = edgefd::ParseDeviceTreeBlob(blob, "fuzz");
  if (!tree.ok()) return 0;
  edgefd::Inventory inventory;
  inventory.board = edgefd::ExtractBoard(*tree);
  inventory.dt_nodes = edgefd::ExtractNamedNodes(*tree, {"cpu", "gpu", "npu", "vpu"});
  for (const auto& [name, value] : edgefd::RenderLabels(inventory)) {
    if (!edgefd::IsValidLabelKey(name) || !edgefd::IsValidLabelValue(value)) {
      std::fprintf(stderr, "invalid label %s=%s\n", name.c_str(), value.c_str());
      std::abort();
    }
  }
  return 0;
}
