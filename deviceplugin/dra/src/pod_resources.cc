#include "edgefd/dra/pod_resources.h"

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <map>

#include "edgefd/deviceplugin/cdi.h"
#include "edgefd/deviceplugin/registry.h"
#include "podresources/v1/api.grpc.pb.h"
#include "edgefd/common/triggered_worker.h"

namespace edgefd::dra {

namespace {

// Far above any node (a few hundred pods, a few containers and devices each), far below
// what could hurt the plugin.
constexpr int kMaxMessageBytes = 16 << 20;
constexpr size_t kMaxDevices = 1 << 16;

}  // namespace

PodResourcesClient::PodResourcesClient(std::filesystem::path socket,
                                       std::chrono::milliseconds deadline)
    : socket_(std::move(socket)), deadline_(deadline) {}

Result<std::vector<AssignedDevice>> PodResourcesClient::List() const {
  const std::string where = socket_.string() + " (the kubelet's PodResources API): ";
  struct stat st {};
  if (::stat(socket_.c_str(), &st) != 0) {
    return Error{where +
                 "does not exist (is the kubelet running, and its pod-resources "
                 "directory mounted? set --pod-resources-socket)"};
  }
  if (!S_ISSOCK(st.st_mode)) return Error{where + "is not a socket"};
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(kMaxMessageBytes);
  // A fresh subchannel: one shared through gRPC's pool might still be backing off from a
  // kubelet that just restarted.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel("unix:" + socket_.string(),
                                           grpc::InsecureChannelCredentials(), args);
  auto stub = ::v1::PodResourcesLister::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline_);
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return Error{where + "not asked: the plugin is stopping"};
    calls_.insert(&context);
  }
  ::v1::ListPodResourcesRequest request;
  ::v1::ListPodResourcesResponse response;
  grpc::Status status = stub->List(&context, request, &response);
  {
    std::lock_guard lock(mu_);
    calls_.erase(&context);
  }
  if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED) {
    return Error{where + "no answer within " + std::to_string(deadline_.count()) + " ms"};
  }
  if (!status.ok()) {
    return Error{where + "List failed: " + status.error_message().substr(0, 512) + " (code " +
                 std::to_string(static_cast<int>(status.error_code())) + ")"};
  }
  std::vector<AssignedDevice> out;
  for (const auto& pod : response.pod_resources()) {
    for (const auto& container : pod.containers()) {
      for (const auto& devices : container.devices()) {
        if (!devices.resource_name().starts_with(deviceplugin::kResourceDomain)) continue;
        for (const std::string& id : devices.device_ids()) {
          if (out.size() >= kMaxDevices) {
            return Error{where + "more than " + std::to_string(kMaxDevices) +
                         " edgefd.io devices assigned; refusing to read further"};
          }
          out.push_back(
              {pod.namespace_(), pod.name(), container.name(), devices.resource_name(), id});
        }
      }
    }
  }
  return out;
}

void PodResourcesClient::Cancel() {
  std::lock_guard lock(mu_);
  cancelled_ = true;
  for (grpc::ClientContext* call : calls_) call->TryCancel();
}

DevicePluginHoldings::DevicePluginHoldings(PodResourcesClient& client,
                                           deviceplugin::DeviceRegistry& registry,
                                           std::chrono::milliseconds period,
                                           std::function<void()> on_change)
    : client_(client),
      registry_(registry),
      on_change_(std::move(on_change)),
      worker_(std::make_unique<TriggeredWorker>(
          TriggeredWorker::Options{period, period,
                                   std::max(period, std::chrono::milliseconds(30000))},
          [this] { return PollOnce(); },
          [this](const Error& error, std::chrono::milliseconds retry_in) {
            spdlog::warn(
                "{} (devices the device plugin handed out stay as last seen; again in "
                "{} ms)",
                error.message, retry_in.count());
          })) {}

DevicePluginHoldings::~DevicePluginHoldings() { Stop(); }

void DevicePluginHoldings::Start() { worker_->Start(); }
void DevicePluginHoldings::Stop() { worker_->Stop(); }
void DevicePluginHoldings::Refresh() { worker_->Trigger(); }

std::set<std::string> DevicePluginHoldings::Names() const {
  std::lock_guard lock(mu_);
  return names_;
}

Status DevicePluginHoldings::PollOnce() {
  auto assigned = client_.List();
  if (!assigned) return assigned.error();
  std::map<std::pair<std::string, std::string>, std::string> by_id;  // (resource, id) → name
  for (const auto& r : deviceplugin::AllSnapshots(registry_)) {
    for (const auto& d : r.devices) by_id[{r.resource, d.id}] = deviceplugin::DeviceName(r, d);
  }
  std::set<std::string> names;
  for (const AssignedDevice& a : *assigned) {
    if (auto it = by_id.find({a.resource, a.id}); it != by_id.end()) names.insert(it->second);
  }
  bool changed;
  {
    std::lock_guard lock(mu_);
    changed = names != names_;
    names_ = std::move(names);
  }
  if (changed && on_change_) on_change_();
  return Ok{};
}

}  // namespace edgefd::dra
