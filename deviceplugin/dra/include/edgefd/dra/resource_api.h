#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/common/result.h"
#include "edgefd/kube/api.h"
#include "edgefd/kube/events.h"

namespace edgefd::dra {

/// The DRA driver name: ResourceSlices' spec.driver, allocation results' driver, the kubelet
/// plugin's registered name and the attribute domain CEL reads.
inline constexpr std::string_view kDriverName = "edgefd.io";

/// Whether `s` is a DNS label (RFC 1123: at most 63 of [a-z0-9-], alphanumeric at both ends),
/// what a namespace must be: only then does it go into an API path.
bool IsDnsLabel(std::string_view s);
/// Whether `s` is a DNS subdomain (at most 253 characters, DNS labels joined by '.'), what a
/// ResourceClaim's name must be.
bool IsDnsSubdomain(std::string_view s);

using kube::NowRfc3339;  // edgefd/kube/events.h

/// Which version of the resource.k8s.io API edgefd talks. v1 (Kubernetes 1.34+) and v1beta2
/// (1.33) have flat devices; v1beta1 (1.32) nests a device's attributes under `basic`.
class ResourceApi {
 public:
  /// `version` is "v1", "v1beta2" or "v1beta1".
  explicit ResourceApi(std::string version = "v1") : version_(std::move(version)) {}

  const std::string& version() const { return version_; }
  /// "resource.k8s.io/v1"
  std::string GroupVersion() const { return "resource.k8s.io/" + version_; }
  /// Devices carry their attributes under `basic` (v1beta1 only).
  bool NestsDevices() const { return version_ == "v1beta1"; }

  /// The field selector of this node's slices of our driver (kube::Api::ListResourceSlices
  /// escapes it): "spec.nodeName=<node>,spec.driver=edgefd.io".
  static std::string NodeSlicesSelector(std::string_view node);

 private:
  std::string version_;
};

/// The versions of resource.k8s.io edgefd can talk, newest first.
const std::vector<std::string>& SupportedResourceVersions();

/// Asks the API server which resource.k8s.io versions it serves (GET /apis/resource.k8s.io)
/// and picks the newest edgefd supports. Errors say what was served and what is needed.
Result<ResourceApi> DiscoverResourceApi(kube::ApiTransport& api);

using kube::DescribeFailure;  // edgefd/kube/events.h

/// One allocated device of a ResourceClaim (status.allocation.devices.results[]).
struct AllocationResult {
  std::string request;  ///< "tpu", or "req/sub" for a subrequest
  std::string driver;
  std::string pool;
  std::string device;

  bool operator==(const AllocationResult&) const = default;
};

/// What edgefd reads of a ResourceClaim.
struct ClaimObject {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  bool allocated = false;                   ///< status.allocation is present
  size_t reserved_for = 0;                  ///< entries of status.reservedFor (consumers)
  std::vector<AllocationResult> results;    ///< every driver's
  std::vector<std::string> config_drivers;  ///< drivers named by opaque configuration
};

/// Parses a ResourceClaim as the API server returns it (any supported version: the fields
/// read are the same). Bad input is an Error naming `where`; sizes are bounded.
Result<ClaimObject> ParseClaim(std::string_view json, std::string_view where);
/// The same, of a claim already parsed (an item of a list).
Result<ClaimObject> ClaimFromJson(const Json& claim, std::string_view where);

}  // namespace edgefd::dra
