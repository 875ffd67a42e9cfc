#include "edgefd/nri/service.h"

#include <spdlog/spdlog.h>

#include <optional>
#include <utility>

#include "edgefd/common/cpu_list.h"
#include "edgefd/nri/ttrpc.h"
#include "nri/api.pb.h"

namespace edgefd::nri {
namespace {

namespace api = ::nri::pkg::api::v1alpha1;

// A split Synchronize may not grow without end: far more containers than a node runs.
constexpr size_t kMaxSyncContainers = 100000;

bool Live(api::ContainerState state) {
  return state == api::CONTAINER_CREATED || state == api::CONTAINER_RUNNING ||
         state == api::CONTAINER_PAUSED;
}

std::string Describe(const api::PodSandbox& pod, const api::Container& c) {
  return fmt::format("{}/{}/{} ({})", pod.namespace_(), pod.name(), c.name(), c.id().substr(0, 12));
}

Workload ToWorkload(const api::PodSandbox& pod, const api::Container& c,
                    const std::vector<int>& online, Metrics& metrics) {
  Workload w;
  w.id = c.id();
  w.name = Describe(pod, c);
  w.ref = {pod.namespace_(), pod.name(), c.name()};
  w.holding = ReadHolding({c.env().begin(), c.env().end()}, online);
  w.cpus = c.linux().resources().cpu().cpus();
  if (w.holding.invalid()) {
    metrics.invalid_cpus.fetch_add(1, std::memory_order_relaxed);
    if (!w.holding.env) {
      spdlog::warn("{}: {}: holds no edgefd cores", w.name, w.holding.env.error().message);
    } else {
      spdlog::warn("{}: names core(s) {} that are not online on this node (online: {}); {}", w.name,
                   FormatCpuList(w.holding.offline), FormatCpuList(online),
                   w.holding.holder() ? "pinned to the rest, " + FormatCpuList(w.holding.cpus)
                                      : std::string("left unpinned"));
    }
  }
  return w;
}

// Keeps of the cores `w` names only those the allocation record gives it; says so when that
// refused any.
void Verify(Workload& w, const Result<HeldCores>& record, Metrics& metrics) {
  CheckAgainstRecord(w.holding, w.ref, record);
  if (!w.holding.refused()) return;
  metrics.unverified_cpus.fetch_add(1, std::memory_order_relaxed);
  const std::string rest = w.holding.holder()
                               ? "pinned to the core(s) it holds, " + FormatCpuList(w.holding.cpus)
                               : std::string("it holds no edgefd cores");
  if (!w.holding.record) {
    spdlog::warn("{}: names core(s) {}, which cannot be confirmed ({}); {}", w.name,
                 FormatCpuList(w.holding.unheld), w.holding.record.error().message, rest);
  } else {
    spdlog::warn(
        "{}: names core(s) {} that neither the kubelet's device manager nor a prepared DRA claim "
        "gave it (set by the pod itself?); {}",
        w.name, FormatCpuList(w.holding.unheld), rest);
  }
}

void AddUpdates(const std::vector<CpusetUpdate>& updates,
                google::protobuf::RepeatedPtrField<api::ContainerUpdate>* out) {
  for (const CpusetUpdate& u : updates) {
    api::ContainerUpdate* update = out->Add();
    update->set_container_id(u.id);
    update->mutable_linux()->mutable_resources()->mutable_cpu()->set_cpus(u.cpus);
    // A container that went away meanwhile must not fail the others' updates.
    update->set_ignore_failure(true);
  }
}

template <typename Message>
Answer Reply(const Message& message) {
  return Answer{kStatusOk, "", message.SerializeAsString(), {}};
}

Answer BadRequest(std::string_view method) {
  return Answer{
      kStatusInvalidArgument, fmt::format("{}: the request does not parse", method), "", {}};
}

}  // namespace

void Metrics::CountRequest(std::string_view method) {
  std::lock_guard lock(mu_);
  ++requests_[std::string(method)];
}

std::map<std::string, uint64_t> Metrics::Requests() const {
  std::lock_guard lock(mu_);
  return requests_;
}

NriService::NriService(std::vector<int> online, Policy policy, Metrics& metrics,
                       AllocationRecord& record)
    : policy_(policy),
      metrics_(metrics),
      record_(record),
      online_(online),
      tracker_(std::move(online), policy) {}

Result<HeldCores> NriService::ReadRecord() {
  Result<HeldCores> record = record_.Read();
  if (!record) {
    metrics_.record_failures.fetch_add(1, std::memory_order_relaxed);
    spdlog::warn(
        "the node's allocation record cannot be read: {}; no container's edgefd cores "
        "are honoured until it can",
        record.error().message);
  }
  return record;
}

int32_t NriService::EventMask() {
  int32_t mask = 0;
  for (api::Event e :
       {api::CREATE_CONTAINER, api::UPDATE_CONTAINER, api::STOP_CONTAINER, api::REMOVE_CONTAINER}) {
    mask |= int32_t{1} << (e - 1);
  }
  return mask;
}

void NriService::Reset() {
  std::lock_guard lock(mu_);
  sync_parts_.clear();
}

TrackerStats NriService::Stats() const {
  std::lock_guard lock(mu_);
  return {tracker_.Held(), tracker_.holders(), tracker_.confined(), tracker_.online().size()};
}

void NriService::LogWarnings() {
  for (const std::string& line : tracker_.TakeWarnings()) spdlog::warn("{}", line);
}

Answer NriService::Handle(std::string_view service, std::string_view method,
                          std::string_view payload) {
  if (service != kPluginService) {
    return Answer{kStatusUnimplemented, fmt::format("service {} is not served", service), "", {}};
  }
  metrics_.CountRequest(method);
  if (method == "Configure") return Configure(payload);
  if (method == "Synchronize") return Synchronize(payload);
  if (method == "CreateContainer") return CreateContainer(payload);
  if (method == "UpdateContainer") return UpdateContainer(payload);
  if (method == "StopContainer") return StopContainer(payload);
  if (method == "RemoveContainer") return RemoveContainer(payload);
  if (method == "StateChange") return StateChange(payload);
  if (method == "Shutdown") {
    spdlog::info("the runtime is shutting down");
    return Reply(api::Empty());
  }
  return Answer{kStatusUnimplemented, fmt::format("method {} is not served", method), "", {}};
}

Answer NriService::Configure(std::string_view payload) {
  api::ConfigureRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("Configure");
  }
  spdlog::info("configured by {} {} (NRI {}); policy {}", req.runtime_name(), req.runtime_version(),
               req.nri_version().empty() ? "?" : req.nri_version(),
               policy_ == Policy::kExclusive ? "exclusive" : "shared");
  api::ConfigureResponse rsp;
  rsp.set_events(EventMask());
  return Reply(rsp);
}

