#pragma once

// The resource.k8s.io part of the API server stand-in (FakeApiServer routes every request
// under /apis/resource.k8s.io here): group discovery, ResourceSlices (create, dry-run create,
// get, list with spec.nodeName/spec.driver field selectors, update with resourceVersion
// preconditions, delete) checked against the API's validation rules, and ResourceClaims a test
// creates (get, list across namespaces, status update). Served versions and whether device taints
// are kept (the DRADeviceTaints feature) are settings, so one server plays a 1.32 or a 1.35
// cluster.
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/json.h"

namespace edgefd::testing {

class FakeResourceApi {
 public:
  struct Reply {
    int status = 200;
    std::string body;
  };

  /// Answers a request under /apis/resource.k8s.io; nullopt for any other path.
  std::optional<Reply> Handle(const std::string& method, const std::string& target,
                              const std::string& body);

  /// The versions served, e.g. {"v1"} (1.34+) or {"v1beta1"} (1.32); default {"v1"}.
  void SetVersions(std::vector<std::string> versions);
  /// False: device taints are dropped on write, as with DRADeviceTaints off (the default).
  void SetTaintsEnabled(bool enabled);

  /// One allocation result of a claim.
  struct Result {
    std::string request, driver, pool, device;
  };
  /// Creates (or replaces) an allocated ResourceClaim; `results` empty: not allocated.
  void AddClaim(const std::string& ns, const std::string& name, const std::string& uid,
                const std::vector<Result>& results, const Json& extra_config = nullptr);
  /// Adds a pod to the claim's status.reservedFor, as the scheduler does when it binds it.
  void ReserveClaim(const std::string& ns, const std::string& name, const std::string& pod_uid);
  void DeleteClaim(const std::string& ns, const std::string& name);
  /// The stored claim (null when absent).
  Json Claim(const std::string& ns, const std::string& name);

  /// Every stored slice, in name order.
  std::vector<Json> Slices();
  /// Stores a slice as another writer would (no validation); a stale slice for tests.
  void PutSlice(Json slice);
  void DeleteSlice(const std::string& name);
  /// Devices of a node's pool at its highest generation, by name (slices of lower generations
  /// are ignored, as the scheduler ignores them).
  std::vector<Json> PoolDevices(const std::string& node);
  /// Successful slice writes (POST, PUT, DELETE; dry runs excluded).
  size_t SliceWrites();

 private:
  Reply Slices(const std::string& method, const std::string& version, const std::string& rest,
               const std::string& query, const std::string& body);
  Reply Claims(const std::string& method, const std::string& rest, const std::string& body);

  std::mutex mu_;
  std::vector<std::string> versions_{"v1"};
  bool taints_ = false;
  uint64_t next_rv_ = 5000;
  size_t writes_ = 0;
  std::map<std::string, Json> slices_;
  std::map<std::string, Json> claims_;  // "ns/name"
};

}  // namespace edgefd::testing
