// Every manifest under manifests/ checked against the contracts in DESIGN.md: node selectors
// only use labels edgefd (or the kubelet) sets, the labeller's RBAC is exactly get+patch on
// nodes and create on events, no role anywhere uses wildcards, kustomizations name files that
// exist, and the labeller's DaemonSet is unprivileged. Generic over the folder, so manifests other
// components add later are checked too.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <map>
#include <regex>
#include <set>

#include "edgefd/discovery/labels.h"
#include "edgefd/testing/paths.h"

namespace edgefd {
namespace {

namespace fs = std::filesystem;

struct Doc {
  fs::path file;
  YAML::Node node;
  std::string Where() const {
    return file.lexically_relative(testing::ManifestsDir()).string() + " (" +
           node["kind"].as<std::string>("?") + " " + node["metadata"]["name"].as<std::string>("?") +
           ")";
  }
};

// The Helm chart (manifests/helm) is templates, not manifests: tests/chart renders it and
// checks what it renders against these.
bool InChart(const fs::path& file) {
  return *file.lexically_relative(testing::ManifestsDir()).begin() == "helm";
}

std::vector<Doc> LoadAll() {
  std::vector<Doc> docs;
  for (const auto& entry : fs::recursive_directory_iterator(testing::ManifestsDir())) {
    const auto ext = entry.path().extension();
    if (!entry.is_regular_file() || (ext != ".yaml" && ext != ".yml")) continue;
    if (InChart(entry.path())) continue;
    for (const YAML::Node& n : YAML::LoadAllFromFile(entry.path().string())) {
      if (n && !n.IsNull()) docs.push_back({entry.path(), n});
    }
  }
  return docs;
}

// Labels the labeller can produce, by name pattern (DESIGN.md "Label contract"), with the
// values each may take ("" = any valid value).
bool ProducibleByEdgefd(const std::string& key, const std::string& value, std::string* why) {
  static const std::regex kName("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  static const std::regex kNumber("[0-9]+");
  static const std::set<std::string> kArch = {"amd64", "arm64", "arm", "riscv64"};
  static const std::set<std::string> kBool = {"true", "false"};
  auto is = [&](const std::set<std::string>& allowed) {
    if (allowed.count(value) == 0) *why = "value '" + value + "' is never produced";
    return allowed.count(value) != 0;
  };
  auto number = [&] {
    bool ok = std::regex_match(value, kNumber);
    if (!ok) *why = "value '" + value + "' is not a count";
    return ok;
  };
  if (key.rfind(kDtLabelPrefix, 0) == 0) {
    // beta.devicetree.org/<vendor>-<model>=<count of enabled nodes>
    bool ok = IsValidLabelKey(key) && key.size() > kDtLabelPrefix.size();
    if (!ok) *why = "not a valid devicetree label name";
    return ok && number();
  }
  if (key.rfind(kLabelPrefix, 0) != 0) {
    *why = "not an edgefd.io/ or beta.devicetree.org/ label";
    return false;
  }
  const std::string name = key.substr(kLabelPrefix.size());
  if (name == "board" || name == "soc" || name == "board.model" || name == "cpu.model") {
    return IsValidLabelValue(value);
  }
  if (name == "cpu.arch") return is(kArch);
  if (name == "cpu.heterogeneous" || name == "camera") return is(kBool);
  if (name == "cpu.cores" || name == "cpu.threads-per-core" || name == "camera.count") {
    return number();
  }
  static const std::regex kCpuClass("cpu\\.(big|mid|little)\\.(cores|model|max-mhz|capacity)");
  std::smatch m;
  if (std::regex_match(name, m, kCpuClass)) return m[2] == "model" || number();
  if (name.rfind("accel.", 0) == 0) {
    std::string rest = name.substr(6);
    bool count = rest.size() > 6 && rest.compare(rest.size() - 6, 6, ".count") == 0;
    if (count) rest.resize(rest.size() - 6);
    if (!std::regex_match(rest, kName)) {
      *why = "'" + rest + "' is not a rule name";
      return false;
    }
    return count ? number() : is({"true"});
  }
  *why = "edgefd never sets " + key;
  return false;
}

// Well-known labels the kubelet sets, which manifests may select on too.
bool SetByKubelet(const std::string& key) {
  static const std::set<std::string> kKubelet = {"kubernetes.io/arch",
                                                 "kubernetes.io/os",
                                                 "kubernetes.io/hostname",
                                                 "topology.kubernetes.io/zone",
                                                 "topology.kubernetes.io/region",
                                                 "node.kubernetes.io/instance-type"};
  return kKubelet.count(key) != 0;
}

// The pod spec of a workload, or an undefined node.
YAML::Node PodSpec(const YAML::Node& doc) {
  const std::string kind = doc["kind"].as<std::string>("");
  if (kind == "Pod") return doc["spec"];
  if (kind == "CronJob") return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"];
  if (kind == "Deployment" || kind == "DaemonSet" || kind == "StatefulSet" ||
      kind == "ReplicaSet" || kind == "Job") {
    return doc["spec"]["template"]["spec"];
  }
  return YAML::Node(YAML::NodeType::Undefined);
}

TEST(Manifests, EveryDocumentIsAKubernetesObject) {
  auto docs = LoadAll();
  ASSERT_FALSE(docs.empty()) << "no manifests under " << testing::ManifestsDir();
  for (const Doc& d : docs) {
    EXPECT_TRUE(d.node.IsMap()) << d.file;
    if (!d.node.IsMap()) continue;
    EXPECT_TRUE(d.node["apiVersion"].IsScalar()) << d.Where();
    EXPECT_TRUE(d.node["kind"].IsScalar()) << d.Where();
    const std::string kind = d.node["kind"].as<std::string>("");
    if (kind != "Kustomization" && kind != "Component") {
      EXPECT_TRUE(d.node["metadata"]["name"].IsScalar()) << d.Where() << ": no metadata.name";
    }
  }
}

TEST(Manifests, NodeSelectorsOnlyUseLabelsSomebodySets) {
  size_t checked = 0;
  for (const Doc& d : LoadAll()) {
    YAML::Node spec = PodSpec(d.node);
    if (!spec || !spec.IsMap()) continue;
    if (YAML::Node sel = spec["nodeSelector"]; sel && sel.IsMap()) {
      for (const auto& kv : sel) {
        const std::string key = kv.first.as<std::string>();
        const std::string value = kv.second.as<std::string>("");
        std::string why;
        ++checked;
        EXPECT_TRUE(SetByKubelet(key) || ProducibleByEdgefd(key, value, &why))
            << d.Where() << ": nodeSelector " << key << "=" << value << ": " << why;
      }
    }
    // Required node affinity selects nodes just the same.
    YAML::Node terms = spec["affinity"]["nodeAffinity"]
                           ["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"];
    if (!terms || !terms.IsSequence()) continue;
    for (const YAML::Node& term : terms) {
      if (!term["matchExpressions"]) continue;
      for (const YAML::Node& e : term["matchExpressions"]) {
        const std::string key = e["key"].as<std::string>("");
        const std::string op = e["operator"].as<std::string>("");
        std::vector<std::string> values;
        if (e["values"]) values = e["values"].as<std::vector<std::string>>();
        if (values.empty()) values.push_back(op == "Exists" || op == "DoesNotExist" ? "true" : "");
        for (const std::string& v : values) {
          std::string why;
          ++checked;
          // Exists/Gt/Lt do not name a value: check only the key then.
          bool key_only = op == "Exists" || op == "DoesNotExist" || op == "Gt" || op == "Lt";
          bool ok = SetByKubelet(key) || ProducibleByEdgefd(key, v, &why) ||
                    (key_only && why.find("value") == 0);
          EXPECT_TRUE(ok) << d.Where() << ": node affinity " << key << " " << op << " " << v << ": "
                          << why;
        }
      }
    }
  }
  RecordProperty("selectors_checked", static_cast<int>(checked));
}

TEST(Manifests, TheContractCheckerRejectsLabelsNobodySets) {
  std::string why;
  EXPECT_FALSE(ProducibleByEdgefd("edgefd.io/gpu", "true", &why));
  EXPECT_FALSE(ProducibleByEdgefd("edgefd.io/cpu.arch", "x86_64", &why));
  EXPECT_FALSE(ProducibleByEdgefd("edgefd.io/accel.movidius-ncs.count", "two", &why));
  EXPECT_FALSE(ProducibleByEdgefd("feature.node.kubernetes.io/cpu-x", "true", &why));
  EXPECT_TRUE(ProducibleByEdgefd("edgefd.io/accel.movidius-ncs", "true", &why)) << why;
  EXPECT_TRUE(ProducibleByEdgefd("edgefd.io/cpu.big.cores", "2", &why)) << why;
  EXPECT_TRUE(ProducibleByEdgefd("beta.devicetree.org/nvidia-jetson-nano", "1", &why)) << why;
}

// A pod whose service account is granted nothing (no RoleBinding or ClusterRoleBinding here
// names it) never calls the API server, so it must not carry a token someone who breaks into
// it could use: `automountServiceAccountToken: false`, said in the pod spec.
TEST(Manifests, OnlyPodsThatCallTheApiServerMountAToken) {
  const auto docs = LoadAll();
  std::set<std::string> bound;  // service accounts some binding grants a role to
  for (const Doc& d : docs) {
    const std::string kind = d.node["kind"].as<std::string>("");
    if (kind != "RoleBinding" && kind != "ClusterRoleBinding") continue;
    for (const YAML::Node& s : d.node["subjects"]) {
      if (s["kind"].as<std::string>("") == "ServiceAccount")
        bound.insert(s["name"].as<std::string>(""));
    }
  }
  int pods = 0;
  for (const Doc& d : docs) {
    const std::string kind = d.node["kind"].as<std::string>("");
    static const std::set<std::string> kWorkloads = {"Deployment", "DaemonSet", "StatefulSet",
                                                     "ReplicaSet", "Job"};
    YAML::Node pod;
    if (kind == "Pod") {
      pod = d.node["spec"];
    } else if (kWorkloads.count(kind) != 0) {
      pod = d.node["spec"]["template"]["spec"];
    } else {
      continue;
    }
    ++pods;
    const std::string account = pod["serviceAccountName"].as<std::string>("default");
    const YAML::Node automount = pod["automountServiceAccountToken"];
    if (bound.count(account) != 0) {
      EXPECT_TRUE(automount.as<bool>(true)) << d.Where() << ": calls the API as " << account;
    } else {
      EXPECT_FALSE(automount.as<bool>(true))
          << d.Where() << ": service account '" << account
          << "' is granted nothing, yet the pod mounts its token";
    }
  }
  EXPECT_GE(pods, 6);  // the four daemons and the pipelines at least
}

TEST(Manifests, NoRoleUsesWildcards) {
  for (const Doc& d : LoadAll()) {
    const std::string kind = d.node["kind"].as<std::string>("");
    if (kind != "ClusterRole" && kind != "Role") continue;
    for (const YAML::Node& rule : d.node["rules"]) {
      for (const char* field : {"apiGroups", "resources", "verbs"}) {
        if (!rule[field]) continue;
        for (const YAML::Node& v : rule[field]) {
          EXPECT_NE(v.as<std::string>(), "*") << d.Where() << ": wildcard in " << field;
        }
      }
    }
  }
}

// The roles of `kind` that bindings of `binding_kind` grant the labeller's service account,
// whatever they are called.
std::set<std::string> LabellerRoles(const std::vector<Doc>& docs, const std::string& binding_kind) {
  std::set<std::string> roles;
  for (const Doc& d : docs) {
    if (d.node["kind"].as<std::string>("") != binding_kind) continue;
    for (const YAML::Node& s : d.node["subjects"]) {
      if (s["kind"].as<std::string>("") == "ServiceAccount" &&
          s["name"].as<std::string>("") == "edgefd-labeller") {
        roles.insert(d.node["roleRef"]["name"].as<std::string>());
      }
    }
  }
  return roles;
}

TEST(Manifests, LabellerMayOnlyGetAndPatchNodes) {
  auto docs = LoadAll();
  const std::set<std::string> roles = LabellerRoles(docs, "ClusterRoleBinding");
  ASSERT_EQ(roles.size(), 1u) << "the labeller's service account should have one cluster role";
  bool found = false;
  for (const Doc& d : docs) {
    if (d.node["kind"].as<std::string>("") != "ClusterRole" ||
        roles.count(d.node["metadata"]["name"].as<std::string>()) == 0) {
      continue;
    }
    found = true;
    // get/patch on nodes; create on events (a rules file that did not load is told on the
    // Node).
    ASSERT_EQ(d.node["rules"].size(), 2u) << d.Where();
    std::map<std::string, std::set<std::string>> verbs_of;
    for (const YAML::Node& rule : d.node["rules"]) {
      EXPECT_EQ(rule["apiGroups"].as<std::vector<std::string>>(), std::vector<std::string>{""});
      auto resources = rule["resources"].as<std::vector<std::string>>();
      ASSERT_EQ(resources.size(), 1u) << d.Where();
      auto verbs = rule["verbs"].as<std::vector<std::string>>();
      verbs_of[resources[0]].insert(verbs.begin(), verbs.end());
      EXPECT_FALSE(rule["resourceNames"]) << "node names are not known in advance";
    }
    EXPECT_EQ(verbs_of, (std::map<std::string, std::set<std::string>>{{"nodes", {"get", "patch"}},
                                                                      {"events", {"create"}}}))
        << d.Where();
  }
  EXPECT_TRUE(found) << "ClusterRole " << *roles.begin() << " is not in manifests/";
}

// NFD mode (components/nfd-nodefeature) adds, in the labeller's namespace only, the
// NodeFeature objects it publishes.
TEST(Manifests, LabellerMayOnlyWriteNodeFeaturesInItsNamespace) {
  auto docs = LoadAll();
  const std::set<std::string> roles = LabellerRoles(docs, "RoleBinding");
  ASSERT_EQ(roles, std::set<std::string>{"edgefd-labeller-nodefeature"});
  bool found = false;
  for (const Doc& d : docs) {
    if (d.node["kind"].as<std::string>("") != "Role" ||
        roles.count(d.node["metadata"]["name"].as<std::string>()) == 0) {
      continue;
    }
    found = true;
    EXPECT_EQ(d.node["metadata"]["namespace"].as<std::string>(""), "edgefd-system");
    ASSERT_EQ(d.node["rules"].size(), 1u) << d.Where();
    const YAML::Node rule = d.node["rules"][0];
    EXPECT_EQ(rule["apiGroups"].as<std::vector<std::string>>(),
              std::vector<std::string>{"nfd.k8s-sigs.io"});
    EXPECT_EQ(rule["resources"].as<std::vector<std::string>>(),
              std::vector<std::string>{"nodefeatures"});
    auto verbs = rule["verbs"].as<std::vector<std::string>>();
    EXPECT_EQ(std::set<std::string>(verbs.begin(), verbs.end()),
              (std::set<std::string>{"get", "create", "patch"}))
        << d.Where();
  }
  EXPECT_TRUE(found) << "Role edgefd-labeller-nodefeature is not in manifests/";
}

// The NFD components turn on the mode they are named for, and the NodeFeature one gives the
// agent its namespace from the downward API.
TEST(Manifests, NfdComponentsSetTheirOutputFlag) {
  for (const auto& [component, flag] : std::map<std::string, std::string>{
           {"nfd-nodefeature", "--output=nodefeature"}, {"nfd-feature-file", "--output=nfd"}}) {
    const fs::path file = testing::ManifestsDir() / "components" / component / "kustomization.yaml";
    YAML::Node k = YAML::LoadFile(file.string());
    EXPECT_EQ(k["kind"].as<std::string>(""), "Component") << file;
    ASSERT_EQ(k["patches"].size(), 1u) << file;
    EXPECT_EQ(k["patches"][0]["target"]["name"].as<std::string>(""), "edgefd-labeller");
    YAML::Node ops = YAML::Load(k["patches"][0]["patch"].as<std::string>());
    std::set<std::string> args;
    bool pod_namespace = false;
    for (const YAML::Node& op : ops) {
      const std::string path = op["path"].as<std::string>("");
      if (path == "/spec/template/spec/containers/0/args/-")
        args.insert(op["value"].as<std::string>());
      if (path == "/spec/template/spec/containers/0/env/-") {
        pod_namespace |= op["value"]["name"].as<std::string>("") == "POD_NAMESPACE" &&
                         op["value"]["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") ==
                             "metadata.namespace";
      }
    }
    EXPECT_EQ(args, std::set<std::string>{flag}) << file;
    EXPECT_EQ(pod_namespace, component == "nfd-nodefeature") << file;
  }
}

// All of a node's CEL expressions (validations, variables, match conditions), joined.
std::string Expressions(const YAML::Node& spec) {
  std::string all;
  for (const char* list : {"matchConditions", "variables", "validations"}) {
    for (const YAML::Node& item : spec[list]) {
      all += item["expression"].as<std::string>("") + "\n";
      all += item["messageExpression"].as<std::string>("") + "\n";
    }
  }
  return all;
}

TEST(Manifests, AnAdmissionPolicyConfinesTheLabellerToItsOwnNodeAndLabels) {
  auto docs = LoadAll();
  const Doc* policy = nullptr;
  const Doc* binding = nullptr;
  for (const Doc& d : docs) {
    const std::string kind = d.node["kind"].as<std::string>("");
    if (kind == "ValidatingAdmissionPolicy" &&
        d.node["metadata"]["name"].as<std::string>("") == "edgefd-labeller-own-node") {
      policy = &d;
    }
    if (kind == "ValidatingAdmissionPolicyBinding" &&
        d.node["spec"]["policyName"].as<std::string>("") == "edgefd-labeller-own-node") {
      binding = &d;
    }
  }
  ASSERT_NE(policy, nullptr) << "no ValidatingAdmissionPolicy edgefd-labeller-own-node";
  ASSERT_NE(binding, nullptr) << "the policy is not bound";
  EXPECT_EQ(policy->node["apiVersion"].as<std::string>(), "admissionregistration.k8s.io/v1");
  EXPECT_EQ(binding->node["apiVersion"].as<std::string>(), "admissionregistration.k8s.io/v1");
  EXPECT_EQ(binding->file.parent_path().filename(), "labeller");
  // Deny, not just warn or audit; and a broken expression refuses rather than lets through.
  EXPECT_EQ(binding->node["spec"]["validationActions"].as<std::vector<std::string>>(),
            std::vector<std::string>{"Deny"});
  const YAML::Node spec = policy->node["spec"];
  EXPECT_EQ(spec["failurePolicy"].as<std::string>(""), "Fail");

  // Every change to a Node (a PATCH is an UPDATE at admission).
  const YAML::Node rules = spec["matchConstraints"]["resourceRules"];
  ASSERT_EQ(rules.size(), 1u);
  EXPECT_EQ(rules[0]["apiGroups"].as<std::vector<std::string>>(), std::vector<std::string>{""});
  EXPECT_EQ(rules[0]["resources"].as<std::vector<std::string>>(),
            std::vector<std::string>{"nodes"});
  auto ops = rules[0]["operations"].as<std::vector<std::string>>();
  EXPECT_NE(std::find(ops.begin(), ops.end(), "UPDATE"), ops.end());

  // Only the labeller's service account, as the ServiceAccount and binding in rbac.yaml name it.
  std::string sa_namespace;
  for (const Doc& d : docs) {
    if (d.node["kind"].as<std::string>("") == "ServiceAccount" &&
        d.node["metadata"]["name"].as<std::string>("") == "edgefd-labeller") {
      sa_namespace = d.node["metadata"]["namespace"].as<std::string>("");
    }
  }
  ASSERT_FALSE(sa_namespace.empty());
  ASSERT_EQ(spec["matchConditions"].size(), 1u);
  EXPECT_NE(spec["matchConditions"][0]["expression"].as<std::string>().find(
                "'system:serviceaccount:" + sa_namespace + ":edgefd-labeller'"),
            std::string::npos);

  const std::string cel = Expressions(spec);
  for (const char* needed :
       {"request.userInfo.extra['authentication.kubernetes.io/node-name']",  // its own Node
        "object.metadata.name == variables.tokenNode", "'edgefd.io/'",
        "'beta.devicetree.org/'",         // its labels
        "'edgefd.io/owned-labels'",       // its annotation
        "object.spec == oldObject.spec",  // no taints, no cordon
        "oldObject.metadata.labels", "oldObject.metadata.annotations"}) {
    EXPECT_NE(cel.find(needed), std::string::npos) << "the policy never checks " << needed;
  }
  EXPECT_EQ(spec["validations"].size(), 4u);
  for (const YAML::Node& v : spec["validations"]) {
    EXPECT_EQ(v["reason"].as<std::string>(""), "Forbidden");
    EXPECT_TRUE(v["message"] || v["messageExpression"]) << "a refusal must say why";
  }

  // Applied with the rest of the labeller.
  YAML::Node k = YAML::LoadFile((testing::ManifestsDir() / "labeller/kustomization.yaml").string());
  auto resources = k["resources"].as<std::vector<std::string>>();
  EXPECT_NE(std::find(resources.begin(), resources.end(), binding->file.filename().string()),
            resources.end());
}

TEST(Manifests, LabellerDaemonSetIsUnprivileged) {
  bool found = false;
  for (const Doc& d : LoadAll()) {
    if (d.node["kind"].as<std::string>("") != "DaemonSet" ||
        d.node["metadata"]["name"].as<std::string>("") != "edgefd-labeller") {
      continue;
    }
    found = true;
    YAML::Node spec = PodSpec(d.node);
    EXPECT_EQ(spec["serviceAccountName"].as<std::string>(""), "edgefd-labeller");
    EXPECT_TRUE(spec["securityContext"]["runAsNonRoot"].as<bool>(false));
    EXPECT_FALSE(spec["hostPID"].as<bool>(false));
    bool tolerates_all = false;
    for (const YAML::Node& t : spec["tolerations"]) {
      tolerates_all |= t["operator"].as<std::string>("") == "Exists" && !t["key"];
    }
    EXPECT_TRUE(tolerates_all) << "must run on every node, tainted or not";

    std::map<std::string, YAML::Node> volumes;
    for (const YAML::Node& v : spec["volumes"]) volumes[v["name"].as<std::string>()] = v;
    ASSERT_EQ(spec["containers"].size(), 1u);
    const YAML::Node c = spec["containers"][0];
    const YAML::Node sc = c["securityContext"];
    EXPECT_FALSE(sc["privileged"].as<bool>(false));
    EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true));
    EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>(false));
    EXPECT_EQ(sc["capabilities"]["drop"].as<std::vector<std::string>>(),
              std::vector<std::string>{"ALL"});
    EXPECT_FALSE(sc["capabilities"]["add"]);

