#pragma once

// core/v1 Events about a Node: what the DRA driver's checkpoint recovery and every binary's
// rules reload tell the cluster (`kubectl describe node` shows them).
#include <string>
#include <string_view>

#include "edgefd/common/result.h"
#include "edgefd/kube/api.h"

namespace edgefd::kube {

/// The time now as the API server writes it (RFC 3339, UTC, seconds): "2026-12-05T19:57:36Z".
std::string NowRfc3339();

/// The message of the API server's Status when `body` is one; else the body's first 200 bytes.
std::string StatusMessage(const std::string& body);

/// "WHAT: HTTP 403: <the Status message>" for an answer that is not the one wanted.
std::string DescribeFailure(std::string_view what, const ApiResponse& response);

/// The kind of failure an HTTP status is: 401 kUnauthenticated, 403 kPermissionDenied, 404
/// kNotFound, 409 kAborted (a conflict: read again and retry), 429 kResourceExhausted, 504
/// kDeadlineExceeded, other 5xx kUnavailable (these four are retryable), any other 4xx
/// kFailedPrecondition (the server refused what was sent), anything else kUnknown.
ErrorCode CodeOfHttpStatus(int status);

/// DescribeFailure as an Error of the status's kind (CodeOfHttpStatus).
Error HttpFailure(std::string_view what, const ApiResponse& response);

/// A core/v1 Event about a Node, in namespace default (where `kubectl describe node` looks).
struct NodeEvent {
  std::string node;
  std::string node_uid;  ///< "" when unknown
  std::string reason;    ///< CamelCase, e.g. "CheckpointRecovered"
  std::string message;   ///< cut at 1 KiB
  bool warning = true;
  /// Who reports it: "edgefd-dra" becomes source.component "edgefd-dra", reportingComponent
  /// "edgefd.io/dra" and a generated name "<node>.edgefd-dra.<random>".
  std::string component;
};

/// Creates the Event; an Error says why it could not (a 403 where the role lacks `create` on
/// events).
Status PostNodeEvent(ApiTransport& api, const NodeEvent& event);

}  // namespace edgefd::kube