Answer NriService::Synchronize(std::string_view payload) {
  api::SynchronizeRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("Synchronize");
  }
  // Asked before the lock (the kubelet may take its deadline), once per whole Synchronize.
  std::optional<Result<HeldCores>> record;
  if (!req.more()) record.emplace(ReadRecord());
  std::lock_guard lock(mu_);
  std::map<std::string, const api::PodSandbox*> pods;
  for (const api::PodSandbox& pod : req.pods()) pods[pod.id()] = &pod;
  for (const api::Container& c : req.containers()) {
    if (!Live(c.state())) continue;
    auto pod = pods.find(c.pod_sandbox_id());
    sync_parts_.push_back(ToWorkload(pod == pods.end() ? api::PodSandbox() : *pod->second, c,
                                     tracker_.online(), metrics_));
  }
  if (sync_parts_.size() > kMaxSyncContainers) {
    sync_parts_.clear();
    return Answer{kStatusInvalidArgument,
                  fmt::format("Synchronize: more than {} containers", kMaxSyncContainers),
                  "",
                  {}};
  }
  api::SynchronizeResponse rsp;
  if (req.more()) {
    // The runtime sends the rest in further requests and wants no updates until the last.
    rsp.set_more(true);
    return Reply(rsp);
  }
  for (Workload& w : sync_parts_) Verify(w, *record, metrics_);
  const size_t count = sync_parts_.size();
  std::vector<CpusetUpdate> updates = tracker_.Synchronize(std::exchange(sync_parts_, {}));
  LogWarnings();
  spdlog::info("synchronized: {} live container(s), {} holding core(s) {}; {} cpuset update(s)",
               count, tracker_.holders(), FormatCpuList(tracker_.Held()), updates.size());
  metrics_.updates.fetch_add(updates.size(), std::memory_order_relaxed);
  metrics_.synchronized = true;
  AddUpdates(updates, rsp.mutable_update());
  return Reply(rsp);
}

