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

namespace edgefd::dra {

/// Every ResourceClaim, in all namespaces, that is allocated a device of edgefd.io from
/// `node`'s pool and reserved for at least one consumer: what the kubelet may have had this
/// node prepare. Lists in pages (limit/continue); an Error when any page fails, so a caller
/// never takes part of the cluster for all of it.
Result<std::vector<ClaimObject>> ListNodeClaims(kube::ApiTransport& api, const ResourceApi& version,
                                                std::string_view node);

/// A core/v1 Event about a Node, in namespace default (where `kubectl describe node` looks).
struct NodeEvent {
  std::string node;
  std::string node_uid;  ///< "" when unknown
  std::string reason;    ///< CamelCase, e.g. "CheckpointRecovered"
  std::string message;
  bool warning = true;
};

/// Creates the Event; an Error says why it could not.
Status PostNodeEvent(kube::ApiTransport& api, const NodeEvent& event);

}  // namespace edgefd::dra
