// The reconcile loop: when to reconcile (start, changes, resync, retries), not how.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "edgefd/agent/reconcile.h"

namespace edgefd {
namespace {

double NowUnix() {
  using namespace std::chrono;
  return duration<double>(system_clock::now().time_since_epoch()).count();
}

}  // namespace

Backoff::Backoff(Policy policy, uint64_t seed) : policy_(policy), rng_(seed) {}

std::chrono::milliseconds Backoff::Next() {
  double delay = static_cast<double>(policy_.initial.count());
  for (int i = 0; i < attempt_ && delay < static_cast<double>(policy_.max.count()); ++i) {
    delay *= policy_.multiplier;
  }
  delay = std::min(delay, static_cast<double>(policy_.max.count()));
  ++attempt_;
  // Jitter keeps a fleet of nodes from retrying against a recovering API server in step.
  std::uniform_real_distribution<double> jitter(0.5, 1.0);
  return std::chrono::milliseconds(static_cast<int64_t>(delay * jitter(rng_)));
}

Agent::Agent(DiscoverFn discover, LabelSink& sink, AgentMetrics& metrics, Options options)
    : discover_(std::move(discover)), sink_(sink), metrics_(metrics), options_(options) {}

ApplyOutcome Agent::ReconcileOnce() {
  ++metrics_.reconciles;
  auto start = std::chrono::steady_clock::now();
  Result<Labels> labels = discover_();
  metrics_.discovery_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ApplyOutcome outcome;
  if (!labels) {
    outcome.error = "discovery failed: " + labels.error().message;
  } else {
    outcome = sink_.Apply(*labels);
  }
  const auto now = std::chrono::steady_clock::now();
  if (outcome.ok) {
    metrics_.labels_owned = static_cast<int64_t>(outcome.labels_owned);
    metrics_.last_success_unix = NowUnix();
    if (!metrics_.ready) spdlog::info("ready: the node's labels are up to date");
    metrics_.SetReadiness(true);
    failing_since_.reset();
  } else {
    ++metrics_.failures;
    if (!failing_since_) failing_since_ = now;
    // Probes must not stay green while labelling has stopped (a rotated CA, a revoked role).
    if (!outcome.retryable || now - *failing_since_ >= options_.unready_after) {
      if (metrics_.ready) spdlog::warn("not ready: {}", outcome.error);
      metrics_.SetReadiness(false, outcome.error);
    }
  }
  return outcome;
}

Status Agent::RunOnce() {
  Backoff backoff(options_.backoff);
  const Error stopped{"stopped (SIGTERM/SIGINT) before the labels were applied"};
  for (int attempt = 1;; ++attempt) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return stopped;
    }
    ApplyOutcome outcome = ReconcileOnce();
    if (outcome.ok) return Ok{};
    if (!outcome.retryable || attempt >= options_.once_attempts) {
      std::lock_guard lock(mu_);
      return stopping_ ? stopped : Error{outcome.error};
    }
    auto delay = std::max(backoff.Next(), outcome.retry_after);
    spdlog::warn("{} (attempt {}/{}, retrying in {} ms)", outcome.error, attempt,
                 options_.once_attempts, delay.count());
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, delay, [this] { return stopping_; })) return stopped;
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
  Backoff backoff(options_.backoff);
  bool backing_off = false;
  auto next = std::chrono::steady_clock::now();
  std::unique_lock lock(mu_);
  while (!stopping_) {
    // A change ends the resync wait at once, but not a retry wait: a 429 or an outage is not
    // helped by more requests. The change is remembered and handled by the retry.
    cv_.wait_until(lock, next, [&] { return stopping_ || (triggered_ && !backing_off); });
    if (stopping_) break;
    if (!triggered_ && std::chrono::steady_clock::now() < next) continue;
    // The timer, not a change notification, and not a retry: a resync reads everything afresh.
    const bool resync = !triggered_ && !backing_off;
    triggered_ = false;
    lock.unlock();
    if (resync && options_.on_resync) options_.on_resync();
    ApplyOutcome outcome = ReconcileOnce();
    lock.lock();
    if (outcome.ok) {
      if (backing_off) spdlog::info("reconcile succeeded again");
      backing_off = false;
      backoff.Reset();
      next = std::chrono::steady_clock::now() + options_.resync;
    } else {
      backing_off = true;
      auto delay = std::max(backoff.Next(), outcome.retry_after);
      spdlog::log(outcome.retryable ? spdlog::level::warn : spdlog::level::err,
                  "{} (retrying in {} ms)", outcome.error, delay.count());
      next = std::chrono::steady_clock::now() + delay;
    }
  }
  lock.unlock();
  if (source != nullptr) source->Stop();
  return Ok{};
}

}  // namespace edgefd