Answer NriService::CreateContainer(std::string_view payload) {
  api::CreateContainerRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("CreateContainer");
  }
  Workload w = ToWorkload(req.pod(), req.container(), online_, metrics_);
  // Only a container that names cores costs a look at the record.
  if (w.holding.holder()) Verify(w, ReadRecord(), metrics_);
  std::lock_guard lock(mu_);
  const std::string name = w.name;
  const bool holder = w.holding.holder();
  CoreTracker::Created created = tracker_.Create(std::move(w));
  LogWarnings();
  api::CreateContainerResponse rsp;
  if (created.cpus) {
    rsp.mutable_adjust()->mutable_linux()->mutable_resources()->mutable_cpu()->set_cpus(
        *created.cpus);
    if (holder) {
      spdlog::info("{}: pinned to its core(s) {}; {} other container(s) moved off them", name,
                   *created.cpus, created.updates.size());
    } else {
      spdlog::debug("{}: kept on core(s) {}", name, *created.cpus);
    }
  }
  metrics_.updates.fetch_add(created.updates.size(), std::memory_order_relaxed);
  AddUpdates(created.updates, rsp.mutable_update());
  return Reply(rsp);
}

Answer NriService::UpdateContainer(std::string_view payload) {
  api::UpdateContainerRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("UpdateContainer");
  }
  std::lock_guard lock(mu_);
  api::UpdateContainerResponse rsp;
  std::optional<std::string> keep =
      tracker_.Reassert(req.container().id(), req.linux_resources().cpu().cpus());
  if (keep) {
    spdlog::info("{}: an update asked for cpuset {}; keeping {}",
                 Describe(req.pod(), req.container()), req.linux_resources().cpu().cpus(), *keep);
    AddUpdates({{req.container().id(), *keep}}, rsp.mutable_update());
  }
  return Reply(rsp);
}

Answer NriService::StopContainer(std::string_view payload) {
  api::StopContainerRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("StopContainer");
  }
  std::lock_guard lock(mu_);
  std::vector<CpusetUpdate> updates = tracker_.Release(req.container().id());
  LogWarnings();
  if (!updates.empty()) {
    spdlog::info("{} stopped: its cores go back to {} container(s)",
                 Describe(req.pod(), req.container()), updates.size());
  }
  metrics_.updates.fetch_add(updates.size(), std::memory_order_relaxed);
  api::StopContainerResponse rsp;
  AddUpdates(updates, rsp.mutable_update());
  return Reply(rsp);
}

Answer NriService::RemoveContainer(std::string_view payload) {
  api::RemoveContainerRequest req;
  if (!req.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("RemoveContainer");
  }
  std::lock_guard lock(mu_);
  Answer answer = Reply(api::RemoveContainerResponse());
  answer.unsolicited = tracker_.Release(req.container().id());
  LogWarnings();
  if (!answer.unsolicited.empty()) {
    spdlog::info("{} removed: its cores go back to {} container(s)",
                 Describe(req.pod(), req.container()), answer.unsolicited.size());
  }
  return answer;
}

Answer NriService::StateChange(std::string_view payload) {
  // Runtimes with an older NRI (containerd 1.7) announce a removal as an event.
  api::StateChangeEvent event;
  if (!event.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return BadRequest("StateChange");
  }
  if (event.event() != api::REMOVE_CONTAINER) return Reply(api::Empty());
  api::RemoveContainerRequest req;
  *req.mutable_pod() = event.pod();
  *req.mutable_container() = event.container();
  Answer answer = RemoveContainer(req.SerializeAsString());
  answer.payload = api::Empty().SerializeAsString();
  return answer;
}

}  // namespace edgefd::nri
