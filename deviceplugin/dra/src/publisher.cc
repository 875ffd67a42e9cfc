#include "edgefd/dra/publisher.h"

#include <spdlog/spdlog.h>

#include <ctime>

#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/cdi.h"
#include "registry_worker.h"

namespace edgefd::dra {
using Clock = std::chrono::steady_clock;

namespace {

std::string ResourceVersionOf(const std::string& body) {
  return StringAt(ParseJsonOrNull(body), "/metadata/resourceVersion");
}

}  // namespace

Result<TaintMode> ParseTaintMode(std::string_view value) {
  if (value == "auto") return TaintMode::kAuto;
  if (value == "on" || value == "true") return TaintMode::kOn;
  if (value == "off" || value == "false") return TaintMode::kOff;
  return Error{"'" + std::string(value) + "': expected auto, on or off"};
}

SlicePublisher::SlicePublisher(deviceplugin::DeviceRegistry& registry, kube::ApiTransport& api,
                               ResourceApi version, Options options, HeldFn held)
    : registry_(registry),
      api_(api),
      version_(std::move(version)),
      options_(std::move(options)),
      held_(std::move(held)) {
  worker_ = std::make_unique<RegistryWorker>(
      registry_,
      TriggeredWorker::Options{options_.resync, options_.min_backoff, options_.max_backoff},
      [this] { return SyncOnce(); },
      [this](const Error& error, std::chrono::milliseconds retry_in) {
        {
          std::lock_guard lock(mu_);
          stats_.failures++;
          stats_.last_error = error.message;
        }
        spdlog::warn("publishing ResourceSlices failed: {} (retrying in {} ms)", error.message,
                     retry_in.count());
      });
}

SlicePublisher::~SlicePublisher() { Stop(); }

bool SlicePublisher::ProbeTaints() {
  // A dry-run create of a slice with one tainted device: the API server answers with the object
  // it would store, and drops the taints when the DRADeviceTaints feature is off.
  SliceDevice probe{
      "taint-probe", {{"kind", std::string("probe")}}, {{kUnpluggedTaint, "", "NoExecute", ""}}};
  SliceTarget target{options_.node, "", 1, 1};
  Json body = SliceJson(version_, target, 0, {probe});
  body["metadata"]["name"] = SliceName(options_.node, 0) + "-probe";
  auto response = api_.CreateResourceSlice(version_.version(), DumpJson(body), /*dry_run=*/true);
  if (!response) {
    spdlog::warn("device taint probe: {}; vanished devices will not be tainted",
                 response.error().message);
    return false;
  }
  if (response->status != 200 && response->status != 201) {
    spdlog::warn("{}; vanished devices will not be tainted",
                 DescribeFailure("device taint probe (dry-run create)", *response));
    return false;
  }
  const Json stored = ParseJsonOrNull(response->body);
  const char* taint = version_.NestsDevices() ? "/spec/devices/0/basic/taints/0/key"
                                              : "/spec/devices/0/taints/0/key";
  bool kept = StringAt(stored, taint) == kUnpluggedTaint;
  spdlog::info("the API server {} device taints (DRADeviceTaints {})", kept ? "keeps" : "drops",
               kept ? "on" : "off");
  return kept;
}

void SlicePublisher::Start() {
  if (worker_->running()) return;
  switch (options_.taints) {
    case TaintMode::kOn:
      taints_ = true;
      break;
    case TaintMode::kOff:
      taints_ = false;
      break;
    case TaintMode::kAuto:
      taints_ = ProbeTaints();
      break;
  }
  {
    std::lock_guard lock(mu_);
    stats_.taints = taints_;
  }
  worker_->Start();
}

void SlicePublisher::Stop() { worker_->Stop(); }

void SlicePublisher::Trigger() { worker_->Trigger(); }

void SlicePublisher::CheckIn(std::chrono::milliseconds delay) { worker_->TriggerIn(delay); }

PublisherStats SlicePublisher::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool SlicePublisher::WaitForGeneration(int64_t generation, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return stats_.generation >= generation; });
}

