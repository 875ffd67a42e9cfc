#include "edgefd/dra/recovery_api.h"

#include <algorithm>

#include "edgefd/common/json.h"
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
  std::string token;
  for (int page = 0; page < kMaxPages; ++page) {
    std::string path = all + "?limit=" + std::to_string(kPageSize);
    if (!token.empty()) path += "&continue=" + kube::Escape(token);
    auto response = api.Send("GET", path, "", "");
    if (!response) return Error{"GET " + all + ": " + response.error().message};
    if (response->status != 200) {
      return Error{DescribeFailure("GET " + all, *response)};
    }
    auto list = ParseJson(response->body, all);
    if (!list) return list.error();
    const Json* items = ValueAt(*list, "/items");
    if (items == nullptr || !items->is_array()) {
      return Error{all + ": the answer is not a list"};
    }
    for (const Json& item : *items) {
      auto claim = ClaimFromJson(item, all);
      if (!claim) return claim.error();
      if (OnNode(*claim, node)) out.push_back(std::move(*claim));
    }
    token = StringAt(*list, "/metadata/continue");
    if (token.empty()) return out;
  }
  return Error{all + ": more than " + std::to_string(kMaxPages * kPageSize) +
               " claims; not listed"};
}

}  // namespace edgefd::dra
