#pragma once

// Rules reload without a restart, the same in every binary that discovers (the labeller's
// agent, the device plugin, the DRA driver): the rules files are watched with inotify
// (edgefd/common/file_watch.h), a change runs discovery again (the Discoverer keeps the last
// good rules when the new files do not load), and RulesReload says what happened: a log line,
// metrics, and an Event on the Node where the binary talks to the API server.

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "edgefd/common/file_watch.h"
#include "edgefd/common/health.h"
#include "edgefd/common/prometheus.h"
#include "edgefd/discovery/discovery.h"
#include "edgefd/discovery/udev.h"
#include "edgefd/discovery/watch.h"

namespace edgefd {

/// A ChangeSource for rules files: FileWatcher under the ChangeSource interface.
class RulesFileSource final : public ChangeSource {
 public:
  explicit RulesFileSource(std::vector<std::filesystem::path> files,
                           FileWatcher::Options options = {})
      : watcher_(std::move(files), options) {}
  Status Start(std::function<void()> on_change) override {
    return watcher_.Start(std::move(on_change));
  }
  void Stop() override { watcher_.Stop(); }

 private:
  FileWatcher watcher_;
};

/// Several ChangeSources as one (hardware events and rules changes): each reports through the
/// same callback. A source that cannot start is logged and left out; Start fails only when
/// none starts.
class ChangeSources final : public ChangeSource {
 public:
  /// Sources may be null (left out); they must outlive this object.
  explicit ChangeSources(std::vector<ChangeSource*> sources);
  Status Start(std::function<void()> on_change) override;
  void Stop() override;

 private:
  std::vector<ChangeSource*> sources_;
  std::vector<ChangeSource*> running_;
};

/// Follows DiscoveryReport::rules from run to run and says when it changed: rules reloaded
/// (info log, Normal Event "RulesReloaded"), a new version of the files refused (error log
/// naming file:line and the key, Warning Event "RulesRejected"; the old rules stay in force).
/// Thread-safe.
class RulesReload {
 public:
  /// Posts an Event about the Node: reason, message, warning. May be empty (no API access).
  using EventFn =
      std::function<void(std::string_view reason, const std::string& message, bool warning)>;

  explicit RulesReload(std::vector<std::filesystem::path> files, EventFn post_event = {});

  /// Where Events go from now on (the API client may come after discovery started).
  void SetEventPoster(EventFn post_event);
  /// Called with each discovery run's rules status.
  void Observe(const RulesStatus& status);
  /// Observe(report.rules), and the followed watcher (FollowSubsystems) watches the subsystems
  /// the rules in force name (report.udev_subsystems): a reload that brings a rule on a new
  /// subsystem follows that subsystem's hotplug without a restart.
  void Observe(const DiscoveryReport& report);
  /// The hotplug watcher whose subsystem filter follows the rules in force; null: none. Clear
  /// it before the watcher goes (a call in flight is waited for).
  void FollowSubsystems(HotplugWatcher* watcher);
  /// edgefd_rules_generation, edgefd_rules_reloads_total, edgefd_rules_reload_errors_total,
  /// edgefd_rules_last_reload_success_timestamp_seconds, edgefd_rules_stale,
  /// edgefd_rules_info{hash}.
  void Render(PrometheusWriter& out) const;
  RulesStatus last() const;

 private:
  std::string files_;  // for messages
  EventFn post_event_;
  mutable std::mutex mu_;
  RulesStatus last_;
  bool seen_ = false;
  std::mutex follow_mu_;  // held while the watcher is told, so clearing it waits for that
  HotplugWatcher* follow_ = nullptr;
};

/// RulesReload::FollowSubsystems for a scope: the watcher follows the rules from construction
/// and no longer from destruction (declare it after both, so it goes first).
class FollowRules {
 public:
  FollowRules(RulesReload& reload, HotplugWatcher* watcher) : reload_(reload) {
    reload_.FollowSubsystems(watcher);
  }
  ~FollowRules() { reload_.FollowSubsystems(nullptr); }
  FollowRules(const FollowRules&) = delete;
  FollowRules& operator=(const FollowRules&) = delete;

 private:
  RulesReload& reload_;
};

/// `checks` with the rules metrics after its own.
HealthChecks WithRulesMetrics(HealthChecks checks, const RulesReload& reload);

/// The rules watcher a binary runs beside its udev watcher: null when there are no rules files
/// (the built-in rules cannot change).
std::unique_ptr<ChangeSource> MakeRulesWatcher(const DiscoveryOptions& options);

}  // namespace edgefd