Result<std::vector<SlicePublisher::Existing>> SlicePublisher::List() {
  auto response =
      api_.ListResourceSlices(version_.version(), ResourceApi::NodeSlicesSelector(options_.node));
  if (!response) return response.error();
  if (response->status != 200) {
    return Error{DescribeFailure("list ResourceSlices of node " + options_.node, *response)};
  }
  const Json list = ParseJsonOrNull(response->body);
  const Json* items = ValueAt(list, "/items");
  if (items == nullptr || !items->is_array()) {
    return Error{"list ResourceSlices: the API server's answer is not a list"};
  }
  std::vector<Existing> out;
  for (const Json& item : *items) {
    // The field selector should have done this; check anyway, a foreign slice is not ours.
    if (StringAt(item, "/spec/nodeName") != options_.node ||
        StringAt(item, "/spec/driver") != kDriverName) {
      continue;
    }
    Existing e;
    e.name = StringAt(item, "/metadata/name");
    e.resource_version = StringAt(item, "/metadata/resourceVersion");
    e.generation = IntegerAt(item, "/spec/pool/generation").value_or(0);
    if (!e.name.empty()) out.push_back(std::move(e));
  }
  return out;
}

void SlicePublisher::SetTaken(HeldFn taken) { taken_ = std::move(taken); }

void SlicePublisher::SetCalibration(CalibrationFile* file) { calibration_ = file; }

std::vector<SliceDevice> SlicePublisher::Desired() {
  std::vector<SliceDevice> devices =
      PoolDevices(deviceplugin::AllSnapshots(registry_), held_ ? held_() : std::set<std::string>{},
                  taints_, taken_ ? taken_() : std::set<std::string>{});
  if (calibration_ != nullptr) {
    if (auto measured = calibration_->Read()) AddCalibrationAttributes(*measured, devices);
  }
  // A taint keeps the time it was first set, so tolerationSeconds count from the unplug,
  // not from the last rewrite of the slice.
  std::map<std::string, std::string> times;
  for (SliceDevice& d : devices) {
    for (DeviceTaint& t : d.taints) {
      std::string key = d.name + "/" + t.key;
      auto it = taint_times_.find(key);
      t.time_added = it != taint_times_.end() ? it->second : NowRfc3339();
      times[key] = t.time_added;
    }
  }
  taint_times_ = std::move(times);
  return devices;
}

Status SlicePublisher::SyncOnce() {
  std::lock_guard sync_lock(sync_mu_);
  std::vector<SliceDevice> desired = Desired();
  auto existing = List();
  if (!existing) return existing.error();

  std::map<std::string, std::string> remote;
  int64_t remote_generation = 0;
  for (const Existing& e : *existing) {
    remote[e.name] = e.resource_version;
    remote_generation = std::max(remote_generation, e.generation);
  }
  if (generation_ > 0 && desired == last_written_ && remote == written_versions_) return Ok{};

  const auto parts = SplitPool(desired);
  SliceTarget target{options_.node, options_.node_uid, std::max(generation_, remote_generation) + 1,
                     parts.size()};
  std::map<std::string, std::string> versions;
  uint64_t writes = 0;
  for (size_t i = 0; i < parts.size(); ++i) {
    Json body = SliceJson(version_, target, i, parts[i]);
    const std::string name = body["metadata"]["name"];
    auto it = remote.find(name);
    Result<kube::ApiResponse> response = Error{""};
    if (it != remote.end()) {
      body["metadata"]["resourceVersion"] = it->second;
      response = api_.UpdateResourceSlice(version_.version(), name, DumpJson(body));
    } else {
      response = api_.CreateResourceSlice(version_.version(), DumpJson(body));
    }
    if (!response) return response.error();
    if (response->status != 200 && response->status != 201) {
      // 409: someone changed the slice since the list; the retry lists again.
      return Error{DescribeFailure(
          std::string(it != remote.end() ? "update" : "create") + " ResourceSlice " + name,
          *response)};
    }
    versions[name] = ResourceVersionOf(response->body);
    ++writes;
  }
  for (const auto& [name, rv] : remote) {
    if (versions.contains(name)) continue;
    // A slice of this node and driver that the pool no longer has: stale, from an earlier
    // run with more devices or from another writer.
    auto response = api_.DeleteResourceSlice(version_.version(), name);
    if (!response) return response.error();
    if (response->status != 200 && response->status != 202 && response->status != 404) {
      return Error{DescribeFailure("delete stale ResourceSlice " + name, *response)};
    }
    spdlog::info("removed stale ResourceSlice {}", name);
    ++writes;
  }
  written_versions_ = std::move(versions);
  last_written_ = desired;
  generation_ = target.generation;
  {
    std::lock_guard lock(mu_);
    stats_.syncs++;
    stats_.writes += writes;
    stats_.generation = generation_;
    stats_.devices = desired.size();
    stats_.published = true;
    stats_.last_error.clear();
  }
  cv_.notify_all();
  spdlog::info("published pool {} generation {}: {} devices in {} slice(s)", options_.node,
               target.generation, desired.size(), parts.size());
  return Ok{};
}

}  // namespace edgefd::dra
