#pragma once

// node-feature-discovery's NodeFeature API (nfd.k8s-sigs.io/v1alpha1) as a label sink: the
// agent publishes one NodeFeature object per node, with its labels and the raw features behind
// them, and nfd-master labels the Node (and applies the cluster's NodeFeatureRules).
#include <functional>
#include <string>
#include <string_view>

#include "edgefd/agent/reconcile.h"
#include "edgefd/common/json.h"

namespace edgefd {

/// The label nfd-master selects a node's NodeFeature objects by.
inline constexpr char kNfdNodeNameLabel[] = "nfd.node.kubernetes.io/node-name";
/// The raw features edgefd publishes (NodeFeatureRules match them by these names).
inline constexpr char kNfdCpuFeature[] = "edgefd.cpu";
inline constexpr char kNfdAcceleratorFeature[] = "edgefd.accelerator";
inline constexpr char kNfdCameraFeature[] = "edgefd.camera";

/// The NodeFeature's name: "<node>-edgefd" (DESIGN.md), shortened with a stable hash when that
/// would pass 253 bytes.
std::string NodeFeatureName(std::string_view node);

/// spec.features: instance features `edgefd.cpu` (one per core class: class, model, cores,
/// cpus, capacity, max-mhz), `edgefd.accelerator` and `edgefd.camera` (one per device: rule,
/// id, subsystem, vendor, product, driver, serial, numa-node, devnodes, healthy; empty values
/// left out). Every feature is present, with an empty list when nothing was found, so a rule
/// that matched a device stops matching when it is unplugged.
Json NfdRawFeatures(const Inventory& inventory);

/// The whole object, as the body of a server-side apply.
Json NodeFeatureObject(std::string_view ns, std::string_view node, const Labels& labels,
                       const Inventory& inventory);

/// Publishes the NodeFeature (server-side apply, field manager "edgefd"); the Node itself is
/// labelled by nfd-master, so an nfd-master that is down delays the labels, never the object.
/// Where the NodeFeature CRD is not installed it says so once and labels the Node itself
/// (`fallback`), re-checking at most every `recheck`; when the CRD appears, or at the first
/// publication, the labels edgefd owned on the Node are handed to nfd-master: the owned-labels
/// annotation is removed, and with it the labels no longer wanted.
class NodeFeatureSink final : public LabelSink {
 public:
  /// The inventory the labels of the latest discovery were rendered from.
  using InventoryFn = std::function<const Inventory&()>;

  NodeFeatureSink(kube::ApiTransport& api, std::string ns, std::string node, InventoryFn inventory,
                  AgentMetrics* metrics = nullptr,
                  std::chrono::milliseconds recheck = std::chrono::minutes(5));
  ApplyOutcome Apply(const Labels& wanted) override;

  /// True while the CRD is absent and the Node is labelled directly.
  bool falling_back() const { return falling_back_; }

 private:
  ApplyOutcome Publish(const Labels& wanted);
  void HandOver(const Labels& wanted);
  // Whether the API server serves nodefeatures.nfd.k8s-sigs.io; an Error when it cannot tell.
  Result<bool> CrdInstalled();

  kube::Api api_;
  std::string ns_;
  std::string node_;
  std::string name_;
  InventoryFn inventory_;
  AgentMetrics* metrics_;
  std::chrono::milliseconds recheck_;
  NodeLabeller fallback_;
  bool falling_back_ = false;
  bool handed_over_ = false;
  std::string last_resource_version_;
  std::chrono::steady_clock::time_point next_check_{};
};

}  // namespace edgefd
