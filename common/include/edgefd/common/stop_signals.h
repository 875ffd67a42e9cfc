#pragma once

#include <spdlog/spdlog.h>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <functional>
#include <mutex>

#include "edgefd/common/program.h"

namespace edgefd {

/// SIGTERM and SIGINT (InstallStopHandlers, called first thing in the program), and the
/// promise that the program is gone within about a second of one: when a stop comes,
/// `on_stop` runs on a thread of its own (cancelling the API requests in flight) and the main
/// thread, waiting in WaitFor/Wait, shuts down in order and calls Done; if that has not
/// happened `grace` after the signal (a gRPC call hung in the kubelet, say), the process ends
/// with exit status 0. The slices stay as they are either way, and a restarted plugin takes
/// them over.
class StopSignals {
 public:
  explicit StopSignals(std::function<void()> on_stop,
                       std::chrono::milliseconds grace = std::chrono::milliseconds(900))
      : on_stop_(std::move(on_stop)),
        grace_(grace),
        watch_([this](int signal) { Watch(signal); }) {}
  ~StopSignals() { Done(); }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// True when a stop signal came within `timeout` (or before).
  bool WaitFor(std::chrono::milliseconds timeout) { return WaitForStop(timeout); }
  /// Waits for a stop signal; returns it.
  int Wait() {
    WaitForStop();
    return StopSignal();
  }
  /// The orderly shutdown is over: no forced exit.
  void Done() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  void Watch(int signal) {
    spdlog::info("signal {}: stopping", signal);
    if (on_stop_) on_stop_();
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, grace_, [&] { return done_; })) {
      spdlog::warn("stopping took longer than {} ms: exiting now", grace_.count());
      spdlog::default_logger()->flush();
      std::_Exit(0);
    }
  }

  const std::function<void()> on_stop_;
  const std::chrono::milliseconds grace_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  OnStop watch_;  // last: its thread ends before the members it uses go
};

}  // namespace edgefd
