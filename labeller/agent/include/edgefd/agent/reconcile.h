#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "edgefd/agent/metrics.h"
#include "edgefd/common/backoff.h"
#include "edgefd/common/result.h"
#include "edgefd/discovery/inventory.h"
#include "edgefd/discovery/watch.h"
#include "edgefd/kube/api.h"

namespace edgefd {

/// What the labeller needs to know about its Node.
struct NodeState {
  Labels labels;
  /// From the `edgefd.io/owned-labels` annotation: only names edgefd may own (IsEdgefdLabel).
  std::set<std::string> owned;
  /// Names the annotation lists that edgefd never owns (anyone who can write the Node can
  /// forge the annotation): ignored, and dropped when the annotation is rewritten.
  std::set<std::string> refused;
  std::string resource_version;
};

/// Whether edgefd may ever set or remove the label `name`: names under `edgefd.io/` and
/// `beta.devicetree.org/` only (DESIGN.md, label contract point 5).
bool IsEdgefdLabel(std::string_view name);

/// Parses a Node object (JSON as the API server returns it).
Result<NodeState> ParseNode(std::string_view json);

/// The annotation value: owned label names, sorted, comma-separated.
std::string FormatOwnedLabels(const std::set<std::string>& owned);
std::set<std::string> ParseOwnedLabels(std::string_view annotation);

/// The JSON merge patch (RFC 7386) that makes `node` carry `wanted`: sets labels that are
/// missing or different, `null`s owned labels no longer wanted, rewrites the ownership
/// annotation, and carries `metadata.resourceVersion` so a concurrent change makes the API
/// server answer 409 instead of losing an update. A wanted label that exists on the node but
/// is not owned is foreign and left alone (and not claimed); names outside edgefd's prefixes
/// are never set, removed or claimed, whatever `node.owned` or `wanted` say. nullopt when
/// nothing changes.
std::optional<std::string> MergePatchFor(const NodeState& node, const Labels& wanted);

/// Owned labels after `MergePatchFor(node, wanted)` is applied.
std::set<std::string> OwnedAfter(const NodeState& node, const Labels& wanted);

/// The outcome of one attempt to make a destination carry the wanted labels.
struct ApplyOutcome {
  /// Ok, or why not in one line naming the destination; its code says whether another attempt
  /// may do better (Retryable: a connection error, a timeout, a conflict, 429, 5xx) and how
  /// `--once` exits (ExitStatus: 2 for a bad node name or namespace).
  Status status = Ok{};
  std::chrono::milliseconds retry_after{0};  ///< the server's Retry-After, when it sent one
  bool changed = false;                      ///< a patch or a file write happened
  size_t labels_owned = 0;

  bool ok() const { return status.ok(); }
  /// The failure's message ("" on success).
  const std::string& error() const;
  static ApplyOutcome Failure(Error error, std::chrono::milliseconds retry_after = {});
};

/// Where labels go: the Node object, or an NFD feature file.
class LabelSink {
 public:
  virtual ~LabelSink() = default;
  virtual ApplyOutcome Apply(const Labels& wanted) = 0;
};

/// Labels a Node through the API server: GET, one merge patch; a 409 re-reads and
/// re-applies (up to `max_conflicts` times in one attempt).
class NodeLabeller final : public LabelSink {
 public:
  NodeLabeller(kube::ApiTransport& api, std::string node_name, AgentMetrics* metrics = nullptr,
               int max_conflicts = 16);
  ApplyOutcome Apply(const Labels& wanted) override;

 private:
  kube::Api api_;
  std::string node_name_;
  std::string path_;
  AgentMetrics* metrics_;
  int max_conflicts_;
};

/// Writes node-feature-discovery's feature file (`name=value` per line) atomically: a temp
/// file in the same directory, fsync, rename. Unchanged content is not rewritten.
class NfdFileSink final : public LabelSink {
 public:
  explicit NfdFileSink(std::filesystem::path path) : path_(std::move(path)) {}
  ApplyOutcome Apply(const Labels& wanted) override;

 private:
  std::filesystem::path path_;
};

/// Keeps a LabelSink equal to discovery: reconciles at start, on every change notification,
/// every `resync`, and after failures with backoff. Readiness (AgentMetrics::ready) follows the
/// last reconcile: a failure retrying cannot fix (401, 403, 404, bad input) makes it not ready
/// at once, retryable ones (no answer, TLS, 429, 5xx) once they have lasted `unready_after`;
/// the next success makes it ready again.
class Agent {
 public:
  struct Options {
    std::chrono::milliseconds resync{std::chrono::seconds(300)};
    Backoff::Policy backoff;
    int once_attempts = 8;  ///< RunOnce gives up after this many retryable failures
    /// RunOnce gives up when this much time has passed in all (requests, waits, retries).
    std::chrono::milliseconds once_timeout{std::chrono::seconds(60)};
    /// Called (on a thread of RunOnce's) when once_timeout passes: ends the request in flight.
    std::function<void()> on_once_timeout;
    std::chrono::milliseconds unready_after{std::chrono::seconds(30)};
    /// Called before a reconcile the resync timer started (not a change notification): what
    /// discovery keeps between runs is to be read afresh.
    std::function<void()> on_resync;
    /// Called by Run once, after its first reconcile that succeeded: start-up is over.
    std::function<void()> on_settled;
  };
  using DiscoverFn = std::function<Result<Labels>()>;

  Agent(DiscoverFn discover, LabelSink& sink, AgentMetrics& metrics, Options options);

  /// One discovery + apply, metrics updated. No retry.
  ApplyOutcome ReconcileOnce();
  /// Reconciles until success, a permanent error, `once_attempts` retryable failures,
  /// `once_timeout`, or Stop() (which also ends a wait between attempts at once). The error
  /// says which ended it.
  Status RunOnce();
  /// Runs until Stop(); subscribes to `source` (may be null) for change notifications. A
  /// change ends a resync wait at once, and a retry wait once the backoff (not a longer
  /// Retry-After) has passed.
  Status Run(ChangeSource* source);
  /// Asks for a reconcile now (what `source` calls).
  void Trigger();
  /// Makes Run and RunOnce return; safe from any thread (a signal's OnStop).
  void Stop();

 private:
  DiscoverFn discover_;
  LabelSink& sink_;
  AgentMetrics& metrics_;
  Options options_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool triggered_ = false;
  bool stopping_ = false;
  bool once_expired_ = false;
  std::optional<std::chrono::steady_clock::time_point> failing_since_;

  Status RunOnceUntil(std::chrono::steady_clock::time_point deadline);
};

}  // namespace edgefd
