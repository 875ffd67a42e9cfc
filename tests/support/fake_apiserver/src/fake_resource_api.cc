#include "edgefd/testing/fake_resource_api.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "status_body.h"

namespace edgefd::testing {

namespace {

constexpr std::string_view kResourceGroup = "/apis/resource.k8s.io";

FakeResourceApi::Reply ResourceFail(int code, const std::string& reason,
                                    const std::string& message) {
  return {code, StatusBody(code, reason, message)};
}

bool IsDnsLabel(const std::string& s) {
  if (s.empty() || s.size() > 63 || s.front() == '-' || s.back() == '-') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
  });
}

bool IsDnsSubdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!IsDnsLabel(s.substr(start, dot == std::string::npos ? std::string::npos : dot - start))) {
      return false;
    }
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

// An attribute name: a C identifier of at most 32 characters, optionally "domain/" qualified.
bool IsAttributeName(const std::string& s) {
  std::string id = s;
  if (auto slash = s.find('/'); slash != std::string::npos) {
    if (!IsDnsSubdomain(s.substr(0, slash))) return false;
    id = s.substr(slash + 1);
  }
  if (id.empty() || id.size() > 32 || std::isdigit(static_cast<unsigned char>(id[0]))) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// The API server's checks on a ResourceSlice that matter to a driver; "" when valid.
std::string Validate(const Json& slice, bool nested) {
  const std::string name = slice.value("/metadata/name"_json_pointer, std::string());
  if (!IsDnsSubdomain(name)) return "metadata.name: Invalid value: \"" + name + "\"";
  const Json spec = slice.value("spec", Json::object());
  if (spec.value("driver", "").empty()) return "spec.driver: Required value";
  if (!spec.contains("pool") || spec["pool"].value("name", "").empty())
    return "spec.pool.name: Required value";
  if (!spec["pool"].contains("generation") || !spec["pool"]["generation"].is_number_integer()) {
    return "spec.pool.generation: Required value";
  }
  if (spec["pool"].value("resourceSliceCount", 0) < 1)
    return "spec.pool.resourceSliceCount: must be >= 1";
  if (spec.value("nodeName", "").empty()) return "spec.nodeName: Required value";
  const Json devices = spec.value("devices", Json::array());
  bool any_taints = false;
  std::set<std::string> names;
  for (const Json& d : devices) {
    const Json& body = nested ? d.value("basic", Json::object()) : d;
    if (nested && !d.contains("basic")) return "spec.devices[].basic: Required value";
    if (!nested && d.contains("basic")) return "spec.devices[].basic: field not declared in schema";
    const std::string dn = d.value("name", "");
    if (!IsDnsLabel(dn)) return "spec.devices[].name: Invalid value: \"" + dn + "\"";
    if (!names.insert(dn).second) return "spec.devices[].name: Duplicate value: \"" + dn + "\"";
    const Json attributes = body.value("attributes", Json::object());
    if (attributes.size() > 32) return "spec.devices[" + dn + "].attributes: Too many";
    for (const auto& [key, value] : attributes.items()) {
      if (!IsAttributeName(key)) return "spec.devices[" + dn + "].attributes: Invalid key " + key;
      if (!value.is_object() || value.size() != 1) {
        return "spec.devices[" + dn + "].attributes[" + key + "]: exactly one value is required";
      }
      const std::string type = value.begin().key();
      if (type == "string") {
        if (!value["string"].is_string() || value["string"].get<std::string>().size() > 64) {
          return "spec.devices[" + dn + "].attributes[" + key +
                 "].string: Too long: may not be more than 64 bytes";
        }
      } else if (type == "int") {
        if (!value["int"].is_number_integer()) return "attributes[" + key + "].int: not an integer";
      } else if (type == "bool") {
        if (!value["bool"].is_boolean()) return "attributes[" + key + "].bool: not a boolean";
      } else if (type != "version") {
        return "spec.devices[" + dn + "].attributes[" + key + "]: unknown field \"" + type + "\"";
      }
    }
    for (const Json& t : body.value("taints", Json::array())) {
      any_taints = true;
      std::string effect = t.value("effect", "");
      if (effect != "NoSchedule" && effect != "NoExecute" && effect != "None") {
        return "spec.devices[" + dn + "].taints[].effect: Unsupported value: \"" + effect + "\"";
      }
      if (t.value("key", "").empty())
        return "spec.devices[" + dn + "].taints[].key: Required value";
    }
  }
  size_t limit = any_taints ? 64 : 128;
  if (devices.size() > limit) return "spec.devices: Too many: " + std::to_string(devices.size());
  return "";
}

void DropTaints(Json& slice, bool nested) {
  if (!slice.contains("spec") || !slice["spec"].contains("devices")) return;
  for (Json& d : slice["spec"]["devices"]) {
    Json& body = nested ? d["basic"] : d;
    if (body.is_object()) body.erase("taints");
  }
}

// "a=b,c=d" from a URL-encoded fieldSelector.
std::map<std::string, std::string> FieldSelector(const std::string& query) {
  std::map<std::string, std::string> out;
  auto pos = query.find("fieldSelector=");
  if (pos == std::string::npos) return out;
  std::string raw = query.substr(pos + 14, query.find('&', pos) - pos - 14);
  std::string decoded;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '%' && i + 2 < raw.size()) {
      decoded += static_cast<char>(std::stoi(raw.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      decoded += raw[i];
    }
  }
  size_t start = 0;
  while (start < decoded.size()) {
    size_t comma = decoded.find(',', start);
    std::string term =
        decoded.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto eq = term.find('=');
    if (eq != std::string::npos) out[term.substr(0, eq)] = term.substr(eq + 1);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace

void FakeResourceApi::SetVersions(std::vector<std::string> versions) {
  std::lock_guard lock(mu_);
  versions_ = std::move(versions);
}

void FakeResourceApi::SetTaintsEnabled(bool enabled) {
  std::lock_guard lock(mu_);
  taints_ = enabled;
}

std::optional<FakeResourceApi::Reply> FakeResourceApi::Handle(const std::string& method,
                                                              const std::string& target,
                                                              const std::string& body) {
  if (target.rfind(kResourceGroup, 0) != 0) return std::nullopt;
  std::string path = target.substr(0, target.find('?'));
  std::string query =
      target.find('?') == std::string::npos ? "" : target.substr(target.find('?') + 1);
  std::lock_guard lock(mu_);
  if (path == kResourceGroup) {
    Json versions = Json::array();
    for (const std::string& v : versions_) {
      versions.push_back({{"groupVersion", "resource.k8s.io/" + v}, {"version", v}});
    }
    Json group = {{"kind", "APIGroup"},
                  {"apiVersion", "v1"},
                  {"name", "resource.k8s.io"},
                  {"versions", versions}};
    if (!versions_.empty()) group["preferredVersion"] = versions[0];
    return Reply{200, DumpJson(group)};
  }
  std::string rest = path.substr(kResourceGroup.size() + 1);  // "v1/resourceslices/x"
  std::string version = rest.substr(0, rest.find('/'));
  if (std::find(versions_.begin(), versions_.end(), version) == versions_.end()) {
    return ResourceFail(404, "NotFound", "the server could not find the requested resource");
  }
  rest = rest.size() > version.size() ? rest.substr(version.size() + 1) : "";
  if (rest.rfind("resourceslices", 0) == 0) {
    return Slices(method, version, rest.substr(std::string("resourceslices").size()), query, body);
  }
  if (rest == "resourceclaims" && method == "GET") {
    // Every namespace's claims, in one page (the limit is a hint a server may ignore).
    Json items = Json::array();
    for (const auto& [key, claim] : claims_) items.push_back(claim);
    return Reply{200, DumpJson({{"apiVersion", "resource.k8s.io/" + version},
                                {"kind", "ResourceClaimList"},
                                {"metadata", {{"resourceVersion", std::to_string(next_rv_)}}},
                                {"items", items}})};
  }
  if (rest.rfind("namespaces/", 0) == 0) return Claims(method, rest, body);
  return ResourceFail(404, "NotFound", "the server could not find the requested resource");
}

FakeResourceApi::Reply FakeResourceApi::Slices(const std::string& method,
                                               const std::string& version, const std::string& rest,
                                               const std::string& query, const std::string& body) {
  const bool nested = version == "v1beta1";
  const std::string name = rest.empty() ? "" : rest.substr(1);
  if (name.empty() && method == "GET") {
    auto selector = FieldSelector(query);
    Json items = Json::array();
    for (const auto& [n, s] : slices_) {
      bool match = true;
      for (const auto& [field, value] : selector) {
        Json::json_pointer ptr(
            "/" + std::string(field == "spec.nodeName" ? "spec/nodeName" : "spec/driver"));
        if (field != "spec.nodeName" && field != "spec.driver") {
          return ResourceFail(400, "BadRequest", "field label not supported: " + field);
        }
        if (s.value(ptr, std::string()) != value) match = false;
      }
      if (match) items.push_back(s);
    }
    return {200, DumpJson(Json{{"kind", "ResourceSliceList"},
                               {"apiVersion", "resource.k8s.io/" + version},
                               {"metadata", {{"resourceVersion", std::to_string(next_rv_)}}},
                               {"items", items}})};
  }
  if (method == "GET") {
    auto it = slices_.find(name);
    if (it == slices_.end())
      return ResourceFail(404, "NotFound", "resourceslices \"" + name + "\" not found");
    return {200, DumpJson(it->second)};
  }
  if (method == "DELETE") {
    if (slices_.erase(name) == 0)
      return ResourceFail(404, "NotFound", "resourceslices \"" + name + "\" not found");
    ++writes_;
    return {200, StatusBody(200, "", "deleted")};
  }
  if (method != "POST" && method != "PUT")
    return ResourceFail(405, "MethodNotAllowed", "method not allowed");
  Json slice = Json::parse(body, nullptr, false);
  if (!slice.is_object()) return ResourceFail(400, "BadRequest", "invalid JSON");
  if (std::string error = Validate(slice, nested); !error.empty()) {
    return ResourceFail(422, "Invalid", "ResourceSlice.resource.k8s.io is invalid: " + error);
  }
  if (!taints_) DropTaints(slice, nested);
  const std::string object_name = slice["metadata"]["name"];
  const bool dry_run = query.find("dryRun=All") != std::string::npos;
  if (method == "POST") {
    if (!name.empty()) return ResourceFail(405, "MethodNotAllowed", "POST to an object");
    if (slices_.contains(object_name) && !dry_run) {
      return ResourceFail(409, "AlreadyExists",
                          "resourceslices \"" + object_name + "\" already exists");
    }
    slice["metadata"]["resourceVersion"] = std::to_string(dry_run ? next_rv_ : next_rv_++);
    slice["metadata"]["uid"] = "slice-uid-" + object_name;
    if (!dry_run) {
      slices_[object_name] = slice;
      ++writes_;
    }
    return {201, DumpJson(slice)};
  }
  if (object_name != name)
    return ResourceFail(400, "BadRequest", "name in the body differs from the URL");
  auto it = slices_.find(name);
  if (it == slices_.end())
    return ResourceFail(404, "NotFound", "resourceslices \"" + name + "\" not found");
  const std::string rv = slice.value("/metadata/resourceVersion"_json_pointer, std::string());
  if (!rv.empty() && rv != it->second["metadata"]["resourceVersion"]) {
    return ResourceFail(
        409, "Conflict",
        "Operation cannot be fulfilled on resourceslices.resource.k8s.io \"" + name +
            "\": the object has been modified; please apply your changes to the latest "
            "version and try again");
  }
  slice["metadata"]["resourceVersion"] = std::to_string(next_rv_++);
  slice["metadata"]["uid"] = it->second["metadata"]["uid"];
  it->second = slice;
  ++writes_;
  return {200, DumpJson(slice)};
}

FakeResourceApi::Reply FakeResourceApi::Claims(const std::string& method, const std::string& rest,
                                               const std::string& body) {
  // namespaces/<ns>/resourceclaims/<name>[/status]
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= rest.size()) {
    size_t slash = rest.find('/', start);
    parts.push_back(
        rest.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 4 || parts[2] != "resourceclaims") {
    return ResourceFail(404, "NotFound", "the server could not find the requested resource");
  }
  const std::string key = parts[1] + "/" + parts[3];
  const bool status = parts.size() == 5 && parts[4] == "status";
  auto it = claims_.find(key);
  if (it == claims_.end()) {
    return ResourceFail(404, "NotFound",
                        "resourceclaims.resource.k8s.io \"" + parts[3] + "\" not found");
  }
  if (method == "GET" && parts.size() == 4) return {200, DumpJson(it->second)};
  if (method == "PUT" && status) {
    Json claim = Json::parse(body, nullptr, false);
    if (!claim.is_object()) return ResourceFail(400, "BadRequest", "invalid JSON");
    if (claim.value("/metadata/resourceVersion"_json_pointer, std::string()) !=
        it->second["metadata"]["resourceVersion"]) {
      return ResourceFail(409, "Conflict", "the object has been modified");
    }
    // Only status changes through /status; a device entry must name an allocated device.
    Json next = it->second;
    next["status"]["devices"] = claim.value("/status/devices"_json_pointer, Json::array());
    for (const Json& d : next["status"]["devices"]) {
      bool allocated = false;
      for (const Json& r :
           next.value("/status/allocation/devices/results"_json_pointer, Json::array())) {
        allocated |= r["driver"] == d.value("driver", "") && r["pool"] == d.value("pool", "") &&
                     r["device"] == d.value("device", "");
      }
      if (!allocated)
        return ResourceFail(422, "Invalid", "status.devices: device is not allocated");
    }
    next["metadata"]["resourceVersion"] = std::to_string(next_rv_++);
    it->second = next;
    return {200, DumpJson(next)};
  }
  return ResourceFail(405, "MethodNotAllowed", "method not allowed");
}

void FakeResourceApi::AddClaim(const std::string& ns, const std::string& name,
                               const std::string& uid, const std::vector<Result>& results,
                               const Json& extra_config) {
  Json claim = {{"apiVersion", "resource.k8s.io/v1"},
                {"kind", "ResourceClaim"},
                {"metadata", {{"namespace", ns}, {"name", name}, {"uid", uid}}},
                {"spec", {{"devices", {{"requests", Json::array()}}}}},
                {"status", Json::object()}};
  if (!results.empty()) {
    Json list = Json::array();
    for (const Result& r : results) {
      list.push_back(
          {{"request", r.request}, {"driver", r.driver}, {"pool", r.pool}, {"device", r.device}});
    }
    claim["status"]["allocation"] = {{"devices", {{"results", list}}}};
    if (!extra_config.is_null()) claim["status"]["allocation"]["devices"]["config"] = extra_config;
  }
  std::lock_guard lock(mu_);
  claim["metadata"]["resourceVersion"] = std::to_string(next_rv_++);
  claims_[ns + "/" + name] = claim;
}

void FakeResourceApi::ReserveClaim(const std::string& ns, const std::string& name,
                                   const std::string& pod_uid) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(ns + "/" + name);
  if (it == claims_.end()) return;
  it->second["status"]["reservedFor"].push_back(
      {{"resource", "pods"}, {"name", "pod-" + pod_uid.substr(0, 8)}, {"uid", pod_uid}});
  it->second["metadata"]["resourceVersion"] = std::to_string(next_rv_++);
}

void FakeResourceApi::DeleteClaim(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  claims_.erase(ns + "/" + name);
}

Json FakeResourceApi::Claim(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = claims_.find(ns + "/" + name);
  return it == claims_.end() ? Json() : it->second;
}

std::vector<Json> FakeResourceApi::Slices() {
  std::lock_guard lock(mu_);
  std::vector<Json> out;
  for (const auto& [name, s] : slices_) out.push_back(s);
  return out;
}

void FakeResourceApi::PutSlice(Json slice) {
  std::lock_guard lock(mu_);
  slice["metadata"]["resourceVersion"] = std::to_string(next_rv_++);
  std::string name = slice["metadata"]["name"];
  slices_[name] = std::move(slice);
}

void FakeResourceApi::DeleteSlice(const std::string& name) {
  std::lock_guard lock(mu_);
  slices_.erase(name);
}

std::vector<Json> FakeResourceApi::PoolDevices(const std::string& node) {
  std::lock_guard lock(mu_);
  int64_t generation = -1;
  for (const auto& [name, s] : slices_) {
    if (s.value("/spec/pool/name"_json_pointer, std::string()) == node) {
      generation = std::max(generation, s["spec"]["pool"]["generation"].get<int64_t>());
    }
  }
  std::vector<Json> out;
  for (const auto& [name, s] : slices_) {
    if (s.value("/spec/pool/name"_json_pointer, std::string()) != node ||
        s["spec"]["pool"]["generation"].get<int64_t>() != generation) {
      continue;
    }
    for (const Json& d : s["spec"].value("devices", Json::array())) out.push_back(d);
  }
  std::sort(out.begin(), out.end(),
            [](const Json& a, const Json& b) { return a.value("name", "") < b.value("name", ""); });
  return out;
}

size_t FakeResourceApi::SliceWrites() {
  std::lock_guard lock(mu_);
  return writes_;
}

}  // namespace edgefd::testing
