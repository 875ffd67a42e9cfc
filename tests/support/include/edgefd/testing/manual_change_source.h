#pragma once

// Shared by the labeller's and the device plugin's tests and benches.

#include <functional>
#include <mutex>

#include "edgefd/common/result.h"
#include "edgefd/discovery/watch.h"

namespace edgefd::testing {

/// A ChangeSource fired by hand: the udev monitor's stand-in in tests and benches.
class ManualChangeSource final : public ChangeSource {
 public:
  Status Start(std::function<void()> on_change) override {
    std::lock_guard lock(mu_);
    on_change_ = std::move(on_change);
    return Ok{};
  }
  void Stop() override {
    std::lock_guard lock(mu_);
    on_change_ = nullptr;
  }
  /// Calls the subscriber, as a coalesced burst of udev events would.
  void Fire() {
    std::function<void()> cb;
    {
      std::lock_guard lock(mu_);
      cb = on_change_;
    }
    if (cb) cb();
  }

 private:
  std::mutex mu_;
  std::function<void()> on_change_;
};

}  // namespace edgefd::testing
