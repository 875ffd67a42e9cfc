// manifests/dra says what the DRA plugin needs and no more, and matches what the code does.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <map>
#include <regex>
#include <set>
#include <vector>

#include "dra_test_support.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/dra/slices.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::dra {
namespace {

using ::testing::HasSubstr;

const std::string kDir = (::edgefd::testing::ManifestsDir() / "dra").string() + "/";

std::vector<YAML::Node> Docs(const std::string& file) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& n : YAML::LoadAllFromFile(kDir + file)) {
    if (n && !n.IsNull()) out.push_back(n);
  }
  return out;
}

YAML::Node Find(const std::string& file, const std::string& kind, const std::string& name) {
  for (const YAML::Node& n : Docs(file)) {
    if (n["kind"].as<std::string>("") == kind &&
        n["metadata"]["name"].as<std::string>("") == name) {
      return n;
    }
  }
  return YAML::Node();
}

std::string Output(const std::string& args) {
  auto r = ::edgefd::testing::RunCommand(
      ::edgefd::testing::CommandLine(::edgefd::testing::DevicePluginBin(), args));
  EXPECT_EQ(r.exit_code, 0) << args << ": " << r.err;
  return r.out;
}

TEST(DraManifests, GeneratedFilesAreWhatTheBinaryPrintsForTheBuiltInRules) {
  EXPECT_EQ(::edgefd::testing::ReadFile(kDir + "deviceclasses.yaml"),
            Output("--mode dra --print-device-classes"))
      << "regenerate: edgefd-deviceplugin --mode dra --print-device-classes > "
         "manifests/dra/deviceclasses.yaml";
  EXPECT_EQ(::edgefd::testing::ReadFile(kDir + "extended-resources/patches.yaml"),
            Output("--mode dra --print-extended-resources"));
}

TEST(DraManifests, DeviceClassesSelectByTheAttributesTheSlicesCarry) {
  // One class per resource rule and per core class, named as DESIGN.md says.
  std::set<std::string> names;
  for (const YAML::Node& c : Docs("deviceclasses.yaml")) {
    ASSERT_EQ(c["kind"].as<std::string>(), "DeviceClass");
    EXPECT_EQ(c["apiVersion"].as<std::string>(), "resource.k8s.io/v1");
    names.insert(c["metadata"]["name"].as<std::string>());
  }
  for (const char* n : {"edgefd.io-edgetpu", "edgefd.io-movidius-ncs", "edgefd.io-hailo",
                        "edgefd.io-big-cpu", "edgefd.io-mid-cpu", "edgefd.io-little-cpu"}) {
    EXPECT_TRUE(names.contains(n)) << n;
  }
  EXPECT_FALSE(names.contains("edgefd.io-camera")) << "the camera rule is no resource";
  // Every attribute a selector reads is one a device of that kind really has.
  auto resources = deviceplugin::ResourcesFromInventory(testing::DraInventory(1));
  std::set<std::string> attributes;
  for (const SliceDevice& d : PoolDevices(resources, {}, false)) {
    for (const auto& [name, value] : d.attributes) attributes.insert(name);
  }
  const std::regex read(R"re(device\.attributes\["edgefd\.io"\]\.([A-Za-z]+))re");
  std::vector<std::string> expressions;
  for (const YAML::Node& c : Docs("deviceclasses.yaml")) {
    expressions.push_back(c["spec"]["selectors"][0]["cel"]["expression"].as<std::string>());
  }
  for (const YAML::Node& t : Docs("example.yaml")) {
    if (t["kind"].as<std::string>() != "ResourceClaimTemplate") continue;
    for (const YAML::Node& s :
         t["spec"]["spec"]["devices"]["requests"][0]["exactly"]["selectors"]) {
      expressions.push_back(s["cel"]["expression"].as<std::string>());
    }
  }
  size_t reads = 0;
  for (const std::string& e : expressions) {
    for (std::sregex_iterator it(e.begin(), e.end(), read), end; it != end; ++it, ++reads) {
      EXPECT_TRUE(attributes.contains((*it)[1])) << e;
    }
  }
  EXPECT_GT(reads, 10u);
}

