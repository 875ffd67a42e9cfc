#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/discovery/inventory.h"
#include "edgefd/discovery/rules.h"

namespace edgefd {

/// A version as Kubernetes' `semver(...)` reads it (semantic versioning 2.0.0), normalised
/// from what drivers and firmware really print: a leading "v" is dropped, a missing minor or
/// patch becomes 0 ("2.1" -> "2.1.0", "1" -> "1.0.0"), leading zeros of a number are dropped
/// ("535.104.05" -> "535.104.5"); a pre-release ("-k") and build metadata ("+git") stay.
/// nullopt when `raw` is not a version: a module's srcversion ("A1B2C3D4E5F6..."), four
/// numbers ("1.0.2.0": which three would be a guess), "unknown", an empty string.
std::optional<std::string> NormalizeSemver(std::string_view raw);

/// A USB `bcdDevice` ("0213", binary-coded decimal JJMN) as a version: "2.1.3"; nullopt when
/// it is not four BCD digits.
std::optional<std::string> BcdToVersion(std::string_view bcd);

/// The largest version file read (a /proc/driver/nvidia/version is about 200 bytes).
inline constexpr size_t kMaxVersionFileBytes = 4096;
/// The longest version string kept; longer is garbage, not a version.
inline constexpr size_t kMaxVersionLength = 64;

/// Reads one version source for `device` below `root`: the module's `version` (else its
/// `srcversion`), a file's first line or what `regex` captures in it, a USB bcdDevice.
/// nullopt when the source is absent; a file that is there but holds no version adds a
/// warning naming it to `warnings` and yields nullopt.
std::optional<std::string> ReadVersionSource(const VersionSource& source, const Device& device,
                                             const std::filesystem::path& root,
                                             std::vector<std::string>* warnings);

/// Fills each device's driver, firmware and runtime versions from its rule's sources (the
/// first source that yields one wins); defaults when a rule names none: the bound driver's
/// module for the driver, the USB bcdDevice for the firmware.
void ReadDeviceVersions(const std::vector<Rule>& rules, const std::filesystem::path& root,
                        std::vector<Device>& devices, std::vector<std::string>* warnings);

/// The kernel release (ROOT/proc/sys/kernel/osrelease, else uname(2) when `live` says the
/// running kernel is this root's) and the OS (ROOT/etc/os-release, else
/// ROOT/usr/lib/os-release: ID and VERSION_ID).
SystemInfo ReadSystemInfo(const std::filesystem::path& root, bool live,
                          std::vector<std::string>* warnings);

}  // namespace edgefd
