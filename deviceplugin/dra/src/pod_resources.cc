#include "edgefd/dra/pod_resources.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include "edgefd/deviceplugin/registry.h"
#include "podresources/v1/api.grpc.pb.h"

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

}  // namespace edgefd::dra
