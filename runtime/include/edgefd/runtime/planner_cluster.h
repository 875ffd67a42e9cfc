#pragma once

// `edgefd-plan --from-cluster`: the planner's node inventories read from the API server. Its
// own library (it links the kube library, hence libcurl), which the stage binary never links.

#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/kube/client.h"
#include "edgefd/runtime/planner.h"

namespace edgefd::runtime {

/// Every Node (paged), and, when the API server serves resource.k8s.io (v1, v1beta2 or
/// v1beta1), the edgefd.io driver's ResourceSlices, made into inventories as
/// NodesFromNodeList does. `server` names the cluster in messages. Errors: a request that
/// fails or is refused (named with its path and status); nothing is written.
Result<std::vector<NodeInventory>> NodesFromCluster(kube::ApiTransport& api,
                                                    const std::string& server,
                                                    std::vector<std::string>* skipped);

}  // namespace edgefd::runtime
