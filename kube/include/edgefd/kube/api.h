#pragma once

// Typed calls for the objects edgefd reads and writes. Each builds its path from checked,
// escaped names (paths.h), so a name another party chose can neither change which object is
// reached nor add a request: a bad name is an Error before anything is sent. Each returns the
// API server's answer whatever its status (the caller decides what a 404 or 409 means).
#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/common/result.h"
#include "edgefd/kube/client.h"

namespace edgefd::kube {

inline constexpr char kMergePatch[] = "application/merge-patch+json";
inline constexpr char kApplyPatch[] = "application/apply-patch+yaml";
inline constexpr char kJson[] = "application/json";

/// The calls, over any transport. `version` is the resource.k8s.io version ("v1", "v1beta2",
/// "v1beta1") for ResourceSlices and ResourceClaims.
class Api {
 public:
  explicit Api(ApiTransport& transport) : t_(transport) {}
  ApiTransport& transport() const { return t_; }

  Result<ApiResponse> GetNode(std::string_view name);
  /// Every item of the collection at `collection_path` (e.g. "/api/v1/nodes"), page by page
  /// (?limit=`page_size`&continue=...), handed to `each` in order; the first error (a failed
  /// request, a non-200 answer, an answer that is not a list, an error from `each`) ends it. A
  /// collection of more than `max_pages` pages is refused, naming `what` ("Nodes"), rather than
  /// listed without end.
  Status ListEach(const std::string& collection_path, int page_size, int max_pages,
                  std::string_view what, const std::function<Status(const Json&)>& each);
  /// A JSON merge patch (RFC 7386).
  Result<ApiResponse> PatchNode(std::string_view name, const std::string& merge_patch);

  /// GET /apis/resource.k8s.io: which versions the group serves.
  Result<ApiResponse> GetResourceGroup();
  /// The slices matching `field_selector` ("spec.nodeName=n1,spec.driver=edgefd.io"; empty:
  /// all).
  Result<ApiResponse> ListResourceSlices(std::string_view version, std::string_view field_selector);
  Result<ApiResponse> CreateResourceSlice(std::string_view version, const std::string& json,
                                          bool dry_run = false);
  Result<ApiResponse> UpdateResourceSlice(std::string_view version, std::string_view name,
                                          const std::string& json);
  Result<ApiResponse> DeleteResourceSlice(std::string_view version, std::string_view name);

  Result<ApiResponse> GetResourceClaim(std::string_view version, std::string_view ns,
                                       std::string_view name);
  /// Claims in `ns` (empty: every namespace) matching `field_selector` (may be empty).
  Result<ApiResponse> ListResourceClaims(std::string_view version, std::string_view ns,
                                         std::string_view field_selector);
  /// PUT .../resourceclaims/NAME/status.
  Result<ApiResponse> UpdateResourceClaimStatus(std::string_view version, std::string_view ns,
                                                std::string_view name, const std::string& json);

  /// GET /apis/apps/v1/namespaces/NS/daemonsets/NAME.
  Result<ApiResponse> GetDaemonSet(std::string_view ns, std::string_view name);
  /// DELETE it with propagationPolicy Foreground: it stays, with a deletionTimestamp, until
  /// the garbage collector has deleted its pods.
  Result<ApiResponse> DeleteDaemonSetForeground(std::string_view ns, std::string_view name);

  /// POST /api/v1/namespaces/NS/events (a core/v1 Event).
  Result<ApiResponse> CreateEvent(std::string_view ns, const std::string& json);

  /// Server-side apply of an nfd.k8s-sigs.io/v1alpha1 NodeFeature (`json` is the whole
  /// object; JSON is YAML), owned by `field_manager`, taking over fields others set.
  Result<ApiResponse> ApplyNodeFeature(std::string_view ns, std::string_view name,
                                       const std::string& json,
                                       std::string_view field_manager = "edgefd");

  /// One window of a watch on the collection at `collection_path` (from the *Path helpers
  /// below): GET ?watch=1&allowWatchBookmarks=true&resourceVersion=RV&timeoutSeconds=S. The
  /// server ends the window after `timeout_seconds`; the body holds one event per line.
  Result<ApiResponse> WatchWindow(const std::string& collection_path,
                                  std::string_view resource_version, int timeout_seconds,
                                  std::string_view field_selector = {});

 private:
  Result<ApiResponse> Send(std::string_view method, const Result<std::string>& path,
                           const std::string& body = {}, std::string_view content_type = {});
  ApiTransport& t_;
};

/// Deletes each DaemonSet of `names` in `ns` in the foreground (its pods are deleted before it
/// goes), then asks every half second, waiting through `wait` (true: stop now), until each is
/// gone. An Error names the DaemonSet and the API server's answer, or says `timeout` passed.
Status DeleteDaemonSetsAndWait(Api api, std::string_view ns, const std::vector<std::string>& names,
                               std::chrono::seconds timeout,
                               const std::function<bool(std::chrono::milliseconds)>& wait);

/// "/apis/resource.k8s.io/<version>/resourceslices"; Error for a bad version.
Result<std::string> ResourceSlicesPath(std::string_view version);
/// "/apis/resource.k8s.io/<version>/namespaces/<ns>/resourceclaims" (every namespace when
/// `ns` is empty).
Result<std::string> ResourceClaimsPath(std::string_view version, std::string_view ns);

/// One event of a watch window's body.
struct WatchEvent {
  std::string type;              ///< ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  std::string resource_version;  ///< the object's metadata.resourceVersion
  std::string object;            ///< the object, as JSON text
};

/// The events in a watch window's body (newline-delimited JSON), at most `max_events`; lines
/// that are not an event object are an Error naming the line. An ERROR event with code 410
/// (the resourceVersion is too old) is returned like any other: the caller lists again.
Result<std::vector<WatchEvent>> ParseWatchEvents(std::string_view body, size_t max_events = 10000);

}  // namespace edgefd::kube