TEST(DraManifests, TheServiceAccountMayTouchOnlyWhatThePluginUses) {
  std::string role;
  for (const YAML::Node& d : Docs("rbac.yaml")) {
    if (d["kind"].as<std::string>() != "ClusterRoleBinding") continue;
    EXPECT_EQ(d["subjects"][0]["name"].as<std::string>(), "edgefd-dra");
    role = d["roleRef"]["name"].as<std::string>();
  }
  YAML::Node cr = Find("rbac.yaml", "ClusterRole", role);
  ASSERT_TRUE(cr);
  std::map<std::string, std::set<std::string>> granted;
  for (const YAML::Node& rule : cr["rules"]) {
    // Named objects only: "apps/daemonsets[edgefd-dra]".
    std::string names;
    for (const YAML::Node& n : rule["resourceNames"]) names += "[" + n.as<std::string>() + "]";
    for (const YAML::Node& g : rule["apiGroups"]) {
      for (const YAML::Node& r : rule["resources"]) {
        for (const YAML::Node& v : rule["verbs"]) {
          granted[g.as<std::string>() + "/" + r.as<std::string>() + names].insert(
              v.as<std::string>());
        }
      }
    }
  }
  using Set = std::set<std::string>;
  EXPECT_EQ(granted,
            (std::map<std::string, Set>{{"resource.k8s.io/resourceslices",
                                         Set{"get", "list", "watch", "create", "update", "delete"}},
                                        {"resource.k8s.io/resourceclaims", Set{"get", "list"}},
                                        {"resource.k8s.io/resourceclaims/status", Set{"update"}},
                                        {"/nodes", Set{"get"}},
                                        {"/events", Set{"create"}},
                                        // --daemonset: is its own DaemonSet being deleted?
                                        {"apps/daemonsets[edgefd-dra]", Set{"get"}}}));
}

TEST(DraManifests, AnAdmissionPolicyKeepsEachNodeToItsOwnSlices) {
  YAML::Node vap = Find("rbac.yaml", "ValidatingAdmissionPolicy", "edgefd-dra-own-node");
  ASSERT_TRUE(vap);
  EXPECT_EQ(vap["spec"]["failurePolicy"].as<std::string>(), "Fail");
  const YAML::Node rule = vap["spec"]["matchConstraints"]["resourceRules"][0];
  EXPECT_EQ(rule["resources"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"resourceslices", "resourceclaims/status"}));
  EXPECT_EQ(rule["operations"].as<std::vector<std::string>>(),
            (std::vector<std::string>{"CREATE", "UPDATE", "DELETE"}));
  EXPECT_THAT(vap["spec"]["matchConditions"][0]["expression"].as<std::string>(),
              HasSubstr("system:serviceaccount:edgefd-system:edgefd-dra"));
  std::string all;
  for (const YAML::Node& v : vap["spec"]["variables"]) all += v["expression"].as<std::string>();
  for (const YAML::Node& v : vap["spec"]["validations"]) all += v["expression"].as<std::string>();
  EXPECT_THAT(all, HasSubstr("authentication.kubernetes.io/node-name"));
  EXPECT_THAT(all, HasSubstr("nodeName"));
  // The pool too: a slice of this node in another node's pool would hide that node's devices.
  EXPECT_THAT(all, HasSubstr("spec.?pool.?name.orValue('') == variables.userNodeName"));
  EXPECT_THAT(all, HasSubstr("oldObject.spec.?pool.?name"));  // an update cannot take one over
  EXPECT_THAT(all, HasSubstr("oldObject"));  // a DELETE is judged by the slice it deletes
  YAML::Node binding = Find("rbac.yaml", "ValidatingAdmissionPolicyBinding", "edgefd-dra-own-node");
  ASSERT_TRUE(binding);
  EXPECT_EQ(binding["spec"]["policyName"].as<std::string>(), "edgefd-dra-own-node");
  EXPECT_EQ(binding["spec"]["validationActions"][0].as<std::string>(), "Deny");
}

