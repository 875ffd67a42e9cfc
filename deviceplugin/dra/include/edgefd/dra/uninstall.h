#pragma once

// `helm uninstall` leaves no CDI spec of edgefd's on the nodes: at an orderly stop the DRA
// driver asks the API server whether its DaemonSet is going away for good (gone, or deleted
// and waiting for its pods: the chart's pre-delete hook deletes it in the foreground while
// the driver's account still exists), and only then removes the specs it wrote that no
// prepared claim needs. A restart, an upgrade (a rolling update keeps the DaemonSet), a drain,
// or any doubt (no answer, no permission) keeps them all.

#include <set>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"
#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/kube/api.h"

namespace edgefd::dra {

/// Whether the DaemonSet `name` in `ns` is going away: true when the API server says it is
/// gone (404) or it carries a deletionTimestamp, false when it is there; an Error for any other
/// answer or none (the caller keeps its files).
Result<bool> DaemonSetLeaving(kube::Api& api, std::string_view ns, std::string_view name);

/// At an orderly stop, after the spec writers stopped: when DaemonSetLeaving says so, removes
/// the CDI specs that no claim in `prepared` (UIDs) needs (CdiSpecDir::RemoveForUninstall) and
/// logs what stays; otherwise removes nothing. Returns whether it removed.
bool RemoveCdiSpecsIfUninstalled(kube::Api& api, std::string_view ns, std::string_view daemonset,
                                 deviceplugin::CdiSpecDir& dir,
                                 const std::set<std::string>& prepared);

}  // namespace edgefd::dra
