#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"

namespace edgefd {

/// A devicetree node as read from either form (kernel directory tree or flattened blob).
/// Properties hold their raw bytes; helpers below decode the common shapes.
struct DtNode {
  std::string name;  ///< full name with unit address ("cpu@0"); "" for the root
  std::map<std::string, std::string> properties;
  std::vector<DtNode> children;

  bool operator==(const DtNode&) const = default;

  const DtNode* Child(std::string_view name) const;
  const std::string* Property(std::string_view name) const;
  /// A property holding NUL-separated strings (`compatible`); empty when absent.
  std::vector<std::string> Strings(std::string_view name) const;
  /// The first string of a string property, or nullopt.
  std::optional<std::string> String(std::string_view name) const;
  /// A property holding one or more big-endian 32-bit cells.
  std::vector<uint32_t> Cells(std::string_view name) const;
  /// `status` absent, "okay" or "ok".
  bool Enabled() const;
  /// Name without the unit address ("cpu@0" -> "cpu").
  std::string BaseName() const;
};

/// How to read a tree: limits that keep a hostile tree from exhausting the reader, and which
/// properties to keep.
struct DtLimits {
  int max_depth = 64;
  size_t max_nodes = 200000;
  size_t max_property_bytes = 1 << 20;
  /// When set, only properties it accepts are read (a live tree has thousands of files and
  /// discovery needs a handful of names); empty reads everything.
  std::function<bool(std::string_view property)> keep_property;
  /// Directory form only (a blob's properties cost nothing to keep): properties that
  /// `defer_property` names are read after the node's other properties and its children, and
  /// only if `keep_deferred` accepts them for the node as read so far. A live tree has a
  /// `phandle` file in most nodes, and discovery needs the few a reference points at.
  std::function<bool(std::string_view property)> defer_property;
  std::function<bool(const DtNode& node, std::string_view property)> keep_deferred;
};

/// Reads the kernel's directory form (`/sys/firmware/devicetree/base`): a directory per node,
/// a file per property. Symlinks are not followed (the kernel exposes none; a cycle made of
/// them is skipped). Unreadable entries are skipped with a warning added to `warnings`.
Result<DtNode> ReadDeviceTreeDir(const std::filesystem::path& dir,
                                 std::vector<std::string>* warnings, const DtLimits& limits = {});

/// Parses a flattened devicetree blob with libfdt. `source` names the input in errors.
Result<DtNode> ParseDeviceTreeBlob(std::string_view blob, std::string_view source,
                                   const DtLimits& limits = {});

/// Reads and parses a `.dtb` file (or `/sys/firmware/fdt`).
Result<DtNode> ReadDeviceTreeBlobFile(const std::filesystem::path& file,
                                      const DtLimits& limits = {});

/// The default node names whose compatibles become `beta.devicetree.org/` labels.
std::vector<std::string> DefaultDtNodeNames();

/// Board facts and the enabled nodes with the given base names (recursive walk; a disabled
/// node hides its subtree; `__symbols__`, `__fixups__` and `__local_fixups__` are ignored).
BoardInfo ExtractBoard(const DtNode& root);
std::vector<DtNodeInfo> ExtractNamedNodes(const DtNode& root,
                                          const std::vector<std::string>& names);

}  // namespace edgefd
