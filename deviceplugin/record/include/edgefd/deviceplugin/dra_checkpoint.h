#pragma once

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace edgefd::deviceplugin {

/// One device of a prepared claim, as NodePrepareResources answered it.
struct PreparedDevice {
  std::string request;  ///< the claim's request it serves
  std::string pool;
  std::string device;
  std::vector<std::string> cdi_ids;  ///< fully qualified CDI names

  bool operator==(const PreparedDevice&) const = default;
};

/// A claim edgefd prepared: what it answered and what its per-claim CDI spec holds.
struct PreparedClaim {
  std::string uid;
  std::string ns;
  std::string name;
  std::vector<PreparedDevice> devices;
  std::vector<std::string> env;  ///< the per-claim CDI device's environment
  /// Recorded, but the kubelet's PodResources answer is still awaited: the devices are held
  /// (the device plugin refuses them meanwhile), yet the claim is not prepared. A restarted
  /// driver drops such a record; the kubelet asks again.
  bool pending = false;

  bool operator==(const PreparedClaim&) const = default;
};

/// Prepared claims by UID.
using PreparedClaims = std::map<std::string, PreparedClaim>;

/// The checkpoint format this build reads and writes. A newer one is never read as corrupt.
inline constexpr int kDraCheckpointVersion = 1;

/// The version a checkpoint's text declares; nullopt when it does not parse or says none.
std::optional<int64_t> DraCheckpointVersion(std::string_view text);

/// Where the DRA driver keeps its checkpoint unless told otherwise.
inline constexpr std::string_view kDefaultDraCheckpoint =
    "/var/lib/kubelet/plugins/edgefd.io/checkpoint.json";

/// The DRA driver's checkpoint file: every prepared claim, so that a restarted plugin answers a
/// repeated NodePrepareResources the same way, can still unprepare, and knows which devices
/// running pods hold. JSON with a version and a checksum over the claims, written atomically
/// (rename). The DRA driver writes it; the device plugin reads it to withdraw what prepared
/// claims hold (one allocation record per node), which is why it lives in this library.
class DraCheckpoint {
 public:
  explicit DraCheckpoint(std::filesystem::path path) : path_(std::move(path)) {}

  const std::filesystem::path& path() const { return path_; }
  /// Reads the file; a missing file is an empty set. A file that cannot be read (but for not
  /// existing), does not parse, has another version or a wrong checksum is an Error naming it.
  Result<PreparedClaims> Load() const;
  /// Load in two steps: the file's bytes (nullopt when it does not exist, an Error when it
  /// cannot be read, is a symbolic link (never followed) or not a regular file, or is over
  /// 64 MiB), then what they say.
  Result<std::optional<std::string>> Read() const;
  Result<PreparedClaims> Parse(const std::string& text) const;
  /// Replaces the file with `claims`.
  Status Save(const PreparedClaims& claims) const;

 private:
  std::filesystem::path path_;
};

}  // namespace edgefd::deviceplugin
