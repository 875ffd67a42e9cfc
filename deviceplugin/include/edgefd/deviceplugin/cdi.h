#pragma once

#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/files.h"
#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// The CDI kind of every edgefd device: vendor "edgefd.io", class "device".
inline constexpr std::string_view kCdiKind = "edgefd.io/device";
/// The CDI spec version written: the oldest that has every feature used (env and device
/// nodes), so container runtimes with an older CDI library (containerd 1.7) read the specs.
inline constexpr std::string_view kCdiVersion = "0.3.0";
/// Where container runtimes look for dynamic CDI specs.
inline constexpr std::string_view kDefaultCdiDir = "/var/run/cdi";

/// The device's name in CDI specs and in ResourceSlices: a DNS label derived from the stable
/// ID. Cores keep their plugin ID ("cpu4"); an accelerator is "<rule>-<id>" lower-cased with
/// every other character turned into '-' ("edgetpu-1-1-2" for USB port 1-1.2,
/// "hailo-0000-01-00-0" for PCI 0000:01:00.0), cut and given a stable hash suffix when longer
/// than 63 characters. A pure function of the resource and the ID, so the device plugin's
/// Allocate and the DRA driver name a device alike.
std::string DeviceName(const ResourceSnapshot& resource, const PluginDevice& device);

/// "edgefd.io/device=<name>": the fully qualified CDI device name.
std::string QualifiedCdiName(std::string_view name);

/// One CDI device: a name and its container edits.
struct CdiDevice {
  std::string name;
  std::vector<std::string> env;       ///< "NAME=value"
  std::vector<std::string> devnodes;  ///< /dev paths, host path = container path, "rw"

  bool operator==(const CdiDevice&) const = default;
};

/// The common-spec device of every present device of `resources` (gone devices have no node
/// to give), in resource then natural ID order: its device nodes and metadata as
/// `EDGEFD_<DEVICE>_<ATTR>` (DEVICE is the device name upper-cased, '-' → '_'): STABLE_ID,
/// VENDOR_ID, PRODUCT_ID, SERIAL, DRIVER, NUMA_NODE where known; cores CPU, CORE_CLASS, MODEL,
/// CAPACITY, MAX_MHZ. A device whose name another already took is left out with a warning.
std::vector<CdiDevice> CommonCdiDevices(const std::vector<ResourceSnapshot>& resources);

/// A CDI spec document (JSON text) of kind kCdiKind holding `devices`.
std::string CdiSpecJson(const std::vector<CdiDevice>& devices);

/// Whether `uid` has the form Kubernetes gives every object's UID, RFC 4122's
/// 8-4-4-4-12 hexadecimal digits ("0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a21"). Only such a UID
/// names a claim's spec file: a UID is what the kubelet's caller (or anyone who reaches the
/// DRA socket) sends.
bool IsObjectUid(std::string_view uid);

/// The spec files edgefd keeps in a CDI directory: the common spec `edgefd.io-device.json`,
/// rewritten whenever the devices change, and per-claim specs `edgefd.io-device_<uid>.json`
/// with the environment that sums up one allocation. Safe to use from many threads.
class CdiSpecDir {
 public:
  explicit CdiSpecDir(std::filesystem::path dir) : dir_(std::move(dir)) {}

  const std::filesystem::path& dir() const { return dir_; }
  std::filesystem::path CommonSpecPath() const;
  std::filesystem::path ClaimSpecPath(std::string_view claim_uid) const;
  /// The CDI device name of a claim's summary device: "claim-<uid>".
  static std::string ClaimDeviceName(std::string_view claim_uid);

  /// Writes the common spec for `resources` unless the file already holds exactly that.
  Status WriteCommon(const std::vector<ResourceSnapshot>& resources);
  /// Writes the claim's spec: one device, ClaimDeviceName(uid), with `env`. A UID that is not
  /// IsObjectUid is an Error, and no file is touched.
  Status WriteClaim(std::string_view claim_uid, const std::vector<std::string>& env);
  /// Removes the claim's spec; a missing file is fine, a UID that is not IsObjectUid an Error.
  Status RemoveClaim(std::string_view claim_uid);
  /// UIDs of every claim spec in the directory (files whose name holds no IsObjectUid are not
  /// edgefd's and are left out).
  std::vector<std::string> ClaimSpecs() const;
  /// An uninstall: removes every spec of edgefd's here but those a prepared claim still needs
  /// (a container of a running pod is created again from them when it restarts): the specs of
  /// the claims in `prepared` (UIDs) and, while there is one, the common spec, whose devices
  /// those containers name too. Returns the files that stay; a file that cannot be removed
  /// stays and is logged. Call it after the writers stopped (CdiSpecFeed::Stop).
  std::vector<std::filesystem::path> RemoveForUninstall(const std::set<std::string>& prepared);

 private:
  std::filesystem::path dir_;
  std::mutex mu_;  // one writer of the common spec at a time
  std::string last_common_;
};

/// Keeps the common CDI spec equal to a registry: writes it once at Start and again after
/// every change the registry reports. Write failures are logged and retried at the next change.
class CdiSpecFeed {
 public:
  /// `registry` and `dir` must outlive the feed.
  CdiSpecFeed(DeviceRegistry& registry, CdiSpecDir& dir) : registry_(registry), dir_(dir) {}
  ~CdiSpecFeed() { Stop(); }
  CdiSpecFeed(const CdiSpecFeed&) = delete;
  CdiSpecFeed& operator=(const CdiSpecFeed&) = delete;

  /// Writes the spec now (an error here names the directory: it is likely not writable),
  /// then follows the registry.
  Status Start();
  void Stop();

 private:
  Status WriteNow();

  DeviceRegistry& registry_;
  CdiSpecDir& dir_;
  int listener_ = 0;
};

/// Every resource of `registry`, as snapshots, sorted by name.
std::vector<ResourceSnapshot> AllSnapshots(const DeviceRegistry& registry);

}  // namespace edgefd::deviceplugin
