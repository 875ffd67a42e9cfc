#pragma once

// The kubelet's PodResources API as edgefd reads it: which edgefd devices the device manager
// assigned to each container, and which edgefd DRA claims each container uses.

#include <chrono>
#include <filesystem>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/result.h"

namespace grpc {
class ClientContext;
}

namespace edgefd::deviceplugin {

/// Where the kubelet serves its PodResources API.
inline constexpr std::string_view kDefaultPodResourcesSocket =
    "/var/lib/kubelet/pod-resources/kubelet.sock";

/// One device the kubelet's device manager assigned to a container (device plugin path).
struct AssignedDevice {
  std::string ns;         ///< the pod's namespace
  std::string pod;        ///< the pod's name
  std::string container;  ///< the container's name
  std::string resource;   ///< "edgefd.io/big-cpu"
  std::string id;         ///< the device plugin's device ID ("cpu4", "1-1.2")

  bool operator==(const AssignedDevice&) const = default;
};

/// One ResourceClaim with devices of driver edgefd.io that a container uses (DRA path).
struct AssignedClaim {
  std::string ns;  ///< the pod's namespace (a claim is in its pod's namespace)
  std::string pod;
  std::string container;
  std::string claim;  ///< the claim's name

  bool operator==(const AssignedClaim&) const = default;
};

/// What the kubelet reports for edgefd: devices and claims.
struct Assignments {
  std::vector<AssignedDevice> devices;
  std::vector<AssignedClaim> claims;
};

/// A client of the kubelet's PodResources API v1 (`v1.PodResourcesLister/List`), the standard
/// record of what the device manager assigned to running containers (and, since Kubernetes
/// 1.36, of the DRA claims they use). Each call dials afresh, so a restarted kubelet is reached
/// at once. Safe from many threads.
class PodResourcesClient {
 public:
  explicit PodResourcesClient(std::filesystem::path socket,
                              std::chrono::milliseconds deadline = std::chrono::seconds(2));

  const std::filesystem::path& socket() const { return socket_; }

  /// Every device of a resource under edgefd.io/ that a container holds now. A socket that
  /// is missing, refuses, answers an error or not within the deadline is an Error naming the
  /// socket (the caller refuses rather than guesses). The answer is untrusted: a reply over
  /// 16 MiB is refused, and entries past a bound are an error, never a partial answer.
  Result<std::vector<AssignedDevice>> List() const;
  /// List, and the claims of driver edgefd.io each container uses, likewise bounded.
  Result<Assignments> ListAll() const;
  /// Ends the calls in flight and fails every later one at once (the program is stopping: no
  /// caller waits out the deadline).
  void Cancel();

 private:
  std::filesystem::path socket_;
  std::chrono::milliseconds deadline_;
  mutable std::mutex mu_;  // guards calls_ and cancelled_
  mutable std::set<grpc::ClientContext*> calls_;
  bool cancelled_ = false;
};

}  // namespace edgefd::deviceplugin
