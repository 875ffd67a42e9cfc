#pragma once

#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/common/waker.h"
#include "edgefd/deviceplugin/claim_watch.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::deviceplugin {

/// Where and how PluginServer talks to the kubelet.
struct PluginServerOptions {
  /// The kubelet's device-plugin directory: kubelet.sock and our sockets live here.
  std::filesystem::path kubelet_dir = "/var/lib/kubelet/device-plugins";
  /// Socket file of resource `edgefd.io/NAME` is `<prefix>NAME.sock`.
  std::string socket_prefix = "edgefd-";
  /// How long one Register call may wait for the kubelet to answer.
  std::chrono::milliseconds register_timeout{1000};
  /// Allocate names each device's CDI device too (`--cdi`).
  bool cdi = false;
};

/// Owns the transport side of the device plugin: one gRPC server (a DevicePluginService) per
/// resource on a unix socket in the kubelet directory, registration with the kubelet, and
/// the kubelet's lifecycle. It watches the directory with inotify: when kubelet.sock is
/// (re)created it registers every resource again; when one of our sockets is removed (the
/// kubelet wipes the directory when it starts) it serves that socket again as soon as
/// kubelet.sock exists (so the wipe cannot take the new socket too) and re-registers.
/// When the kubelet is absent it waits for kubelet.sock. A resource that appears in the
/// registry later (the first stick of a kind plugged in) gets its socket then.
class PluginServer {
 public:
  /// One resource as the server sees it.
  struct ResourceState {
    std::string resource;          ///< "edgefd.io/little-cpu"
    std::filesystem::path socket;  ///< full path of its socket
    bool registered = false;       ///< the kubelet accepted the last Register
    int registrations = 0;         ///< successful Register calls so far
  };

  /// `registry`, `metrics` and `claims` (both may be null) must outlive the server. With
  /// `claims`, every resource withdraws what prepared DRA claims hold (DevicePluginService).
  PluginServer(DeviceRegistry& registry, PluginServerOptions options, Metrics* metrics = nullptr,
               DraClaimWatch* claims = nullptr);
  ~PluginServer();
  PluginServer(const PluginServer&) = delete;
  PluginServer& operator=(const PluginServer&) = delete;

  /// Serves every resource's socket, then registers in the background (at once when
  /// kubelet.sock exists, else when it appears). Fails when the directory is missing or a
  /// socket cannot be served, naming the path.
  Status Start();
  /// Stops serving, ends open streams and removes our sockets. Idempotent.
  void Stop();

  /// A snapshot of every resource's state, sorted by resource.
  std::vector<ResourceState> State() const;

  /// The socket file name of `resource` under `prefix`: "edgefd-little-cpu.sock".
  static std::string SocketName(const std::string& prefix, const std::string& resource);

 private:
  struct Plugin;
  void Loop();
  void HandleInotify();
  void SyncResources();
  Status Serve(Plugin& plugin);
  void Shutdown(Plugin& plugin, bool remove_socket);
  bool Register(Plugin& plugin);
  void Publish();

  DeviceRegistry& registry_;
  const PluginServerOptions options_;
  Metrics* metrics_;
  DraClaimWatch* claims_;
  UniqueFd inotify_fd_;
  Waker waker_;  // eventfd: stop requested or the set of resources changed
  int listener_ = 0;
  std::thread thread_;
  bool started_ = false;
  std::vector<std::unique_ptr<Plugin>> plugins_;  // touched by the loop thread only (after Start)

  mutable std::mutex mu_;  // guards state_ and stop_
  std::vector<ResourceState> state_;
  bool stop_ = false;
};

}  // namespace edgefd::deviceplugin
