#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "edgefd/common/backoff.h"
#include "edgefd/common/result.h"

namespace edgefd {

/// A thread that runs `body` when triggered, once per `period` (a repair pass), and again after
/// a failure with capped exponential backoff and jitter. Triggers that arrive while the body
/// runs make it run once more. Stop waits for a running body.
class TriggeredWorker {
 public:
  using Clock = std::chrono::steady_clock;
  struct Options {
    std::chrono::milliseconds period{std::chrono::hours(24 * 365)};
    std::chrono::milliseconds min_backoff{200};
    std::chrono::milliseconds max_backoff{std::chrono::seconds(30)};
  };
  using Body = std::function<Status()>;
  /// Called on the worker's thread after a failed run, with the delay before the retry.
  using OnFailure = std::function<void(const Error& error, std::chrono::milliseconds retry_in)>;

  TriggeredWorker(Options options, Body body, OnFailure on_failure)
      : options_(options), body_(std::move(body)), on_failure_(std::move(on_failure)) {}
  ~TriggeredWorker() { Stop(); }

  /// Starts the thread, which runs the body at once.
  void Start() {
    std::lock_guard lock(mu_);
    if (thread_.joinable()) return;
    stop_ = false;
    dirty_ = true;
    thread_ = std::thread([this] { Loop(); });
  }
  void Trigger() {
    {
      std::lock_guard lock(mu_);
      dirty_ = true;
    }
    cv_.notify_all();
  }
  /// Makes the next periodic pass come within `delay` (a check soon, not now).
  void TriggerIn(std::chrono::milliseconds delay) {
    {
      std::lock_guard lock(mu_);
      soon_ = std::min(soon_, Clock::now() + delay);
    }
    cv_.notify_all();
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (!thread_.joinable()) return;
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Loop() {
    Backoff backoff({options_.min_backoff, options_.max_backoff, 2.0});
    auto next_pass = Clock::now() + options_.period;
    auto retry_at = Clock::time_point::max();
    std::unique_lock lock(mu_);
    while (!stop_) {
      next_pass = std::min(next_pass, soon_);
      soon_ = Clock::time_point::max();
      const auto wake = std::min(next_pass, retry_at);
      cv_.wait_until(lock, wake, [&] {
        return stop_ || soon_ < next_pass || (dirty_ && retry_at == Clock::time_point::max());
      });
      if (stop_) break;
      if (!dirty_ && Clock::now() < wake) continue;
      dirty_ = false;
      lock.unlock();
      Status s = body_();
      lock.lock();
      if (s) {
        backoff.Reset();
        retry_at = Clock::time_point::max();
        next_pass = Clock::now() + options_.period;
        continue;
      }
      auto delay = backoff.Next();
      retry_at = Clock::now() + delay;
      dirty_ = true;  // whatever changed still needs doing
      lock.unlock();
      if (on_failure_) on_failure_(s.error(), delay);
      lock.lock();
    }
  }

  const Options options_;
  Body body_;
  OnFailure on_failure_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = false;
  bool stop_ = false;
  Clock::time_point soon_ = Clock::time_point::max();
  std::thread thread_;
};

}  // namespace edgefd