TEST(DraManifests, DaemonSetRunsDraModeWithLeastPrivilege) {
  YAML::Node ds = Find("daemonset.yaml", "DaemonSet", "edgefd-dra");
  ASSERT_TRUE(ds);
  YAML::Node pod = ds["spec"]["template"]["spec"];
  EXPECT_EQ(pod["serviceAccountName"].as<std::string>(), "edgefd-dra");
  YAML::Node c = pod["containers"][0];
  std::set<std::string> args;
  for (const auto& a : c["args"]) args.insert(a.as<std::string>());
  for (const char* a : {"--mode=dra", "--root=/host", "--udev", "--cdi-dir=/var/run/cdi",
                        "--kubelet-plugins-dir=/var/lib/kubelet/plugins",
                        "--kubelet-registry-dir=/var/lib/kubelet/plugins_registry",
                        "--pod-resources-socket=/var/lib/kubelet/pod-resources/kubelet.sock"}) {
    EXPECT_TRUE(args.contains(a)) << a;
  }
  EXPECT_EQ(c["env"][0]["name"].as<std::string>(), "NODE_NAME");
  EXPECT_EQ(c["env"][0]["valueFrom"]["fieldRef"]["fieldPath"].as<std::string>(), "spec.nodeName");
  // The real binary accepts every argument the DaemonSet gives it (what it prints is beside the
  // point: the pool of a static inventory, without an API server).
  std::vector<std::string> argv = {::edgefd::testing::DevicePluginBin()};
  for (const auto& a : c["args"]) argv.push_back(a.as<std::string>());
  for (const char* a : {"--print-slices", "--output", "json", "--node-name", "n1", "--inventory"}) {
    argv.push_back(a);
  }
  argv.push_back((::edgefd::testing::TestdataDir() / "dra/rock5b.yaml").string());
  auto run = ::edgefd::testing::RunCommand(argv);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::map<std::string, std::string> host_paths;
  for (const auto& v : pod["volumes"]) {
    host_paths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
  }
  std::map<std::string, bool> writable;  // host path → writable
  for (const auto& m : c["volumeMounts"]) {
    const std::string host = host_paths.at(m["name"].as<std::string>());
    writable[host] = !(m["readOnly"] && m["readOnly"].as<bool>());
    // The kubelet is told the paths the plugin sees: they must be the host's.
    if (host.starts_with("/var/")) {
      EXPECT_EQ(m["mountPath"].as<std::string>(), host);
    }
  }
  EXPECT_EQ(writable, (std::map<std::string, bool>{{"/var/lib/kubelet/plugins_registry", true},
                                                   {"/var/lib/kubelet/plugins/edgefd.io", true},
                                                   {"/var/run/cdi", true},
                                                   {"/sys", false},
                                                   {"/proc/cpuinfo", false},
                                                   {"/run/udev", false},
                                                   {"/var/lib/kubelet/pod-resources", false}}));
  YAML::Node sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>());
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
  EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_FALSE(sc["capabilities"]["add"]);
  // Both DaemonSets use hostNetwork: their metrics ports must differ.
  YAML::Node dp = YAML::LoadFile(::edgefd::testing::ManifestsDir() / "deviceplugin/daemonset.yaml");
  EXPECT_NE(c["ports"][0]["containerPort"].as<int>(),
            dp["spec"]["template"]["spec"]["containers"][0]["ports"][0]["containerPort"].as<int>());
}

TEST(DraManifests, ThePodUsesItsClaimsAndTheTemplatesUseRealClasses) {
  std::set<std::string> classes;
  for (const YAML::Node& c : Docs("deviceclasses.yaml"))
    classes.insert(c["metadata"]["name"].as<std::string>());
  std::set<std::string> templates;
  for (const YAML::Node& d : Docs("example.yaml")) {
    if (d["kind"].as<std::string>() != "ResourceClaimTemplate") continue;
    templates.insert(d["metadata"]["name"].as<std::string>());
    for (const YAML::Node& r : d["spec"]["spec"]["devices"]["requests"]) {
      EXPECT_TRUE(classes.contains(r["exactly"]["deviceClassName"].as<std::string>()));
    }
  }
  EXPECT_EQ(templates, (std::set<std::string>{"one-edgetpu", "two-big-cores"}));
  YAML::Node pod = Find("example.yaml", "Pod", "edgefd-dra-example");
  ASSERT_TRUE(pod);
  std::set<std::string> pod_claims;
  for (const YAML::Node& c : pod["spec"]["resourceClaims"]) {
    EXPECT_TRUE(templates.contains(c["resourceClaimTemplateName"].as<std::string>()));
    pod_claims.insert(c["name"].as<std::string>());
  }
  std::set<std::string> used;
  for (const YAML::Node& c : pod["spec"]["containers"][0]["resources"]["claims"]) {
    used.insert(c["name"].as<std::string>());
  }
  EXPECT_EQ(used, pod_claims);
  EXPECT_THAT(pod["spec"]["containers"][0]["command"][2].as<std::string>(),
              HasSubstr("$EDGEFD_BIG_CPUS"));
}

}  // namespace
}  // namespace edgefd::dra
