#pragma once

#include <mutex>
#include <set>
#include <string>

#include "edgefd/deviceplugin/claim_watch.h"
#include "edgefd/deviceplugin/metrics.h"
#include "edgefd/deviceplugin/registry.h"
#include "v1beta1/api.grpc.pb.h"

namespace edgefd::deviceplugin {

/// The options edgefd registers with and GetDevicePluginOptions returns (they must agree):
/// no PreStartContainer, GetPreferredAllocation available.
v1beta1::DevicePluginOptions PluginOptions();

/// Fills `out` with the kubelet's view of `snapshot`'s devices (ID, health, NUMA topology). A
/// device someone else holds (PluginDevice::held_by) is listed as Unhealthy: the kubelet keeps
/// it in the node's capacity but not in its allocatable count, and never offers it to
/// GetPreferredAllocation or Allocate; it becomes Healthy again when it is freed.
void FillListAndWatchResponse(const ResourceSnapshot& snapshot, v1beta1::ListAndWatchResponse& out);

/// The gRPC status for `error` (its code is a gRPC canonical code).
grpc::Status ToGrpcStatus(const Error& error);

/// Answers one container's Allocate request from `snapshot`: AllocateDevices (allocate.h) in the
/// device-plugin API's terms, a DeviceSpec (host path = container path, "rw") per device node and
/// the contract's environment variables; its Error as the gRPC status.
/// With `cdi`, also `cdi_devices` naming each device's CDI device in the common spec
/// (CdiSpecDir), which adds its metadata; the environment above stays in `envs` because the
/// device plugin API has no call that could remove a per-allocation spec again.
grpc::Status AllocateContainer(const ResourceSnapshot& snapshot,
                               const v1beta1::ContainerAllocateRequest& request,
                               v1beta1::ContainerAllocateResponse& response, bool cdi = false);

/// The DevicePlugin gRPC service for one resource. It only reads the registry and knows
/// nothing about sockets or the kubelet's lifecycle (PluginServer owns those). Uses the
/// callback API, so an open ListAndWatch stream costs no thread: a registry change pushes
/// the new list to every open stream at once.
class DevicePluginService final : public v1beta1::DevicePlugin::CallbackService {
 public:
  /// `registry`, `metrics` and `claims` (both may be null) must outlive the service. With
  /// `cdi`, Allocate names CDI devices too. With `claims`, what prepared DRA claims hold is
  /// withdrawn: listed as Unhealthy, never preferred, and refused by Allocate, which reads the
  /// checkpoint again first (the kubelet may allocate before a change reached the watch).
  DevicePluginService(DeviceRegistry& registry, std::string resource, Metrics* metrics,
                      bool cdi = false, DraClaimWatch* claims = nullptr);
  ~DevicePluginService() override;
  DevicePluginService(const DevicePluginService&) = delete;
  DevicePluginService& operator=(const DevicePluginService&) = delete;

  /// Ends every open ListAndWatch stream (the server is about to go away).
  void FinishStreams();

  const std::string& resource() const { return resource_; }

  grpc::ServerUnaryReactor* GetDevicePluginOptions(grpc::CallbackServerContext* context,
                                                   const v1beta1::Empty* request,
                                                   v1beta1::DevicePluginOptions* response) override;
  grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse>* ListAndWatch(
      grpc::CallbackServerContext* context, const v1beta1::Empty* request) override;
  grpc::ServerUnaryReactor* GetPreferredAllocation(
      grpc::CallbackServerContext* context, const v1beta1::PreferredAllocationRequest* request,
      v1beta1::PreferredAllocationResponse* response) override;
  grpc::ServerUnaryReactor* Allocate(grpc::CallbackServerContext* context,
                                     const v1beta1::AllocateRequest* request,
                                     v1beta1::AllocateResponse* response) override;
  grpc::ServerUnaryReactor* PreStartContainer(
      grpc::CallbackServerContext* context, const v1beta1::PreStartContainerRequest* request,
      v1beta1::PreStartContainerResponse* response) override;

  /// ListAndWatch streams open on this service now (the kubelet holds one per endpoint).
  int OpenStreams();

 private:
  class Watch;
  friend class Watch;
  void OnRegistryChange(const std::string& resource);
  void PushAll();
  // The resource as the kubelet may see it: the registry's snapshot with the claims' holds
  // applied (as last read, or read now with `fresh`). `version` gets a number that changes
  // whenever either does.
  std::optional<ResourceSnapshot> View(bool fresh,
                                       std::pair<uint64_t, uint64_t>* version = nullptr);
  void Forget(Watch* watch);

  DeviceRegistry& registry_;
  const std::string resource_;
  Metrics* metrics_;
  const bool cdi_;
  DraClaimWatch* claims_;
  int listener_ = 0;
  int claims_listener_ = 0;
  std::mutex mu_;             // guards watches_ and finishing_
  std::set<Watch*> watches_;  // open ListAndWatch streams
  bool finishing_ = false;
};

}  // namespace edgefd::deviceplugin
