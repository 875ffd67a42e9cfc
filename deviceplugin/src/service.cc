#include "edgefd/deviceplugin/service.h"

#include <algorithm>
#include <optional>

#include "edgefd/deviceplugin/allocate.h"
#include "edgefd/deviceplugin/preferred.h"

namespace edgefd::deviceplugin {

v1beta1::DevicePluginOptions PluginOptions() {
  v1beta1::DevicePluginOptions options;
  options.set_pre_start_required(false);
  options.set_get_preferred_allocation_available(true);
  return options;
}

void FillListAndWatchResponse(const ResourceSnapshot& snapshot,
                              v1beta1::ListAndWatchResponse& out) {
  out.Clear();
  for (const PluginDevice& d : snapshot.devices) {
    v1beta1::Device* dev = out.add_devices();
    dev->set_id(d.id);
    dev->set_health(d.healthy && d.present && d.held_by.empty() ? "Healthy" : "Unhealthy");
    if (d.numa_node >= 0) dev->mutable_topology()->add_nodes()->set_id(d.numa_node);
  }
}

grpc::Status ToGrpcStatus(const Error& error) {
  return {static_cast<grpc::StatusCode>(error.code), error.message};
}

grpc::Status AllocateContainer(const ResourceSnapshot& snapshot,
                               const v1beta1::ContainerAllocateRequest& request,
                               v1beta1::ContainerAllocateResponse& response, bool cdi) {
  Result<ContainerAllocation> allocation =
      AllocateDevices(snapshot, {request.devices_ids().begin(), request.devices_ids().end()});
  if (!allocation) return ToGrpcStatus(allocation.error());
  for (const auto& [name, value] : allocation->env) (*response.mutable_envs())[name] = value;
  for (const std::string& path : allocation->devnodes) {
    v1beta1::DeviceSpec* spec = response.add_devices();
    spec->set_host_path(path);
    spec->set_container_path(path);
    spec->set_permissions("rw");
  }
  if (cdi) {
    for (const std::string& name : allocation->cdi_devices) {
      response.add_cdi_devices()->set_name(name);
    }
  }
  return grpc::Status::OK;
}

// One open ListAndWatch stream. At most one write is in flight; a change that arrives during
// a write is sent when the write completes (only the newest list, never a stale one).
class DevicePluginService::Watch final
    : public grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse> {
 public:
  explicit Watch(DevicePluginService& service) : service_(service) {}

  /// Sends the current list unless this stream already has it.
  void Push() {
    {
      std::lock_guard lock(mu_);
      if (finished_ || finish_requested_) return;
      pending_ = true;
      if (writing_) return;  // OnWriteDone picks it up
      if (!PrepareLocked()) return;
    }
    StartWrite(&response_);
  }

  /// Ends the stream with `status` as soon as no write is in flight.
  void End(grpc::Status status) {
    {
      std::lock_guard lock(mu_);
      if (finished_ || finish_requested_) return;
      finish_requested_ = true;
      final_status_ = std::move(status);
      if (writing_) return;  // OnWriteDone finishes
      finished_ = true;
    }
    Finish(final_status_);
  }

  void OnWriteDone(bool ok) override {
    bool write = false, finish = false;
    {
      std::lock_guard lock(mu_);
      writing_ = false;
      if (!ok && !finish_requested_) {
        // The kubelet went away mid-write; OnCancel may or may not follow.
        finish_requested_ = true;
        final_status_ = grpc::Status(grpc::StatusCode::UNAVAILABLE, "write failed");
      }
      if (finish_requested_) {
        if (!finished_) finish = finished_ = true;
      } else if (pending_) {
        write = PrepareLocked();
      }
    }
    if (write) StartWrite(&response_);
    if (finish) Finish(final_status_);
  }

  void OnCancel() override { End(grpc::Status::CANCELLED); }

  void OnDone() override {
    service_.Forget(this);
    delete this;
  }

 private:
  // Fills response_ with the newest list; false when there is nothing new to send.
  bool PrepareLocked() {
    pending_ = false;
    std::pair<uint64_t, uint64_t> version;
    std::optional<ResourceSnapshot> snapshot = service_.View(/*fresh=*/false, &version);
    if (!snapshot) return false;
    if (sent_any_ && version == sent_version_) return false;
    FillListAndWatchResponse(*snapshot, response_);
    sent_any_ = true;
    sent_version_ = version;
    writing_ = true;
    return true;
  }

  DevicePluginService& service_;
  std::mutex mu_;
  v1beta1::ListAndWatchResponse response_;  // owned by gRPC while writing_
  bool writing_ = false;
  bool pending_ = false;
  bool sent_any_ = false;
  std::pair<uint64_t, uint64_t> sent_version_;  // registry generation, claims version
  bool finish_requested_ = false;
  bool finished_ = false;
  grpc::Status final_status_;
};

DevicePluginService::DevicePluginService(DeviceRegistry& registry, std::string resource,
                                         Metrics* metrics, bool cdi, DraClaimWatch* claims)
    : registry_(registry),
      resource_(std::move(resource)),
      metrics_(metrics),
      cdi_(cdi),
      claims_(claims) {
  listener_ = registry_.AddListener([this](const std::string& r) { OnRegistryChange(r); });
  if (claims_ != nullptr) claims_listener_ = claims_->AddListener([this] { PushAll(); });
}

DevicePluginService::~DevicePluginService() {
  if (claims_ != nullptr) claims_->RemoveListener(claims_listener_);
  registry_.RemoveListener(listener_);
}

void DevicePluginService::OnRegistryChange(const std::string& resource) {
  if (resource == resource_) PushAll();
}

void DevicePluginService::PushAll() {
  std::lock_guard lock(mu_);
  for (Watch* w : watches_) w->Push();
}

std::optional<ResourceSnapshot> DevicePluginService::View(bool fresh,
                                                          std::pair<uint64_t, uint64_t>* version) {
  std::optional<ResourceSnapshot> snapshot = registry_.Snapshot(resource_);
  if (!snapshot) return snapshot;
  uint64_t claims_version = 0;
  if (claims_ != nullptr) {
    ApplyHolds(fresh ? claims_->ReadNow() : claims_->Current(&claims_version), *snapshot);
  }
  if (version != nullptr) *version = {snapshot->generation, claims_version};
  return snapshot;
}

void DevicePluginService::Forget(Watch* watch) {
  std::lock_guard lock(mu_);
  if (watches_.erase(watch) > 0 && metrics_ != nullptr) metrics_->AddWatchStreams(-1);
}

void DevicePluginService::FinishStreams() {
  std::lock_guard lock(mu_);
  finishing_ = true;
  for (Watch* w : watches_) {
    w->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "device plugin is restarting"));
  }
}

