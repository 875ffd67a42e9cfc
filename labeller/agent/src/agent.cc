// The reconcile loop: when to reconcile (start, changes, resync, retries), not how.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <string>
#include <thread>

#include "edgefd/agent/reconcile.h"

namespace edgefd {
namespace {

double NowUnix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

Agent::Agent(DiscoverFn discover, LabelSink& sink, AgentMetrics& metrics, Options options)
    : discover_(std::move(discover)), sink_(sink), metrics_(metrics), options_(options) {}

ApplyOutcome Agent::ReconcileOnce() {
  ++metrics_.reconciles;
  auto start = std::chrono::steady_clock::now();
  Result<Labels> labels = discover_();
  metrics_.discovery_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ApplyOutcome outcome = labels ? sink_.Apply(*labels)
                                : ApplyOutcome::Failure(Within("discovery failed", labels.error()));
  const auto now = std::chrono::steady_clock::now();
  if (outcome.ok()) {
    metrics_.labels_owned = static_cast<int64_t>(outcome.labels_owned);
    metrics_.last_success_unix = NowUnix();
    if (!metrics_.ready) spdlog::info("ready: the node's labels are up to date");
    metrics_.SetReadiness(true);
    failing_since_.reset();
  } else {
    ++metrics_.failures;
    if (!failing_since_) failing_since_ = now;
    // Probes must not stay green while labelling has stopped (a rotated CA, a revoked role).
    if (!Retryable(outcome.status.error()) || now - *failing_since_ >= options_.unready_after) {
      if (metrics_.ready) spdlog::warn("not ready: {}", outcome.error());
      metrics_.SetReadiness(false, outcome.error());
    }
  }
  return outcome;
}

Status Agent::RunOnce() {
  const auto deadline = std::chrono::steady_clock::now() + options_.once_timeout;
  // The one deadline of --once: a watchdog ends the request in flight when it passes (each
  // request has its own, shorter, timeout; attempts and waits add up).
  bool finished = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu_);
    if (cv_.wait_until(lock, deadline, [&] { return finished; })) return;
    once_expired_ = true;
    lock.unlock();
    cv_.notify_all();
    if (options_.on_once_timeout) options_.on_once_timeout();
  });
  Status result = RunOnceUntil(deadline);
  {
    std::lock_guard lock(mu_);
    finished = true;
  }
  cv_.notify_all();
  watchdog.join();
  return result;
}

Status Agent::RunOnceUntil(std::chrono::steady_clock::time_point deadline) {
  Backoff backoff(options_.backoff);
  const Error stopped{"stopped (SIGTERM/SIGINT) before the labels were applied",
                      ErrorCode::kCancelled};
  Error last_error{"no attempt finished", ErrorCode::kDeadlineExceeded};
  // Why the run ended, when it did not succeed: a stop, the overall deadline, or the error
  // (with its code, so the exit status says what kind of failure it was).
  auto ended = [&](const Error& error) -> Status {
    std::lock_guard lock(mu_);
    if (stopping_) return stopped;
    if (once_expired_ || std::chrono::steady_clock::now() >= deadline) {
      return Error{"gave up: the overall --once deadline of " +
                       std::to_string(options_.once_timeout.count() / 1000) +
                       " s (--once-timeout) passed; last error: " + error.message,
                   ErrorCode::kDeadlineExceeded};
    }
    return error;
  };
  for (int attempt = 1;; ++attempt) {
    bool over = false;
    {
      std::lock_guard lock(mu_);
      over = stopping_ || once_expired_;
    }
    if (over) return ended(last_error);
    ApplyOutcome outcome = ReconcileOnce();
    if (outcome.ok()) return Ok{};
    last_error = outcome.status.error();
    if (!Retryable(last_error)) return ended(last_error);
    if (attempt >= options_.once_attempts) {
      return ended(
          Error{last_error.message + " (gave up after " + std::to_string(attempt) + " attempts)",
                last_error.code});
    }
    auto delay = std::max(backoff.Next(), outcome.retry_after);
    spdlog::warn("{} (attempt {}/{}, retrying in {} ms)", last_error.message, attempt,
                 options_.once_attempts, delay.count());
    std::unique_lock lock(mu_);
    const auto wake = std::min(deadline, std::chrono::steady_clock::now() + delay);
    cv_.wait_until(lock, wake, [this] { return stopping_ || once_expired_; });
    if (stopping_ || std::chrono::steady_clock::now() >= deadline) {
      lock.unlock();
      return ended(last_error);
    }
  }
}

void Agent::Trigger() {
  {
    std::lock_guard lock(mu_);
    triggered_ = true;
  }
  cv_.notify_all();
}

void Agent::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
}

Status Agent::Run(ChangeSource* source) {
  if (source != nullptr) {
    Status started = source->Start([this] {
      ++metrics_.events;
      Trigger();
    });
    if (!started) {
      spdlog::warn("change notifications unavailable ({}); relying on the {} s resync",
                   started.error().message, options_.resync.count() / 1000);
      source = nullptr;
    }
  }
  using Clock = std::chrono::steady_clock;
  Backoff backoff(options_.backoff);
  bool backing_off = false;
  auto next = Clock::now();
  // While backing off: when the backoff alone (without a Retry-After) ends.
  auto backoff_ends = next;
  bool settled = false;  // a reconcile succeeded
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // A change ends the resync wait at once. A retry wait it shortens only to the backoff: a
    // 429 or an outage is not helped by more requests, but a server's Retry-After (capped by
    // the client) must not keep new hardware unlabelled.
    const auto wake = triggered_ && backing_off ? std::min(next, backoff_ends) : next;
    cv_.wait_until(lock, wake, [&] {
      return stopping_ || (triggered_ && !backing_off) ||
             (triggered_ && backing_off && wake > backoff_ends);
    });
    if (stopping_) break;
    const auto now = Clock::now();
    if (now < next && !(triggered_ && (!backing_off || now >= backoff_ends))) continue;
    // The timer, not a change notification, and not a retry: a resync reads everything afresh.
    const bool resync = !triggered_ && !backing_off;
    triggered_ = false;
    lock.unlock();
    if (resync && options_.on_resync) options_.on_resync();
    ApplyOutcome outcome = ReconcileOnce();
    if (outcome.ok() && !settled) {
      settled = true;
      if (options_.on_settled) options_.on_settled();
    }
    lock.lock();
    if (outcome.ok()) {
      if (backing_off) spdlog::info("reconcile succeeded again");
      backing_off = false;
      backoff.Reset();
      next = std::chrono::steady_clock::now() + options_.resync;
    } else {
      backing_off = true;
      const auto backoff_delay = backoff.Next();
      backoff_ends = Clock::now() + backoff_delay;
      auto delay = std::max(backoff_delay, outcome.retry_after);
      spdlog::log(Retryable(outcome.status.error()) ? spdlog::level::warn : spdlog::level::err,
                  "{} (retrying in {} ms)", outcome.error(), delay.count());
      next = std::chrono::steady_clock::now() + delay;
    }
  }
  lock.unlock();
  if (source != nullptr) source->Stop();
  return Ok{};
}

}  // namespace edgefd
