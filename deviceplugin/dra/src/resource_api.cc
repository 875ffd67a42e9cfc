#include "edgefd/dra/resource_api.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace edgefd::dra {
using nlohmann::json;

namespace {

constexpr std::string_view kGroupPath = "/apis/resource.k8s.io";
// A ResourceClaim holds at most 32 requests with up to 32 results each; anything far larger
// is not a claim the API server would have stored.
constexpr size_t kMaxResults = 4096;
constexpr size_t kMaxClaimBytes = 4 << 20;

const json* Find(const json& object, const char* key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

std::string StringField(const json& object, const char* key) {
  const json* v = Find(object, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

// The value at `pointer`, or nullptr.
const json* At(const json& object, const char* pointer) {
  const json* at = &object;
  std::string_view rest = pointer;
  while (!rest.empty()) {
    rest.remove_prefix(1);  // '/'
    size_t slash = rest.find('/');
    std::string key(rest.substr(0, slash));
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
    if (at->is_object()) {
      auto it = at->find(key);
      if (it == at->end()) return nullptr;
      at = &*it;
    } else if (at->is_array() && !key.empty() &&
               key.find_first_not_of("0123456789") == std::string::npos && key.size() < 9) {
      size_t index = std::stoul(key);
      if (index >= at->size()) return nullptr;
      at = &(*at)[index];
    } else {
      return nullptr;
    }
  }
  return at;
}

}  // namespace

std::string JsonString(const json& object, const char* pointer) {
  const json* v = At(object, pointer);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string();
}

std::optional<int64_t> JsonInt(const json& object, const char* pointer) {
  const json* v = At(object, pointer);
  if (v == nullptr || !v->is_number_integer()) return std::nullopt;
  return v->get<int64_t>();
}

std::string ResourceApi::SlicesPath() const {
  return std::string(kGroupPath) + "/" + version_ + "/resourceslices";
}

std::string ResourceApi::NodeSlicesQuery(std::string_view node) const {
  // Node names are DNS subdomains: nothing in them needs escaping in a query.
  return SlicesPath() + "?fieldSelector=spec.nodeName%3D" + std::string(node) +
         "%2Cspec.driver%3D" + std::string(kDriverName);
}

std::string ResourceApi::SlicePath(std::string_view name) const {
  return SlicesPath() + "/" + std::string(name);
}

std::string ResourceApi::ClaimPath(std::string_view ns, std::string_view name) const {
  return std::string(kGroupPath) + "/" + version_ + "/namespaces/" + std::string(ns) +
         "/resourceclaims/" + std::string(name);
}

std::string ResourceApi::ClaimStatusPath(std::string_view ns, std::string_view name) const {
  return ClaimPath(ns, name) + "/status";
}

const std::vector<std::string>& SupportedResourceVersions() {
  static const std::vector<std::string> versions = {"v1", "v1beta2", "v1beta1"};
  return versions;
}

std::string DescribeFailure(std::string_view what, const ApiResponse& response) {
  std::string out = std::string(what) + ": HTTP " + std::to_string(response.status);
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  std::string message = StringField(body, "message");
  if (!message.empty()) out += ": " + message.substr(0, 300);
  return out;
}

Result<ResourceApi> DiscoverResourceApi(ApiTransport& api) {
  auto response = api.Send("GET", std::string(kGroupPath), "", "");
  if (!response) return response.error();
  if (response->status == 404) {
    return Error{
        "the API server serves no resource.k8s.io API group: Dynamic Resource Allocation "
        "needs Kubernetes 1.32+ (1.34+ for resource.k8s.io/v1)"};
  }
  if (response->status != 200)
    return Error{DescribeFailure("GET " + std::string(kGroupPath), *response)};
  json group = json::parse(response->body, nullptr, false);
  std::vector<std::string> served;
  if (const json* versions = Find(group, "versions"); versions != nullptr && versions->is_array()) {
    for (const json& v : *versions) served.push_back(StringField(v, "version"));
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
  json claim = json::parse(text, nullptr, false);
  if (claim.is_discarded() || !claim.is_object()) return Error{w + ": not a JSON object"};
  ClaimObject out;
  const json* meta = Find(claim, "metadata");
  if (meta == nullptr || !meta->is_object()) return Error{w + ": no metadata"};
  out.ns = StringField(*meta, "namespace");
  out.name = StringField(*meta, "name");
  out.uid = StringField(*meta, "uid");
  out.resource_version = StringField(*meta, "resourceVersion");
  const json* status = Find(claim, "status");
  const json* allocation = status != nullptr ? Find(*status, "allocation") : nullptr;
  if (allocation == nullptr || !allocation->is_object()) return out;
  out.allocated = true;
  const json* devices = Find(*allocation, "devices");
  if (devices == nullptr) return out;
  if (const json* results = Find(*devices, "results"); results != nullptr) {
    if (!results->is_array()) return Error{w + ": status.allocation.devices.results is not a list"};
    if (results->size() > kMaxResults) return Error{w + ": too many allocation results"};
    for (const json& r : *results) {
      AllocationResult result{StringField(r, "request"), StringField(r, "driver"),
                              StringField(r, "pool"), StringField(r, "device")};
      if (result.driver.empty() || result.pool.empty() || result.device.empty()) {
        return Error{w + ": an allocation result lacks driver, pool or device"};
      }
      out.results.push_back(std::move(result));
    }
  }
  if (const json* config = Find(*devices, "config"); config != nullptr && config->is_array()) {
    for (const json& c : *config) {
      const json* opaque = Find(c, "opaque");
      if (opaque != nullptr) out.config_drivers.push_back(StringField(*opaque, "driver"));
    }
  }
  return out;
}

}  // namespace edgefd::dra
