#include "edgefd/discovery/rules_reload.h"

#include <spdlog/spdlog.h>

namespace edgefd {

ChangeSources::ChangeSources(std::vector<ChangeSource*> sources) {
  for (ChangeSource* s : sources) {
    if (s != nullptr) sources_.push_back(s);
  }
}

Status ChangeSources::Start(std::function<void()> on_change) {
  std::string errors;
  for (ChangeSource* s : sources_) {
    if (Status started = s->Start(on_change); !started) {
      spdlog::warn("{}", started.error().message);
      errors += (errors.empty() ? "" : "; ") + started.error().message;
      continue;
    }
    running_.push_back(s);
  }
  if (running_.empty() && !sources_.empty()) return Error{errors};
  return Ok{};
}

void ChangeSources::Stop() {
  for (ChangeSource* s : running_) s->Stop();
  running_.clear();
}

RulesReload::RulesReload(std::vector<std::filesystem::path> files, EventFn post_event)
    : post_event_(std::move(post_event)) {
  for (const auto& f : files) files_ += (files_.empty() ? "" : ", ") + f.string();
}

void RulesReload::SetEventPoster(EventFn post_event) {
  std::lock_guard lock(mu_);
  post_event_ = std::move(post_event);
}

void RulesReload::Observe(const RulesStatus& status) {
  std::string reason, message;
  bool warning = false;
  EventFn post;
  {
    std::lock_guard lock(mu_);
    const RulesStatus before = last_;
    const bool first = !seen_;
    last_ = status;
    seen_ = true;
    if (first) {
      if (!files_.empty()) {
        spdlog::info("rules loaded from {} (generation {}, hash {}); following changes", files_,
                     status.generation, status.hash);
      }
      return;
    }
    if (status.generation != before.generation) {
      reason = "RulesReloaded";
      message = "rules reloaded from " + files_ + " (generation " +
                std::to_string(status.generation) + ", hash " + status.hash + ")";
      spdlog::info("{}", message);
    } else if (status.rejected != before.rejected) {
      reason = "RulesRejected";
      warning = true;
      message = "rules not reloaded, the rules of generation " + std::to_string(status.generation) +
                " (hash " + status.hash + ") stay in force: " + status.error;
      spdlog::error("{}", message);
    } else if (before.error.empty() != status.error.empty() && status.error.empty()) {
      spdlog::info("the rules files are the rules in force again (generation {})",
                   status.generation);
    }
    post = post_event_;
  }
  // Outside the lock: an API request may take seconds, and /metrics must not wait for it.
  if (!reason.empty() && post) post(reason, message, warning);
}

void RulesReload::Observe(const DiscoveryReport& report) {
  Observe(report.rules);
  std::lock_guard lock(follow_mu_);
  if (follow_ != nullptr) follow_->SetSubsystems(report.udev_subsystems);
}

void RulesReload::FollowSubsystems(HotplugWatcher* watcher) {
  std::lock_guard lock(follow_mu_);
  follow_ = watcher;
}

void RulesReload::Render(PrometheusWriter& out) const {
  std::lock_guard lock(mu_);
  out.Gauge("edgefd_rules_generation",
            "Generation of the rules in force: 1 at start, +1 for each reload that changed them.",
            static_cast<double>(last_.generation));
  out.Counter("edgefd_rules_reloads_total", "Rules reloads that changed the rules in force.",
              last_.generation > 0 ? static_cast<double>(last_.generation - 1) : 0);
  out.Counter("edgefd_rules_reload_errors_total",
              "New versions of the rules files refused (broken or deleted); the rules before "
              "them stayed in force.",
              static_cast<double>(last_.rejected));
  out.Gauge("edgefd_rules_last_reload_success_timestamp_seconds",
            "When the rules in force were loaded (Unix time).", last_.loaded_unix);
  out.Gauge("edgefd_rules_stale",
            "1 while the rules files on disk are not the rules in force (they did not load).",
            last_.error.empty() ? 0 : 1);
  out.Family("edgefd_rules_info", "gauge", "The rules in force: the hash of their files.");
  out.Sample("edgefd_rules_info", {{"hash", last_.hash}}, 1);
}

RulesStatus RulesReload::last() const {
  std::lock_guard lock(mu_);
  return last_;
}

HealthChecks WithRulesMetrics(HealthChecks checks, const RulesReload& reload) {
  checks.metrics = [metrics = std::move(checks.metrics), &reload] {
    PrometheusWriter out;
    reload.Render(out);
    return (metrics ? metrics() : std::string()) + out.text();
  };
  return checks;
}

std::unique_ptr<ChangeSource> MakeRulesWatcher(const DiscoveryOptions& options) {
  if (options.rule_files.empty()) return nullptr;
  return std::make_unique<RulesFileSource>(options.rule_files);
}

}  // namespace edgefd
