#pragma once

#include <chrono>
#include <string>
#include <utility>

#include "edgefd/common/triggered_worker.h"
#include "edgefd/deviceplugin/registry.h"

namespace edgefd::dra {

/// A TriggeredWorker that every change of a device registry triggers while it runs (the slice
/// publisher, the device-loss reporter): Start adds the listener, then starts the thread; Stop
/// removes the listener first, so no change reaches a stopped worker.
class RegistryWorker {
 public:
  RegistryWorker(deviceplugin::DeviceRegistry& registry, TriggeredWorker::Options options,
                 TriggeredWorker::Body body, TriggeredWorker::OnFailure on_failure)
      : registry_(registry), worker_(options, std::move(body), std::move(on_failure)) {}
  ~RegistryWorker() { Stop(); }
  RegistryWorker(const RegistryWorker&) = delete;
  RegistryWorker& operator=(const RegistryWorker&) = delete;

  bool running() const { return listener_ != 0; }
  void Start() {
    if (running()) return;
    listener_ = registry_.AddListener([this](const std::string&) { worker_.Trigger(); });
    worker_.Start();
  }
  void Stop() {
    if (!running()) return;
    registry_.RemoveListener(listener_);
    listener_ = 0;
    worker_.Stop();
  }
  void Trigger() { worker_.Trigger(); }
  void TriggerIn(std::chrono::milliseconds delay) { worker_.TriggerIn(delay); }

 private:
  deviceplugin::DeviceRegistry& registry_;
  TriggeredWorker worker_;
  int listener_ = 0;
};

}  // namespace edgefd::dra
