// The NodeFeature sink: what edgefd tells node-feature-discovery, and how.
#include "edgefd/agent/nodefeature.h"

#include <spdlog/spdlog.h>

#include "edgefd/discovery/labels.h"
#include "edgefd/kube/events.h"
#include "edgefd/kube/paths.h"

namespace edgefd {
namespace {

constexpr std::string_view kNfdGroupVersion = "/apis/nfd.k8s-sigs.io/v1alpha1";
constexpr size_t kMaxObjectName = 253;

std::string Join(const std::vector<int>& values) {
  std::string out;
  for (int v : values) out += (out.empty() ? "" : ",") + std::to_string(v);
  return out;
}

std::string Join(const std::vector<std::string>& values) {
  std::string out;
  for (const std::string& v : values) out += (out.empty() ? "" : ",") + v;
  return out;
}

// Adds `value` under `key` unless it is empty (NodeFeatureRules test for presence with
// Exists, so an unknown value is better absent than "").
void Put(Json& attributes, const char* key, const std::string& value) {
  if (!value.empty()) attributes[key] = value;
}

Json CpuInstances(const CpuTopology& cpu) {
  Json elements = Json::array();
  for (const CpuClass& c : cpu.classes) {
    Json a = Json::object();
    // A homogeneous node's one class is advertised as big (DESIGN.md, device plugin contract).
    a["class"] = c.name == "all" ? "big" : c.name;
    Put(a, "model", c.model);
    a["cores"] = std::to_string(c.cpus.size());
    Put(a, "cpus", Join(c.cpus));
    if (c.capacity > 0) a["capacity"] = std::to_string(c.capacity);
    if (c.max_mhz > 0) a["max-mhz"] = std::to_string(c.max_mhz);
    elements.push_back(Json{{"attributes", std::move(a)}});
  }
  return Json{{"elements", std::move(elements)}};
}

Json DeviceAttributes(const Device& d) {
  Json a = Json::object();
  a["rule"] = d.rule;
  Put(a, "id", d.id);
  Put(a, "subsystem", d.subsystem);
  Put(a, "vendor", d.vendor_id);
  Put(a, "product", d.product_id);
  Put(a, "driver", d.driver);
  Put(a, "serial", d.serial);
  if (d.numa_node >= 0) a["numa-node"] = std::to_string(d.numa_node);
  Put(a, "devnodes", Join(d.devnodes));
  a["healthy"] = d.healthy ? "true" : "false";
  return Json{{"attributes", std::move(a)}};
}

}  // namespace

std::string NodeFeatureName(std::string_view node) {
  constexpr std::string_view kSuffix = "-edgefd";
  if (node.size() + kSuffix.size() <= kMaxObjectName) return std::string(node) + "-edgefd";
  // "<start of node>-<hash of node>-edgefd": still names one node, within the limit.
  std::string hash = ShortHash(node);
  std::string head(node.substr(0, kMaxObjectName - kSuffix.size() - hash.size() - 1));
  while (!head.empty() && (head.back() == '.' || head.back() == '-')) head.pop_back();
  return head + "-" + hash + std::string(kSuffix);
}

Json NfdRawFeatures(const Inventory& inventory) {
  Json accelerators = Json::array();
  Json cameras = Json::array();
  for (const Device& d : inventory.devices) {
    (d.camera ? cameras : accelerators).push_back(DeviceAttributes(d));
  }
  Json instances = Json::object();
  instances[kNfdCpuFeature] = CpuInstances(inventory.cpu);
  instances[kNfdAcceleratorFeature] = Json{{"elements", std::move(accelerators)}};
  instances[kNfdCameraFeature] = Json{{"elements", std::move(cameras)}};
  return Json{{"flags", Json::object()},
              {"attributes", Json::object()},
              {"instances", std::move(instances)}};
}

Json NodeFeatureObject(std::string_view ns, std::string_view node, const Labels& labels,
                       const Inventory& inventory) {
  Json metadata = {
      {"name", NodeFeatureName(node)}, {"namespace", ns}, {"labels", {{kNfdNodeNameLabel, node}}}};
  return Json{{"apiVersion", "nfd.k8s-sigs.io/v1alpha1"},
              {"kind", "NodeFeature"},
              {"metadata", std::move(metadata)},
              {"spec", {{"features", NfdRawFeatures(inventory)}, {"labels", Json(labels)}}}};
}

NodeFeatureSink::NodeFeatureSink(kube::ApiTransport& api, std::string ns, std::string node,
                                 InventoryFn inventory, AgentMetrics* metrics,
                                 std::chrono::milliseconds recheck)
    : api_(api),
      ns_(std::move(ns)),
      node_(std::move(node)),
      name_(NodeFeatureName(node_)),
      inventory_(std::move(inventory)),
      metrics_(metrics),
      recheck_(recheck),
      fallback_(api, node_, metrics) {}

Result<bool> NodeFeatureSink::CrdInstalled() {
  auto got = api_.transport().Send("GET", std::string(kNfdGroupVersion), {}, {});
  if (!got) return got.error();
  if (got->status == 404) return false;
  if (got->status != 200) {
    return Error{"GET " + std::string(kNfdGroupVersion) + ": " + std::to_string(got->status) + " " +
                     kube::StatusMessage(got->body),
                 kube::CodeOfHttpStatus(got->status)};
  }
  const Json list = ParseJsonOrNull(got->body);
  if (const Json* resources = ValueAt(list, "/resources"); resources && resources->is_array()) {
    for (const Json& r : *resources) {
      if (StringAt(r, "/name") == "nodefeatures") return true;
    }
  }
  return false;
}

ApplyOutcome NodeFeatureSink::Apply(const Labels& wanted) {
  if (falling_back_) {
    if (std::chrono::steady_clock::now() < next_check_) return fallback_.Apply(wanted);
    auto installed = CrdInstalled();
    if (!installed || !*installed) {
      next_check_ = std::chrono::steady_clock::now() + recheck_;
      return fallback_.Apply(wanted);
    }
    spdlog::info("the NodeFeature CRD is installed now: publishing NodeFeature {}/{}", ns_, name_);
    falling_back_ = false;
    handed_over_ = false;
  }
  ApplyOutcome out = Publish(wanted);
  if (out.ok() && !falling_back_ && !handed_over_) HandOver(wanted);
  return out;
}

ApplyOutcome NodeFeatureSink::Publish(const Labels& wanted) {
  const std::string what = "apply NodeFeature " + ns_ + "/" + name_;
  if (Status s = kube::CheckName(node_, "node name"); !s) {
    return ApplyOutcome::Failure(
        Error{s.error().message + "; set --node-name or NODE_NAME", ErrorCode::kInvalidArgument});
  }
  if (Status s = kube::CheckName(ns_, "namespace"); !s) {
    return ApplyOutcome::Failure(
        Error{s.error().message + "; set POD_NAMESPACE", ErrorCode::kInvalidArgument});
  }
  const std::string body = DumpJson(NodeFeatureObject(ns_, node_, wanted, inventory_()));
  auto applied = api_.ApplyNodeFeature(ns_, name_, body);
  if (!applied) return ApplyOutcome::Failure(Within(what, applied.error()));
  const int s = applied->status;
  if (s == 200 || s == 201) {
    if (metrics_ != nullptr) ++metrics_->patches;
    ApplyOutcome out;
    out.labels_owned = wanted.size();
    const std::string rv = StringAt(ParseJsonOrNull(applied->body), "/metadata/resourceVersion");
    out.changed = rv != last_resource_version_;
    if (out.changed) {
      spdlog::info("NodeFeature {}/{} published ({} labels)", ns_, name_, wanted.size());
    }
    last_resource_version_ = rv;
    return out;
  }
  if (s == 404) {
    auto installed = CrdInstalled();
    if (installed && !*installed) {
      spdlog::warn(
          "the NodeFeature CRD (nodefeatures.nfd.k8s-sigs.io) is not installed: "
          "node-feature-discovery (v0.14 or later) is not deployed in this cluster. Labelling "
          "Node {} directly instead, as without --output nodefeature (checking for the CRD "
          "again every {} s)",
          node_, std::chrono::duration_cast<std::chrono::seconds>(recheck_).count());
      falling_back_ = true;
      next_check_ = std::chrono::steady_clock::now() + recheck_;
      return fallback_.Apply(wanted);
    }
    if (!installed) {
      // Whether the CRD is there cannot be told now: ask again later.
      return ApplyOutcome::Failure(
          Error{what + ": 404, and " + installed.error().message, ErrorCode::kUnavailable});
    }
    return ApplyOutcome::Failure(Error{what + ": 404 " + kube::StatusMessage(applied->body) +
                                           " — does namespace '" + ns_ +
                                           "' exist? It comes from POD_NAMESPACE",
                                       ErrorCode::kNotFound});
  }
  std::string text = what + ": " + std::to_string(s) + " " + kube::StatusMessage(applied->body);
  if (s == 401) {
    text += " — the API server rejected the credentials; check the token or client certificate";
  } else if (s == 403) {
    text +=
        " — the service account needs 'get', 'create' and 'patch' on nodefeatures.nfd.k8s-sigs.io "
        "in namespace " +
        ns_ + " (manifests/components/nfd-nodefeature)";
  }
  return ApplyOutcome::Failure(Error{std::move(text), kube::CodeOfHttpStatus(s)},
                               applied->retry_after);
}

void NodeFeatureSink::HandOver(const Labels& wanted) {
  auto got = api_.GetNode(node_);
  auto node = got && got->status == 200 ? ParseNode(got->body) : Result<NodeState>(Error{""});
  if (!node) {
    // Not fatal: nfd-master labels the Node meanwhile; a later reconcile tries again unless
    // the API server answered that it never will (no 'get' on nodes).
    const int s = got ? got->status : 0;
    if (s == 401 || s == 403 || s == 404) handed_over_ = true;
    spdlog::warn(
        "node {}: cannot read it to hand edgefd's labels over to nfd-master ({})", node_,
        got ? std::to_string(s) + " " + kube::StatusMessage(got->body) : got.error().message);
    return;
  }
  if (node->owned.empty() && node->refused.empty()) {
    handed_over_ = true;
    return;
  }
  Json labels = Json::object();
  for (const std::string& name : node->owned) {
    if (wanted.count(name) == 0 && node->labels.count(name) != 0) labels[name] = nullptr;
  }
  Json metadata = {{"resourceVersion", node->resource_version},
                   {"labels", std::move(labels)},
                   {"annotations", {{kOwnedLabelsAnnotation, nullptr}}}};
  auto patched = api_.PatchNode(node_, DumpJson(Json{{"metadata", std::move(metadata)}}));
  if (!patched || patched->status != 200) {
    // A 409 (the Node changed since the GET) or an outage: the next reconcile tries again.
    spdlog::warn("node {}: handing edgefd's labels over to nfd-master failed ({}); retrying later",
                 node_, patched ? std::to_string(patched->status) : patched.error().message);
    return;
  }
  handed_over_ = true;
  spdlog::info("node {}: labels handed over to nfd-master (annotation {} removed)", node_,
               kOwnedLabelsAnnotation);
}

}  // namespace edgefd
