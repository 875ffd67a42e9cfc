#include "edgefd/dra/recovery_api.h"

#include <algorithm>

#include "edgefd/common/json.h"
#include "edgefd/kube/api.h"
#include "edgefd/kube/paths.h"

namespace edgefd::dra {
namespace {

// A page of at most this many claims; a cluster with more than kMaxPages of them is refused
// rather than listed without end.
constexpr int kPageSize = 250;
constexpr int kMaxPages = 400;

bool OnNode(const ClaimObject& claim, std::string_view node) {
  if (!claim.allocated || claim.reserved_for == 0) return false;
  return std::any_of(claim.results.begin(), claim.results.end(), [&](const AllocationResult& r) {
    return r.driver == kDriverName && r.pool == node;
  });
}

}  // namespace

Result<std::vector<ClaimObject>> ListNodeClaims(kube::ApiTransport& api, const ResourceApi& version,
                                                std::string_view node) {
  auto claims_path = kube::ResourceClaimsPath(version.version(), "");
  if (!claims_path) return claims_path.error();
  const std::string& all = *claims_path;
  std::vector<ClaimObject> out;
  Status listed =
      kube::Api(api).ListEach(all, kPageSize, kMaxPages, "claims", [&](const Json& item) -> Status {
        auto claim = ClaimFromJson(item, all);
        if (!claim) return claim.error();
        if (OnNode(*claim, node)) {
          out.push_back(std::move(*claim));
        }
        return Ok{};
      });
  if (!listed) return listed.error();
  return out;
}

}  // namespace edgefd::dra
