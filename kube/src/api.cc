#include "edgefd/kube/api.h"

#include <spdlog/spdlog.h>

#include "edgefd/common/json.h"
#include "edgefd/kube/events.h"
#include "edgefd/kube/paths.h"

namespace edgefd::kube {
namespace {

constexpr std::string_view kResourceGroup = "/apis/resource.k8s.io";

Result<std::string> GroupVersionPath(std::string_view version) {
  if (Status s = CheckName(version, "resource.k8s.io version"); !s) return s.error();
  return std::string(kResourceGroup) + "/" + Escape(version);
}

// `base` with "/" and the escaped `name` appended (checked), or base's error.
Result<std::string> Under(const Result<std::string>& base, std::string_view name) {
  if (!base) return base.error();
  if (Status s = CheckName(name, "name"); !s) return s.error();
  return *base + "/" + Escape(name);
}

std::string WithQuery(std::string path,
                      std::initializer_list<std::pair<const char*, std::string_view>> q) {
  char sep = '?';
  for (const auto& [key, value] : q) {
    if (value.empty()) continue;
    path += sep;
    path += key;
    path += '=';
    path += Escape(value);
    sep = '&';
  }
  return path;
}

}  // namespace

Result<std::string> ResourceSlicesPath(std::string_view version) {
  auto base = GroupVersionPath(version);
  if (!base) return base;
  return *base + "/resourceslices";
}

Result<std::string> ResourceClaimsPath(std::string_view version, std::string_view ns) {
  auto base = GroupVersionPath(version);
  if (!base) return base;
  if (ns.empty()) return *base + "/resourceclaims";
  return PathOf(*base, {"namespaces", ns, "resourceclaims"});
}

Result<ApiResponse> Api::Send(std::string_view method, const Result<std::string>& path,
                              const std::string& body, std::string_view content_type) {
  if (!path) return path.error();
  return t_.Send(method, *path, body, content_type);
}

Result<ApiResponse> Api::GetNode(std::string_view name) {
  return Send("GET", PathOf("/api/v1", {"nodes", name}));
}

Status Api::ListEach(const std::string& collection_path, int page_size, int max_pages,
                     std::string_view what, const std::function<Status(const Json&)>& each) {
  const std::string page = std::to_string(page_size);
  const std::string get = "GET " + collection_path;
  std::string token;
  for (int n = 0; n < max_pages; ++n) {
    auto response = Send("GET", WithQuery(collection_path, {{"limit", page}, {"continue", token}}));
    if (!response) return Within(get, response.error());
    if (response->status != 200) return HttpFailure(get, *response);
    auto list = ParseJson(response->body, collection_path);
    if (!list) return list.error();
    const Json* items = ValueAt(*list, "/items");
    if (items == nullptr || !items->is_array()) {
      return Error{collection_path + ": the answer is not a list"};
    }
    for (const Json& item : *items) {
      if (Status s = each(item); !s) return s;
    }
    token = StringAt(*list, "/metadata/continue");
    if (token.empty()) return Ok{};
  }
  return Error{collection_path + ": more than " + std::to_string(max_pages * page_size) + " " +
               std::string(what) + "; not listed"};
}

Result<ApiResponse> Api::PatchNode(std::string_view name, const std::string& merge_patch) {
  return Send("PATCH", PathOf("/api/v1", {"nodes", name}), merge_patch, kMergePatch);
}

Result<ApiResponse> Api::GetResourceGroup() { return Send("GET", std::string(kResourceGroup)); }

Result<ApiResponse> Api::ListResourceSlices(std::string_view version,
                                            std::string_view field_selector) {
  auto path = ResourceSlicesPath(version);
  if (!path) return path.error();
  return Send("GET", WithQuery(*path, {{"fieldSelector", field_selector}}));
}

Result<ApiResponse> Api::CreateResourceSlice(std::string_view version, const std::string& json,
                                             bool dry_run) {
  auto path = ResourceSlicesPath(version);
  if (!path) return path.error();
  return Send("POST", dry_run ? *path + "?dryRun=All" : *path, json, kJson);
}

Result<ApiResponse> Api::UpdateResourceSlice(std::string_view version, std::string_view name,
                                             const std::string& json) {
  return Send("PUT", Under(ResourceSlicesPath(version), name), json, kJson);
}

Result<ApiResponse> Api::DeleteResourceSlice(std::string_view version, std::string_view name) {
  return Send("DELETE", Under(ResourceSlicesPath(version), name));
}

Result<ApiResponse> Api::GetResourceClaim(std::string_view version, std::string_view ns,
                                          std::string_view name) {
  if (Status s = CheckName(ns, "namespace"); !s) return s.error();
  return Send("GET", Under(ResourceClaimsPath(version, ns), name));
}

Result<ApiResponse> Api::ListResourceClaims(std::string_view version, std::string_view ns,
                                            std::string_view field_selector) {
  auto path = ResourceClaimsPath(version, ns);
  if (!path) return path.error();
  return Send("GET", WithQuery(*path, {{"fieldSelector", field_selector}}));
}

Result<ApiResponse> Api::UpdateResourceClaimStatus(std::string_view version, std::string_view ns,
                                                   std::string_view name, const std::string& json) {
  if (Status s = CheckName(ns, "namespace"); !s) return s.error();
  auto path = Under(ResourceClaimsPath(version, ns), name);
  if (!path) return path.error();
  return Send("PUT", *path + "/status", json, kJson);
}

Result<ApiResponse> Api::GetDaemonSet(std::string_view ns, std::string_view name) {
  return Send("GET", PathOf("/apis/apps/v1", {"namespaces", ns, "daemonsets", name}));
}

Result<ApiResponse> Api::DeleteDaemonSetForeground(std::string_view ns, std::string_view name) {
  return Send("DELETE", PathOf("/apis/apps/v1", {"namespaces", ns, "daemonsets", name}),
              R"({"kind":"DeleteOptions","apiVersion":"v1","propagationPolicy":"Foreground"})",
              kJson);
}

Status DeleteDaemonSetsAndWait(Api api, std::string_view ns, const std::vector<std::string>& names,
                               std::chrono::seconds timeout,
                               const std::function<bool(std::chrono::milliseconds)>& wait) {
  auto answer = [ns](const std::string& name, const ApiResponse& r) {
    return Error{"DaemonSet " + std::string(ns) + "/" + name + ": the API server answered " +
                 std::to_string(r.status) + ": " + r.body.substr(0, 200)};
  };
  for (const std::string& name : names) {
    auto deleted = api.DeleteDaemonSetForeground(ns, name);
    if (!deleted) return deleted.error();
    if (deleted->status != 200 && deleted->status != 202 && deleted->status != 404) {
      return answer(name, *deleted);
    }
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const std::string& name : names) {
    for (;;) {
      auto got = api.GetDaemonSet(ns, name);
      if (!got) return got.error();
      if (got->status == 404) break;
      if (got->status != 200) return answer(name, *got);
      if (std::chrono::steady_clock::now() >= deadline) {
        return Error{"DaemonSet " + std::string(ns) + "/" + name + ": its pods still stop after " +
                     std::to_string(timeout.count()) + " s"};
      }
      if (wait(std::chrono::milliseconds(500))) return Error{"stopped"};
    }
    spdlog::info("DaemonSet {}/{} and its pods are gone", ns, name);
  }
  return Ok{};
}

Result<ApiResponse> Api::CreateEvent(std::string_view ns, const std::string& json) {
  return Send("POST", PathOf("/api/v1", {"namespaces", ns, "events"}), json, kJson);
}

Result<ApiResponse> Api::ApplyNodeFeature(std::string_view ns, std::string_view name,
                                          const std::string& json, std::string_view field_manager) {
  auto path = PathOf("/apis/nfd.k8s-sigs.io/v1alpha1", {"namespaces", ns, "nodefeatures", name});
  if (!path) return path.error();
  return Send("PATCH", WithQuery(*path, {{"fieldManager", field_manager}, {"force", "true"}}), json,
              kApplyPatch);
}

Result<ApiResponse> Api::WatchWindow(const std::string& collection_path,
                                     std::string_view resource_version, int timeout_seconds,
                                     std::string_view field_selector) {
  const std::string seconds = std::to_string(timeout_seconds);
  return Send("GET", WithQuery(collection_path, {{"watch", "1"},
                                                 {"allowWatchBookmarks", "true"},
                                                 {"resourceVersion", resource_version},
                                                 {"timeoutSeconds", seconds},
                                                 {"fieldSelector", field_selector}}));
}

Result<std::vector<WatchEvent>> ParseWatchEvents(std::string_view body, size_t max_events) {
  std::vector<WatchEvent> out;
  size_t line_no = 0;
  while (!body.empty()) {
    const size_t nl = body.find('\n');
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl == std::string_view::npos ? body.size() : nl + 1);
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
    if (out.size() >= max_events)
      return Error{"watch: more than " + std::to_string(max_events) + " events"};
    auto parsed = ParseJson(line, "watch event " + std::to_string(line_no));
    if (!parsed) return parsed.error();
    const Json* object = ValueAt(*parsed, "/object");
    if (!parsed->is_object() || object == nullptr || StringAt(*parsed, "/type").empty()) {
      return Error{"watch event " + std::to_string(line_no) + ": not a {type, object} event"};
    }
    out.push_back({StringAt(*parsed, "/type"), StringAt(*object, "/metadata/resourceVersion"),
                   DumpJson(*object)});
  }
  return out;
}

}  // namespace edgefd::kube
