#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "edgefd/discovery/inventory.h"

namespace edgefd {

inline constexpr std::string_view kLabelPrefix = "edgefd.io/";
inline constexpr std::string_view kDtLabelPrefix = "beta.devicetree.org/";
inline constexpr std::string_view kOwnedLabelsAnnotation = "edgefd.io/owned-labels";

/// Turns arbitrary bytes into a valid Kubernetes label name part (no prefix): at most 63
/// characters of [A-Za-z0-9._-], starting and ending alphanumeric. Invalid bytes become '-',
/// runs of '-' collapse, over-long results are cut and given a stable 8-hex-digit hash suffix
/// of the original. Returns "" only when nothing alphanumeric is left.
std::string SanitizeLabelName(std::string_view raw);

/// The stable 8-hex-digit hash (FNV-1a) edgefd gives names it has to shorten.
std::string ShortHash(std::string_view s);

/// Same rules for a label value; an empty value is valid.
std::string SanitizeLabelValue(std::string_view raw);

/// A devicetree `compatible` string as a label name part: "vendor,model" -> "vendor-model",
/// text after a second comma dropped, vendor "xlnx" -> "xilinx", then sanitised.
std::string CompatibleToLabelName(std::string_view compatible);

/// True when `name` (with optional prefix) and `value` are valid per Kubernetes' rules.
bool IsValidLabelKey(std::string_view key);
bool IsValidLabelValue(std::string_view value);

/// The SoC among a root node's compatibles (most specific first): `soc` the chip, `family`
/// its family when the tree names one after it ("samsung,exynos5800", "samsung,exynos5";
/// "amlogic,a311d", "amlogic,g12b"), else "". A chip is the second-to-last compatible (never
/// the first, which names the board) of the last one's vendor, when the last is a family: its
/// model starts the chip's ("exynos5" of "exynos5800") or it is a known family (Amlogic's
/// g12a, g12b, sm1, axg, meson-gx*). Otherwise the last compatible is the SoC.
struct SocCompatibles {
  std::string soc;
  std::string family;
};
SocCompatibles FindSoc(const std::vector<std::string>& compatible);

/// All labels edgefd sets for this inventory (DESIGN.md "Label contract").
Labels RenderLabels(const Inventory& inventory);

/// The parts of RenderLabels, one per source; each adds to `labels`.
void AddDeviceTreeLabels(const Inventory& inventory, Labels& labels);
void AddBoardLabels(const Inventory& inventory, Labels& labels);
void AddCpuLabels(const Inventory& inventory, Labels& labels);
void AddDeviceLabels(const Inventory& inventory, Labels& labels);
/// `edgefd.io/kernel.version`, `edgefd.io/os.id`, `edgefd.io/os.version`.
void AddSystemLabels(const Inventory& inventory, Labels& labels);

}  // namespace edgefd
