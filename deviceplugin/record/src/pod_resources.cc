#include "edgefd/deviceplugin/pod_resources.h"

#include <grpcpp/grpcpp.h>
#include <sys/stat.h>

#include <string_view>

#include "podresources/v1/api.grpc.pb.h"

namespace edgefd::deviceplugin {

namespace {

// Far above any node (a few hundred pods, a few containers and devices each), far below
// what could hurt the plugin.
constexpr int kMaxMessageBytes = 16 << 20;
constexpr size_t kMaxEntries = 1 << 16;
// What edgefd serves: resources edgefd.io/<name>, DRA driver edgefd.io.
constexpr std::string_view kResourcePrefix = "edgefd.io/";
constexpr std::string_view kDriver = "edgefd.io";

bool Ours(const ::v1::DynamicResource& claim) {
  for (const auto& r : claim.claim_resources()) {
    if (r.driver_name() == kDriver) return true;
  }
  return false;
}

Error TooMany(const std::string& where) {
  return Error{where + "more than " + std::to_string(kMaxEntries) +
                   " edgefd.io devices and claims assigned; refusing to read further",
               ErrorCode::kResourceExhausted};
}

}  // namespace

PodResourcesClient::PodResourcesClient(std::filesystem::path socket,
                                       std::chrono::milliseconds deadline)
    : socket_(std::move(socket)), deadline_(deadline) {}

Result<std::vector<AssignedDevice>> PodResourcesClient::List() const {
  Result<Assignments> all = ListAll();
  if (!all) return all.error();
  return std::move(all->devices);
}

Result<Assignments> PodResourcesClient::ListAll() const {
  const std::string where = socket_.string() + " (the kubelet's PodResources API): ";
  struct stat st {};
  if (::stat(socket_.c_str(), &st) != 0) {
    return Error{where +
                     "does not exist (is the kubelet running, and its pod-resources "
                     "directory mounted? set --pod-resources-socket)",
                 ErrorCode::kUnavailable};
  }
  if (!S_ISSOCK(st.st_mode)) return Error{where + "is not a socket", ErrorCode::kUnavailable};
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
    if (cancelled_)
      return Error{where + "not asked: the plugin is stopping", ErrorCode::kCancelled};
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
    return Error{where + "no answer within " + std::to_string(deadline_.count()) + " ms",
                 ErrorCode::kDeadlineExceeded};
  }
  if (!status.ok()) {
    return Error{where + "List failed: " + status.error_message().substr(0, 512) + " (code " +
                     std::to_string(static_cast<int>(status.error_code())) + ")",
                 static_cast<ErrorCode>(status.error_code())};
  }
  Assignments out;
  size_t entries = 0;
  for (const auto& pod : response.pod_resources()) {
    for (const auto& container : pod.containers()) {
      for (const auto& devices : container.devices()) {
        if (!devices.resource_name().starts_with(kResourcePrefix)) continue;
        for (const std::string& id : devices.device_ids()) {
          if (++entries > kMaxEntries) return TooMany(where);
          out.devices.push_back(
              {pod.namespace_(), pod.name(), container.name(), devices.resource_name(), id});
        }
      }
      for (const auto& claim : container.dynamic_resources()) {
        if (!Ours(claim)) continue;
        if (++entries > kMaxEntries) return TooMany(where);
        // A claim is always in its pod's namespace; the field is the kubelet's to fill.
        if (!claim.claim_namespace().empty() && claim.claim_namespace() != pod.namespace_()) {
          continue;
        }
        out.claims.push_back({pod.namespace_(), pod.name(), container.name(), claim.claim_name()});
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

}  // namespace edgefd::deviceplugin
