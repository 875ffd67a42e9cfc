#include "edgefd/dra/uninstall.h"

#include <spdlog/spdlog.h>

#include "edgefd/common/json.h"

namespace edgefd::dra {

Result<bool> DaemonSetLeaving(kube::Api& api, std::string_view ns, std::string_view name) {
  const std::string what = "DaemonSet " + std::string(ns) + "/" + std::string(name);
  auto got = api.GetDaemonSet(ns, name);
  if (!got) return Error{what + ": " + got.error().message};
  if (got->status == 404) return true;
  if (got->status != 200) {
    return Error{what + ": the API server answered " + std::to_string(got->status)};
  }
  auto doc = ParseJson(got->body, what);
  if (!doc) return doc.error();
  if (StringAt(*doc, "/metadata/name") != name) {
    return Error{what + ": the answer is not that DaemonSet"};
  }
  return !StringAt(*doc, "/metadata/deletionTimestamp").empty();
}

bool RemoveCdiSpecsIfUninstalled(kube::Api& api, std::string_view ns, std::string_view daemonset,
                                 deviceplugin::CdiSpecDir& dir,
                                 const std::set<std::string>& prepared) {
  auto leaving = DaemonSetLeaving(api, ns, daemonset);
  if (!leaving) {
    spdlog::warn("cannot tell whether edgefd is being uninstalled ({}): the CDI specs in {} stay",
                 leaving.error().message, dir.dir().string());
    return false;
  }
  if (!*leaving) {
    spdlog::info("DaemonSet {}/{} stays (a restart or an upgrade): the CDI specs in {} stay", ns,
                 daemonset, dir.dir().string());
    return false;
  }
  std::vector<std::filesystem::path> stay = dir.RemoveForUninstall(prepared);
  if (stay.empty()) {
    spdlog::info("DaemonSet {}/{} is being deleted: removed edgefd's CDI specs from {}", ns,
                 daemonset, dir.dir().string());
  } else {
    std::string files;
    for (const auto& f : stay) files += (files.empty() ? "" : ", ") + f.filename().string();
    spdlog::warn(
        "DaemonSet {}/{} is being deleted: removed edgefd's CDI specs but those {} prepared "
        "claim(s) still need, whose pods run on ({}); remove them once those pods are gone",
        ns, daemonset, prepared.size(), files);
  }
  return true;
}

}  // namespace edgefd::dra
