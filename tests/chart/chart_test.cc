// The Helm chart (manifests/helm/edgefd), rendered by the real helm: `helm lint --strict`, its
// objects kept in step with the kustomizations, values checked by values.schema.json, each
// value doing what values.yaml says. helm comes from scripts/build-helm.sh (the e2e cache);
// without it these tests skip saying so, unless EDGEFD_REQUIRE_HELM=1 (CI) makes that a failure.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/discovery/rules.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

const fs::path kChart = ManifestsDir() / "helm/edgefd";

// helm: $EDGEFD_HELM, else the e2e cache's, else one on PATH.
std::optional<std::string> FindHelm() {
  if (const char* env = std::getenv("EDGEFD_HELM"); env != nullptr && *env != '\0') return env;
  const char* cache = std::getenv("EDGEFD_CACHE");
  const char* home = std::getenv("HOME");
  fs::path cached = cache != nullptr && *cache != '\0'
                        ? fs::path(cache) / "e2e/bin/helm"
                        : fs::path(home != nullptr ? home : "/root") / ".cache/edgefd/e2e/bin/helm";
  if (access(cached.c_str(), X_OK) == 0) return cached.string();
  const char* path = std::getenv("PATH");
  std::string dirs = path != nullptr ? path : "";
  for (size_t start = 0; start <= dirs.size();) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    fs::path candidate = fs::path(dirs.substr(start, end - start)) / "helm";
    if (end > start && access(candidate.c_str(), X_OK) == 0) return candidate.string();
    start = end + 1;
  }
  return std::nullopt;
}

// A YAML node as JSON with every scalar a string: what the comparisons need (helm and the
// kustomizations write the same scalars the same way; a type change shows as a text change).
Json ToJson(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : n) out[kv.first.as<std::string>()] = ToJson(kv.second);
      return out;
    }
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const YAML::Node& item : n) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Scalar:
      return n.as<std::string>();
    default:
      return nullptr;
  }
}

// Json keeps the order keys were written in; the comparisons are of contents.
nlohmann::json Canonical(const Json& j) { return nlohmann::json::parse(j.dump()); }

std::string KeyOf(const Json& object) {
  return StringAt(object, "/kind") + "/" + StringAt(object, "/metadata/name");
}

class ChartTest : public ::testing::Test {
 protected:
  void SetUp() override {
    helm_ = FindHelm();
    if (helm_) return;
    const char* require = std::getenv("EDGEFD_REQUIRE_HELM");
    if (require != nullptr && std::string(require) == "1") {
      FAIL() << "helm not found and EDGEFD_REQUIRE_HELM=1: run scripts/build-helm.sh";
    }
    GTEST_SKIP() << "helm not found ($EDGEFD_HELM, ~/.cache/edgefd/e2e/bin/helm, PATH): run "
                    "`bash scripts/build-helm.sh` to build it (CI does)";
  }

  CommandResult Helm(std::vector<std::string> args) {
    args.insert(args.begin(), *helm_);
    // Helm's own caches and configuration in the test's directory, not the user's.
    return RunCommand(
        args, {"HELM_CACHE_HOME=" + (tmp_ / "cache"), "HELM_CONFIG_HOME=" + (tmp_ / "config"),
               "HELM_DATA_HOME=" + (tmp_ / "data")});
  }

  // `helm template` with `args`: every object (hooks included), in order.
  std::vector<Json> Render(std::vector<std::string> args = {}) {
    std::vector<std::string> all = {"template", "edgefd", kChart.string(), "--namespace",
                                    "edgefd-system"};
    all.insert(all.end(), args.begin(), args.end());
    CommandResult r = Helm(all);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    std::vector<Json> objects;
    for (const YAML::Node& doc : YAML::LoadAll(r.out)) {
      if (doc && doc.IsMap()) objects.push_back(ToJson(doc));
    }
    return objects;
  }

  static const Json* Find(const std::vector<Json>& objects, const std::string& key) {
    for (const Json& o : objects) {
      if (KeyOf(o) == key) return &o;
    }
    return nullptr;
  }

  static std::vector<std::string> Args(const Json& daemonset) {
    std::vector<std::string> out;
    for (const Json& a : daemonset["spec"]["template"]["spec"]["containers"][0]["args"]) {
      out.push_back(a.get<std::string>());
    }
    return out;
  }

