#pragma once

#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "edgefd/common/program.h"

namespace edgefd::dra {

/// SIGTERM and SIGINT, and the promise that the program is gone within about a second of one:
/// the signals are blocked in every thread (BlockStopSignals: construct this before starting
/// any) and a watcher
/// thread takes them. The main thread waits with WaitFor/Wait, shuts down in order and calls
/// Done; if that has not happened `grace` after the signal (a request hung on an unresponsive
/// API server, say), the watcher ends the process with exit status 0. The slices stay as they
/// are either way, and a restarted plugin takes them over.
class StopSignals {
 public:
  explicit StopSignals(std::chrono::milliseconds grace = std::chrono::milliseconds(900))
      : grace_(grace), set_(BlockStopSignals()) {
    watcher_ = std::thread([this] { Watch(); });
  }
  ~StopSignals() {
    Done();
    cancel_ = true;
    watcher_.join();
  }
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// True when a stop signal came within `timeout` (or before).
  bool WaitFor(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return signal_ != 0; });
  }
  /// Waits for a stop signal; returns it.
  int Wait() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return signal_ != 0; });
    return signal_;
  }
  /// The orderly shutdown is over: no forced exit.
  void Done() {
    std::lock_guard lock(mu_);
    done_ = true;
    cv_.notify_all();
  }

 private:
  void Watch() {
    const timespec tick{0, 100 * 1000 * 1000};
    int signal = -1;
    while (!cancel_ && (signal = sigtimedwait(&set_, nullptr, &tick)) < 0) {
    }
    if (cancel_) return;
    std::unique_lock lock(mu_);
    spdlog::info("signal {}: stopping", signal);
    signal_ = signal;
    cv_.notify_all();
    if (!cv_.wait_for(lock, grace_, [&] { return done_; })) {
      spdlog::warn("stopping took longer than {} ms: exiting now", grace_.count());
      spdlog::default_logger()->flush();
      std::_Exit(0);
    }
  }

  const std::chrono::milliseconds grace_;
  sigset_t set_;
  std::atomic<bool> cancel_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  int signal_ = 0;
  bool done_ = false;
  std::thread watcher_;
};

}  // namespace edgefd::dra
