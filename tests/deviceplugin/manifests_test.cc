// The deployment manifests say what the device plugin needs, and no more.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>

#include "edgefd/testing/paths.h"

namespace edgefd::deviceplugin {
namespace {

const std::string kDir = (testing::ManifestsDir() / "deviceplugin").string() + "/";

TEST(Manifests, DaemonSetMountsWhatThePluginNeedsWithLeastPrivilege) {
  YAML::Node ds = YAML::LoadFile(kDir + "daemonset.yaml");
  ASSERT_EQ(ds["kind"].as<std::string>(), "DaemonSet");
  YAML::Node pod = ds["spec"]["template"]["spec"];
  std::map<std::string, std::string> host_paths;
  for (const auto& v : pod["volumes"]) {
    host_paths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
  }
  YAML::Node c = pod["containers"][0];
  std::map<std::string, bool> mounts;  // host path → read-only
  for (const auto& m : c["volumeMounts"]) {
    mounts[host_paths.at(m["name"].as<std::string>())] = m["readOnly"] && m["readOnly"].as<bool>();
  }
  EXPECT_EQ(mounts.at("/var/lib/kubelet/device-plugins"), false);
  EXPECT_EQ(mounts.at("/sys"), true);
  EXPECT_EQ(mounts.at("/run/udev"), true);
  EXPECT_EQ(mounts.at("/dev"), true);
  YAML::Node sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>());
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
  EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_FALSE(sc["capabilities"]["add"]);
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  std::set<std::string> args;
  for (const auto& a : c["args"]) args.insert(a.as<std::string>());
  EXPECT_TRUE(args.contains("--root=/host"));
  EXPECT_TRUE(args.contains("--udev"));
  EXPECT_TRUE(args.contains("--metrics-addr=:9479"));
}

TEST(Manifests, ExamplePodRequestsTwoLittleCoresAndAnAccelerator) {
  YAML::Node pod = YAML::LoadFile(kDir + "example-pod.yaml");
  YAML::Node limits = pod["spec"]["containers"][0]["resources"]["limits"];
  EXPECT_EQ(limits["edgefd.io/little-cpu"].as<int>(), 2);
  EXPECT_EQ(limits["edgefd.io/movidius-ncs"].as<int>(), 1);
  // It shows the IDs and lists the nodes by the paths the plugin names.
  std::string script;
  for (const auto& part : pod["spec"]["containers"][0]["command"]) script += part.as<std::string>();
  EXPECT_NE(script.find("$EDGEFD_MOVIDIUS_NCS_DEVICES"), std::string::npos) << script;
  EXPECT_NE(script.find("ls -l \"$d\""), std::string::npos) << script;
  EXPECT_NE(script.find("\"$EDGEFD_MOVIDIUS_NCS_DEVNODES\" | tr , ' '"), std::string::npos)
      << script;
}

}  // namespace
}  // namespace edgefd::deviceplugin