grpc::ServerUnaryReactor* DevicePluginService::GetDevicePluginOptions(
    grpc::CallbackServerContext* context, const v1beta1::Empty* /*request*/,
    v1beta1::DevicePluginOptions* response) {
  *response = PluginOptions();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

int DevicePluginService::OpenStreams() {
  std::lock_guard lock(mu_);
  return static_cast<int>(watches_.size());
}

grpc::ServerWriteReactor<v1beta1::ListAndWatchResponse>* DevicePluginService::ListAndWatch(
    grpc::CallbackServerContext* /*context*/, const v1beta1::Empty* /*request*/) {
  auto* watch = new Watch(*this);
  {
    std::lock_guard lock(mu_);
    watches_.insert(watch);
    if (metrics_ != nullptr) metrics_->AddWatchStreams(1);
    if (finishing_) {
      watch->End(grpc::Status(grpc::StatusCode::UNAVAILABLE, "device plugin is restarting"));
      return watch;
    }
    // Under mu_, so a change between the snapshot and the insert cannot be missed.
    watch->Push();
  }
  return watch;
}

grpc::ServerUnaryReactor* DevicePluginService::GetPreferredAllocation(
    grpc::CallbackServerContext* context, const v1beta1::PreferredAllocationRequest* request,
    v1beta1::PreferredAllocationResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  std::optional<ResourceSnapshot> snapshot = View(/*fresh=*/true);
  if (!snapshot) {
    reactor->Finish({grpc::StatusCode::NOT_FOUND, resource_ + ": resource is not served"});
    return reactor;
  }
  for (const v1beta1::ContainerPreferredAllocationRequest& req : request->container_requests()) {
    std::vector<std::string> available(req.available_deviceids().begin(),
                                       req.available_deviceids().end());
    std::vector<std::string> must(req.must_include_deviceids().begin(),
                                  req.must_include_deviceids().end());
    std::vector<std::string> picked =
        PreferredAllocation(*snapshot, available, must, req.allocation_size());
    v1beta1::ContainerPreferredAllocationResponse* out = response->add_container_responses();
    for (std::string& id : picked) out->add_deviceids(std::move(id));
  }
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerUnaryReactor* DevicePluginService::Allocate(grpc::CallbackServerContext* context,
                                                        const v1beta1::AllocateRequest* request,
                                                        v1beta1::AllocateResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  grpc::Status status = grpc::Status::OK;
  // Read the checkpoint now, not as last seen: a claim prepared a moment ago may not have
  // reached the ListAndWatch stream, or the kubelet, yet.
  std::optional<ResourceSnapshot> snapshot = View(/*fresh=*/true);
  if (!snapshot) {
    status = {grpc::StatusCode::NOT_FOUND, resource_ + ": resource is not served"};
  } else {
    for (const v1beta1::ContainerAllocateRequest& req : request->container_requests()) {
      status = AllocateContainer(*snapshot, req, *response->add_container_responses(), cdi_);
      if (!status.ok()) break;
    }
  }
  if (!status.ok()) response->Clear();
  if (metrics_ != nullptr) {
    metrics_->CountAllocate(resource_, status.ok());
    if (status.error_message().find(", prepared through DRA;") != std::string::npos) {
      metrics_->CountDraRefusal(resource_);
    }
  }
  reactor->Finish(status);
  return reactor;
}

grpc::ServerUnaryReactor* DevicePluginService::PreStartContainer(
    grpc::CallbackServerContext* context, const v1beta1::PreStartContainerRequest* /*request*/,
    v1beta1::PreStartContainerResponse* /*response*/) {
  // Registered with pre_start_required=false; answer anyway for kubelets that call it.
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace edgefd::deviceplugin
