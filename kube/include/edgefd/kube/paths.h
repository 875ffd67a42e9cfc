#pragma once

// Request paths built from names another party may have chosen (a claim's name comes from
// the kubelet's gRPC call, a node's from the environment): every name is checked and escaped,
// so that no name can change which object a request reaches or add a request of its own.
#include <initializer_list>
#include <string>
#include <string_view>

#include "edgefd/common/result.h"

namespace edgefd::kube {

/// Whether `name` may name an object in a request path: not empty, at most 253 bytes, not "."
/// or "..", without '/' or '%' (Kubernetes' own rule for path segment names) and without a
/// control byte (CR, LF, NUL, ...). The Error quotes `what` and the name, escaped.
Status CheckName(std::string_view name, std::string_view what);

/// `text` percent-encoded: every byte outside A-Z a-z 0-9 - . _ ~ (a path segment or a query
/// value).
std::string Escape(std::string_view text);

/// `prefix` (a fixed path such as "/api/v1") followed by one escaped segment per part; the
/// parts at odd positions (1st, 3rd, ...) are fixed words ("namespaces", "nodes"), those at
/// even positions names that CheckName must accept. Example:
/// `PathOf("/api/v1", {"namespaces", ns, "events"})`.
Result<std::string> PathOf(std::string_view prefix, std::initializer_list<std::string_view> parts);

/// What every request path must be before it is sent: absolute, printable ASCII without
/// space or '#', at most one '?', no "." or ".." segment (also percent-encoded) and no empty
/// segment before the query. Send refuses anything else, whoever built the path.
Status CheckRequestPath(std::string_view path);

}  // namespace edgefd::kube