  std::optional<std::string> helm_;
  TempDir tmp_;
};

TEST_F(ChartTest, LintsStrictWithDefaultsAndEveryComponent) {
  CommandResult r = Helm({"lint", "--strict", kChart.string()});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  r = Helm({"lint", "--strict", kChart.string(), "--set",
            "dra.enabled=true,nfd.mode=nodefeature,serviceMonitor.enabled=true"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
}

// What the chart adds to the kustomizations' objects on purpose, removed before comparing: the
// rules ConfigMap's volume, mount and --config (what makes `helm upgrade` of the rules work),
// and an explicit imagePullPolicy.
void DropChartAdditions(Json& object) {
  if (object["kind"] != "DaemonSet") return;
  Json& pod = object["spec"]["template"]["spec"];
  auto drop = [](Json& list, auto pred) {
    if (!list.is_array()) return;
    Json kept = Json::array();
    for (Json& item : list) {
      if (!pred(item)) kept.push_back(item);
    }
    list = kept;
  };
  drop(pod["volumes"], [](const Json& v) { return v.value("name", "") == "rules"; });
  for (Json& c : pod["containers"]) {
    c.erase("imagePullPolicy");
    drop(c["volumeMounts"], [](const Json& m) { return m.value("name", "") == "rules"; });
    drop(c["args"], [](const Json& a) {
      return a.is_string() && a.get<std::string>() == "--config=/etc/edgefd/rules/rules.yaml";
    });
  }
}

// The objects `kubectl kustomize manifests/<dir>` renders: its resources, with its images'
// newTag applied (the only transformer these kustomizations use).
std::vector<Json> Kustomize(const std::string& dir) {
  const fs::path base = ManifestsDir() / dir;
  YAML::Node k = YAML::LoadFile((base / "kustomization.yaml").string());
  std::map<std::string, std::string> tags;
  for (const YAML::Node& image : k["images"]) {
    tags[image["name"].as<std::string>()] = image["newTag"].as<std::string>();
  }
  std::vector<Json> out;
  for (const YAML::Node& resource : k["resources"]) {
    for (const YAML::Node& doc :
         YAML::LoadAllFromFile((base / resource.as<std::string>()).string())) {
      if (!doc || !doc.IsMap()) continue;
      Json object = ToJson(doc);
      if (object["kind"] == "DaemonSet") {
        for (Json& c : object["spec"]["template"]["spec"]["containers"]) {
          std::string image = c["image"];
          std::string name = image.substr(0, image.rfind(':'));
          if (tags.count(name) != 0) c["image"] = name + ":" + tags[name];
        }
      }
      out.push_back(std::move(object));
    }
  }
  return out;
}

TEST_F(ChartTest, RendersWhatTheKustomizationsRender) {
  // Every component on: the chart's objects against those of manifests/labeller,
  // manifests/deviceplugin and manifests/dra together.
  std::map<std::string, Json> chart;
  for (Json& o : Render({"--set", "dra.enabled=true"})) {
    const bool hook = o["metadata"].contains("annotations") &&
                      o["metadata"]["annotations"].contains("helm.sh/hook");
    if (hook || KeyOf(o) == "ConfigMap/edgefd-rules") continue;  // chart-only
    DropChartAdditions(o);
    EXPECT_EQ(chart.count(KeyOf(o)), 0u) << KeyOf(o) << " rendered twice";
    chart[KeyOf(o)] = o;
  }
  std::map<std::string, Json> kustomized;
  for (const char* dir : {"labeller", "deviceplugin", "dra"}) {
    for (Json& o : Kustomize(dir)) {
      // helm install --create-namespace makes the namespace; the chart owns none.
      if (o["kind"] != "Namespace") kustomized[KeyOf(o)] = o;
    }
  }
  ASSERT_FALSE(kustomized.empty());
  for (const auto& [key, object] : kustomized) {
    auto it = chart.find(key);
    if (it == chart.end()) {
      ADD_FAILURE() << key << " is in the kustomizations but the chart does not render it";
      continue;
    }
    EXPECT_EQ(Canonical(it->second), Canonical(object))
        << key << " differs:\nchart:\n"
        << it->second.dump(1) << "\nkustomization:\n"
        << object.dump(1);
  }
  for (const auto& [key, object] : chart) {
    EXPECT_EQ(kustomized.count(key), 1u) << key << " is rendered by the chart only";
  }
}

TEST_F(ChartTest, ATypoOrAWrongTypeFailsNamingItsPath) {
  CommandResult r = Helm({"template", "x", kChart.string(), "--set", "labeller.resyncc=5"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("labeller"));
  EXPECT_THAT(r.err, HasSubstr("resyncc"));
  r = Helm({"template", "x", kChart.string(), "--set", "devicePlugin.enabled=maybe"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("devicePlugin"));
  EXPECT_THAT(r.err, HasSubstr("enabled"));
  r = Helm({"template", "x", kChart.string(), "--set", "nfd.mode=master"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("mode"));
  r = Helm({"template", "x", kChart.string(), "--set", "image.digest=latest"});
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("digest"));
}

TEST_F(ChartTest, ComponentsTurnOnAndOff) {
  auto defaults = Render();
  EXPECT_NE(Find(defaults, "DaemonSet/edgefd-labeller"), nullptr);
  EXPECT_NE(Find(defaults, "DaemonSet/edgefd-deviceplugin"), nullptr);
  EXPECT_NE(Find(defaults, "DaemonSet/edgefd-nri"), nullptr);
  EXPECT_EQ(Find(defaults, "DaemonSet/edgefd-dra"), nullptr);
  EXPECT_EQ(Find(defaults, "DeviceClass/edgefd.io-edgetpu"), nullptr);
  EXPECT_NE(Find(defaults, "Job/edgefd-edgefd-prune"), nullptr);

  auto only_dra =
      Render({"--set",
              "labeller.enabled=false,devicePlugin.enabled=false,nri.enabled=false,"
              "dra.enabled=true,dra.deviceClasses=false,admissionPolicies.enabled=false"});
  EXPECT_EQ(Find(only_dra, "DaemonSet/edgefd-labeller"), nullptr);
  EXPECT_EQ(Find(only_dra, "Job/edgefd-edgefd-prune"), nullptr);
  EXPECT_EQ(Find(only_dra, "DaemonSet/edgefd-deviceplugin"), nullptr);
  EXPECT_EQ(Find(only_dra, "DaemonSet/edgefd-nri"), nullptr);
  EXPECT_NE(Find(only_dra, "DaemonSet/edgefd-dra"), nullptr);
  EXPECT_NE(Find(only_dra, "ClusterRole/edgefd-dra"), nullptr);
  EXPECT_EQ(Find(only_dra, "DeviceClass/edgefd.io-edgetpu"), nullptr);
  EXPECT_EQ(Find(only_dra, "ValidatingAdmissionPolicy/edgefd-dra-own-node"), nullptr);

  auto monitored = Render({"--set", "serviceMonitor.enabled=true"});
  EXPECT_NE(Find(monitored, "ServiceMonitor/edgefd-labeller"), nullptr);
  EXPECT_NE(Find(monitored, "Service/edgefd-labeller-metrics"), nullptr);
  EXPECT_EQ(Find(monitored, "ServiceMonitor/edgefd-dra"), nullptr);
}

// dra.calibration is manifests/components/dra-calibration: each value its patch adds is in the
// chart's DaemonSet (the flag, the directory read-only, its hostPath), and none without it.
TEST_F(ChartTest, DraCalibrationAddsWhatTheKustomizeComponentAdds) {
  YAML::Node component =
      YAML::LoadFile((ManifestsDir() / "components/dra-calibration/kustomization.yaml").string());
  const Json ops = ToJson(YAML::Load(component["patches"][0]["patch"].as<std::string>()));
  ASSERT_EQ(ops.size(), 3u);
  const auto calibrated = Render(
      {"--set", "dra.enabled=true", "--set", "dra.calibration=/var/lib/edgefd/calibration.json"});
  const auto plain = Render({"--set", "dra.enabled=true"});
  const Json* with = Find(calibrated, "DaemonSet/edgefd-dra");
  const Json* without = Find(plain, "DaemonSet/edgefd-dra");
  ASSERT_TRUE(with != nullptr && without != nullptr);
  for (const Json& op : ops) {
    ASSERT_EQ(op["op"], "add");
    std::string list = op["path"].get<std::string>();
    ASSERT_TRUE(list.ends_with("/-")) << list;
    list.resize(list.size() - 2);
    auto contains = [&](const Json& ds) {
      const Json& items = ds.at(Json::json_pointer(list));
      return std::any_of(items.begin(), items.end(),
                         [&](const Json& i) { return Canonical(i) == Canonical(op["value"]); });
    };
    EXPECT_TRUE(contains(*with)) << op.dump() << " not in\n" << with->dump(1);
    EXPECT_FALSE(contains(*without)) << op.dump();
  }
  // A path that is not absolute, or the root, is refused before anything is rendered.
  for (const char* bad : {"calibration.json", "/calibration.json"}) {
    CommandResult r = Helm({"template", "edgefd", kChart.string(), "--set", "dra.enabled=true",
                            "--set", std::string("dra.calibration=") + bad});
    EXPECT_NE(r.exit_code, 0) << bad;
    EXPECT_THAT(r.err, ::testing::HasSubstr("/dra/calibration")) << r.err;
  }
}

TEST_F(ChartTest, ImagePlacementResourcesAndProbesComeFromValues) {
  const std::string digest = "sha256:" + std::string(64, 'a');
  auto objects = Render({"--set", "image.repository=registry.local/edgefd,image.digest=" + digest +
                                      ",image.pullPolicy=Always,labeller.priorityClassName=edge,"
                                      "labeller.nodeSelector.edge=yes,labeller.resources.limits."
                                      "memory=80Mi,labeller.livenessProbe.periodSeconds=7"});
  const Json* ds = Find(objects, "DaemonSet/edgefd-labeller");
  ASSERT_NE(ds, nullptr);
  const Json& pod = (*ds)["spec"]["template"]["spec"];
  EXPECT_EQ(pod["containers"][0]["image"], "registry.local/edgefd@" + digest);
  EXPECT_EQ(pod["containers"][0]["imagePullPolicy"], "Always");
  EXPECT_EQ(pod["priorityClassName"], "edge");
  EXPECT_EQ(pod["nodeSelector"], Json({{"edge", "yes"}}));
  EXPECT_EQ(pod["containers"][0]["resources"]["limits"]["memory"], "80Mi");
  EXPECT_EQ(pod["containers"][0]["livenessProbe"]["periodSeconds"], "7");
  // The prune hook runs the same image.
  const Json* job = Find(objects, "Job/edgefd-edgefd-prune");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ((*job)["spec"]["template"]["spec"]["containers"][0]["image"],
            "registry.local/edgefd@" + digest);
}

TEST_F(ChartTest, NfdModeSetsTheFlagAndGrantsNodeFeaturesInTheNamespace) {
  auto objects = Render({"--set", "nfd.mode=nodefeature"});
  const Json* ds = Find(objects, "DaemonSet/edgefd-labeller");
  ASSERT_NE(ds, nullptr);
  EXPECT_THAT(Args(*ds), ::testing::Contains("--output=nodefeature"));
  const Json* role = Find(objects, "Role/edgefd-labeller-nodefeatures");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ(StringAt(*role, "/metadata/namespace"), "edgefd-system");
  EXPECT_EQ((*role)["rules"], Json::parse(R"([{"apiGroups":["nfd.k8s-sigs.io"],
      "resources":["nodefeatures"],"verbs":["get","create","patch","update"]}])"));
  EXPECT_NE(Find(objects, "RoleBinding/edgefd-labeller-nodefeatures"), nullptr);
  EXPECT_EQ(Find(Render(), "Role/edgefd-labeller-nodefeatures"), nullptr);
  EXPECT_THAT(Args(*Find(Render(), "DaemonSet/edgefd-labeller")),
              ::testing::Not(::testing::Contains("--output=nodefeature")));
}

// The rules ConfigMap holds what edgefd's own parser accepts, with the defaults and with rules.
TEST_F(ChartTest, InlineRulesBecomeARulesFileEdgefdLoads) {
  const std::vector<Json> defaults = Render();
  const Json* empty = Find(defaults, "ConfigMap/edgefd-rules");
  ASSERT_NE(empty, nullptr);
  auto none = ParseRules(StringAt(*empty, "/data/rules.yaml"), "chart default");
  ASSERT_TRUE(none.ok()) << none.error().message;
  EXPECT_TRUE(none->empty());

  auto objects =
      Render({"--set-json", R"(rules=[{"name":"site-npu","match":[{"compatible":["acme,npu*"]}],)"
                            R"("devnodes":["/dev/acme*"]}])"});
  const Json* cm = Find(objects, "ConfigMap/edgefd-rules");
  ASSERT_NE(cm, nullptr);
  auto rules = ParseRules(StringAt(*cm, "/data/rules.yaml"), "chart rules");
  ASSERT_TRUE(rules.ok()) << rules.error().message << "\n" << StringAt(*cm, "/data/rules.yaml");
  ASSERT_EQ(rules->size(), 1u);
  EXPECT_EQ((*rules)[0].name, "site-npu");
  EXPECT_EQ((*rules)[0].devnodes, std::vector<std::string>{"/dev/acme*"});
  // Every component reads it; a change of the rules changes no pod template (no restart).
  for (const char* ds : {"DaemonSet/edgefd-labeller", "DaemonSet/edgefd-deviceplugin"}) {
    ASSERT_NE(Find(objects, ds), nullptr) << ds;
    EXPECT_THAT(Args(*Find(objects, ds)),
                ::testing::Contains("--config=/etc/edgefd/rules/rules.yaml"));
    EXPECT_EQ((*Find(objects, ds))["spec"]["template"], (*Find(defaults, ds))["spec"]["template"])
        << ds << ": new rules would restart its pods";
  }
}

TEST_F(ChartTest, UninstallPrunesWithTheLabellersOwnPruneAsAPreDeleteHook) {
  auto objects = Render();
  const Json* job = Find(objects, "Job/edgefd-edgefd-prune");
  ASSERT_NE(job, nullptr);
  EXPECT_EQ(StringAt(*job, "/metadata/annotations/helm.sh~1hook"), "pre-delete");
  const Json& c = (*job)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["command"][0], "/usr/local/bin/edgefd-labeller");
  EXPECT_EQ(c["args"][0], "--prune");
  EXPECT_EQ(c["args"][1], "--all-nodes");
  const Json* role = Find(objects, "ClusterRole/edgefd-edgefd-prune");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ((*role)["rules"], Json::parse(R"([{"apiGroups":[""],"resources":["nodes"],
      "verbs":["get","list","patch"]}])"));
  EXPECT_NE(Find(objects, "ValidatingAdmissionPolicy/edgefd-edgefd-prune-removes-only"), nullptr);
  EXPECT_EQ(Find(Render({"--set", "labeller.prune.enabled=false"}), "Job/edgefd-edgefd-prune"),
            nullptr);
  EXPECT_EQ(Find(objects, "Role/edgefd-prune"), nullptr);  // no DRA driver: nothing to stop
}

// With the DRA driver, the hook first deletes its DaemonSet in the foreground (and may do no
// more than that to DaemonSets), and the driver is told which DaemonSet is its own: at a stop
// it removes its CDI specs when that DaemonSet is being deleted.
TEST_F(ChartTest, UninstallStopsTheDraDriverFirstSoItRemovesItsCdiSpecs) {
  auto objects = Render({"--set", "dra.enabled=true"});
  const Json* job = Find(objects, "Job/edgefd-edgefd-prune");
  ASSERT_NE(job, nullptr);
  const Json& c = (*job)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(c["args"].back(), "--stop-daemonset=edgefd-dra");
  EXPECT_EQ(StringAt(c, "/env/0/name"), "POD_NAMESPACE");
  const Json* role = Find(objects, "Role/edgefd-prune");
  ASSERT_NE(role, nullptr);
  EXPECT_EQ(StringAt(*role, "/metadata/annotations/helm.sh~1hook"), "pre-delete");
  EXPECT_EQ((*role)["rules"], Json::parse(R"([{"apiGroups":["apps"],"resources":["daemonsets"],
      "resourceNames":["edgefd-dra"],"verbs":["get","delete"]}])"));
  ASSERT_NE(Find(objects, "RoleBinding/edgefd-prune"), nullptr);
  const Json* ds = Find(objects, "DaemonSet/edgefd-dra");
  ASSERT_NE(ds, nullptr);
  const Json& dra = (*ds)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_NE(std::find(dra["args"].begin(), dra["args"].end(), Json("--daemonset=edgefd-dra")),
            dra["args"].end());
}

}  // namespace
}  // namespace edgefd::testing
