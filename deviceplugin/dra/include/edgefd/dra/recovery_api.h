#pragma once

// The API calls the DRA driver makes when it rebuilds what it prepared: listing this node's
// claims and telling the cluster in an Event. Kept together so that the client they go
// through can change in one place.
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/dra/resource_api.h"
#include "edgefd/kube/api.h"
#include "edgefd/kube/events.h"

namespace edgefd::dra {

/// Every ResourceClaim, in all namespaces, that is allocated a device of edgefd.io from
/// `node`'s pool and reserved for at least one consumer: what the kubelet may have had this
/// node prepare. Lists in pages (limit/continue); an Error when any page fails, so a caller
/// never takes part of the cluster for all of it.
Result<std::vector<ClaimObject>> ListNodeClaims(kube::ApiTransport& api, const ResourceApi& version,
                                                std::string_view node);

// Events about the Node: edgefd/kube/events.h (every binary posts them).
using kube::NodeEvent;
using kube::PostNodeEvent;

}  // namespace edgefd::dra
