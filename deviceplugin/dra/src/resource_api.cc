#include "edgefd/dra/resource_api.h"

#include <algorithm>
#include <ctime>

#include "edgefd/common/json.h"

namespace edgefd::dra {
namespace {

constexpr std::string_view kGroupPath = "/apis/resource.k8s.io";
// A ResourceClaim holds at most 32 requests with up to 32 results each; anything far larger
// is not a claim the API server would have stored.
constexpr size_t kMaxResults = 4096;
constexpr size_t kMaxClaimBytes = 4 << 20;

}  // namespace

bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(s.front()) || !alnum(s.back())) return false;
  return std::all_of(s.begin(), s.end(), [&](char c) { return alnum(c) || c == '-'; });
}

bool IsDnsSubdomain(std::string_view s) {
  if (s.empty() || s.size() > 253) return false;
  for (size_t start = 0;;) {
    const size_t dot = s.find('.', start);
    if (!IsDnsLabel(s.substr(start, dot == std::string_view::npos ? dot : dot - start))) {
      return false;
    }
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

std::string ResourceApi::NodeSlicesSelector(std::string_view node) {
  return "spec.nodeName=" + std::string(node) + ",spec.driver=" + std::string(kDriverName);
}

const std::vector<std::string>& SupportedResourceVersions() {
  static const std::vector<std::string> versions = {"v1", "v1beta2", "v1beta1"};
  return versions;
}

Result<ResourceApi> DiscoverResourceApi(kube::ApiTransport& api) {
  auto response = kube::Api(api).GetResourceGroup();
  if (!response) return response.error();
  if (response->status == 404) {
    return Error{
        "the API server serves no resource.k8s.io API group: Dynamic Resource Allocation "
        "needs Kubernetes 1.32+ (1.34+ for resource.k8s.io/v1)"};
  }
  if (response->status != 200)
    return Error{DescribeFailure("GET " + std::string(kGroupPath), *response)};
  const Json group = ParseJsonOrNull(response->body);
  std::vector<std::string> served;
  if (const Json* versions = ValueAt(group, "/versions"); versions && versions->is_array()) {
    for (const Json& v : *versions) served.push_back(StringAt(v, "/version"));
  }
  for (const std::string& want : SupportedResourceVersions()) {
    if (std::find(served.begin(), served.end(), want) != served.end()) return ResourceApi(want);
  }
  std::string list;
  for (const std::string& v : served) list += (list.empty() ? "" : ", ") + v;
  return Error{"the API server serves resource.k8s.io versions [" + list +
               "]; edgefd needs v1, v1beta2 or v1beta1"};
}

Result<ClaimObject> ParseClaim(std::string_view text, std::string_view where) {
  const std::string w(where);
  if (text.size() > kMaxClaimBytes) return Error{w + ": ResourceClaim is larger than 4 MiB"};
  auto parsed = ParseJson(text, w);
  if (!parsed) return parsed.error();
  return ClaimFromJson(*parsed, where);
}

Result<ClaimObject> ClaimFromJson(const Json& claim, std::string_view where) {
  const std::string w(where);
  if (!claim.is_object()) return Error{w + ": not a JSON object"};
  const Json* meta = ValueAt(claim, "/metadata");
  if (meta == nullptr || !meta->is_object()) return Error{w + ": no metadata"};
  ClaimObject out;
  out.ns = StringAt(*meta, "/namespace");
  out.name = StringAt(*meta, "/name");
  out.uid = StringAt(*meta, "/uid");
  out.resource_version = StringAt(*meta, "/resourceVersion");
  const Json* allocation = ValueAt(claim, "/status/allocation");
  if (allocation == nullptr || !allocation->is_object()) return out;
  out.allocated = true;
  if (const Json* reserved = ValueAt(claim, "/status/reservedFor");
      reserved && reserved->is_array())
    out.reserved_for = reserved->size();
  if (const Json* results = ValueAt(*allocation, "/devices/results"); results != nullptr) {
    if (!results->is_array()) return Error{w + ": status.allocation.devices.results is not a list"};
    if (results->size() > kMaxResults) return Error{w + ": too many allocation results"};
    for (const Json& r : *results) {
      AllocationResult result{StringAt(r, "/request"), StringAt(r, "/driver"), StringAt(r, "/pool"),
                              StringAt(r, "/device")};
      if (result.driver.empty() || result.pool.empty() || result.device.empty()) {
        return Error{w + ": an allocation result lacks driver, pool or device"};
      }
      out.results.push_back(std::move(result));
    }
  }
  if (const Json* config = ValueAt(*allocation, "/devices/config"); config && config->is_array()) {
    for (const Json& c : *config) {
      if (const Json* opaque = ValueAt(c, "/opaque"); opaque != nullptr) {
        out.config_drivers.push_back(StringAt(*opaque, "/driver"));
      }
    }
  }
  return out;
}

}  // namespace edgefd::dra