    auto args = c["args"].as<std::vector<std::string>>();
    EXPECT_NE(std::find(args.begin(), args.end(), "--root=/host"), args.end());
    bool node_name = false;
    for (const YAML::Node& e : c["env"]) {
      node_name |= e["name"].as<std::string>("") == "NODE_NAME" &&
                   e["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>("") == "spec.nodeName";
    }
    EXPECT_TRUE(node_name) << "NODE_NAME must come from the downward API";
    bool sys = false;
    for (const YAML::Node& m : c["volumeMounts"]) {
      // Every host mount is read-only.
      const YAML::Node& v = volumes[m["name"].as<std::string>()];
      if (v["hostPath"]) {
        EXPECT_TRUE(m["readOnly"].as<bool>(false)) << m["mountPath"].as<std::string>();
      }
      if (m["mountPath"].as<std::string>("") == "/host/sys") {
        sys = v["hostPath"]["path"].as<std::string>("") == "/sys";
      }
    }
    EXPECT_TRUE(sys) << "the host's /sys must be mounted at /host/sys";
    EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(""), "/healthz");
    EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(""), "/readyz");
    EXPECT_TRUE(c["resources"]["limits"]["memory"]);
    EXPECT_TRUE(c["resources"]["requests"]["memory"]);
  }
  EXPECT_TRUE(found) << "no DaemonSet edgefd-labeller under manifests/";
}

TEST(Manifests, KustomizationsNameFilesThatExist) {
  size_t kustomizations = 0;
  for (const auto& entry : fs::recursive_directory_iterator(testing::ManifestsDir())) {
    if (entry.path().filename() != "kustomization.yaml") continue;
    ++kustomizations;
    YAML::Node k = YAML::LoadFile(entry.path().string());
    for (const YAML::Node& r : k["resources"]) {
      fs::path p = entry.path().parent_path() / r.as<std::string>();
      EXPECT_TRUE(fs::exists(p)) << entry.path() << " names missing " << r.as<std::string>();
    }
  }
  EXPECT_GE(kustomizations, 1u);
}

}  // namespace
}  // namespace edgefd
