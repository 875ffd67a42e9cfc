#pragma once

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/dra/claims.h"

namespace grpc {
class Server;
class Service;
}  // namespace grpc

namespace edgefd::dra {

/// "v1.DRAPlugin": how the registration API names a version of the DRA service.
inline constexpr char kDraServiceV1[] = "v1.DRAPlugin";
inline constexpr char kDraServiceV1beta1[] = "v1beta1.DRAPlugin";

/// Where the kubelet plugin serves.
struct KubeletPluginOptions {
  /// The kubelet's plugin watcher directory; the registration socket goes here.
  std::filesystem::path registry_dir = "/var/lib/kubelet/plugins_registry";
  /// Parent of the driver's own directory, `<plugins_dir>/edgefd.io/`, which holds the DRA
  /// socket (and the checkpoint).
  std::filesystem::path plugins_dir = "/var/lib/kubelet/plugins";
  /// Services announced in GetInfo, most preferred first; the kubelet takes the first it
  /// knows (1.34+: v1, 1.32-1.33: v1beta1).
  std::vector<std::string> services = {kDraServiceV1, kDraServiceV1beta1};
  /// Threads that run NodePrepareResources/NodeUnprepareResources (they block on the API).
  int workers = 2;
};

/// What the kubelet said about our registration.
struct RegistrationState {
  bool registered = false;  ///< the last NotifyRegistrationStatus said yes
  int notifications = 0;    ///< NotifyRegistrationStatus calls so far
  int info_requests = 0;    ///< GetInfo calls so far
  std::string error;        ///< the kubelet's last error, if it refused
};

/// Counters for /metrics.
struct KubeletPluginStats {
  uint64_t prepare_calls = 0;
  uint64_t prepared_claims = 0;
  uint64_t prepare_errors = 0;  ///< claims answered with an error
  uint64_t unprepare_calls = 0;
  uint64_t unprepare_errors = 0;
  uint64_t abandoned_calls = 0;  ///< calls left unfinished: the kubelet cancelled or timed out
};

/// The transport side of the DRA kubelet plugin: the DRAPlugin service (v1 and v1beta1, both
/// answered by one ClaimHandler) on `<plugins_dir>/edgefd.io/dra.sock`, and the Registration
/// service on `<registry_dir>/edgefd.io-reg.sock`, which the kubelet's plugin watcher finds.
/// Handlers hand each call to a small worker pool (a prepare waits on the API server, which
/// must not block gRPC's callback threads) and answer every claim in the request, but for a
/// call the kubelet abandoned (cancelled, or past its deadline): that one stops before its
/// next claim, and a prepare in it before its next request to the API server.
class KubeletPlugin {
 public:
  /// `handler` must outlive the plugin.
  KubeletPlugin(ClaimHandler& handler, KubeletPluginOptions options);
  ~KubeletPlugin();
  KubeletPlugin(const KubeletPlugin&) = delete;
  KubeletPlugin& operator=(const KubeletPlugin&) = delete;

  /// Serves the DRA socket, then the registration socket (so the kubelet can call as soon as
  /// it sees us). Errors name the path.
  Status Start();
  /// Removes the registration socket first (the kubelet unregisters us), then stops serving.
  /// Calls in flight are answered; new ones get UNAVAILABLE. Idempotent.
  void Stop();

  std::filesystem::path DraSocket() const;
  std::filesystem::path RegistrationSocket() const;
  RegistrationState Registration() const;
  KubeletPluginStats Stats() const;
  /// Called (on a gRPC thread) whenever the kubelet reports a successful registration.
  void SetOnRegistered(std::function<void()> callback);

  class Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace edgefd::dra
