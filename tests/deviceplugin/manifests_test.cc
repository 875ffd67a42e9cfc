// The deployment manifests say what the device plugin needs, and no more.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <string>

#include "edgefd/testing/paths.h"

namespace edgefd::deviceplugin {
namespace {

const std::string kDir = (testing::ManifestsDir() / "deviceplugin").string() + "/";

// The host paths a pod's first container mounts: host path → its volumeMount. Every volume
// must be a hostPath.
std::map<std::string, YAML::Node> HostMounts(const YAML::Node& pod) {
  std::map<std::string, std::string> host_paths;
  for (const YAML::Node& v : pod["volumes"]) {
    EXPECT_TRUE(v["hostPath"]) << v["name"].as<std::string>() << ": only host paths expected";
    if (v["hostPath"]) {
      host_paths[v["name"].as<std::string>()] = v["hostPath"]["path"].as<std::string>();
    }
  }
  std::map<std::string, YAML::Node> mounts;
  for (const YAML::Node& m : pod["containers"][0]["volumeMounts"]) {
    mounts.emplace(host_paths.at(m["name"].as<std::string>()), m);
  }
  return mounts;
}

// uid 0 for the root-owned directories and sockets it must use, but no capability at all, no
// privilege escalation, no host PID or IPC namespace, a read-only root, seccomp, and probes.
void ExpectUidZeroWithoutPrivileges(const YAML::Node& pod) {
  EXPECT_FALSE(pod["hostPID"].as<bool>(false));
  EXPECT_FALSE(pod["hostIPC"].as<bool>(false));
  YAML::Node c = pod["containers"][0];
  YAML::Node sc = c["securityContext"];
  EXPECT_FALSE(sc["privileged"].as<bool>());
  EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>());
  EXPECT_EQ(sc["seccompProfile"]["type"].as<std::string>(""), "RuntimeDefault");
  EXPECT_EQ(sc["capabilities"]["drop"].size(), 1u);
  EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL");
  EXPECT_FALSE(sc["capabilities"]["add"]);
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
}

std::set<std::string> Args(const YAML::Node& container) {
  std::set<std::string> args;
  for (const auto& a : container["args"]) args.insert(a.as<std::string>());
  return args;
}

TEST(Manifests, DaemonSetMountsOnlyWhatThePluginReadsWithLeastPrivilege) {
  YAML::Node ds = YAML::LoadFile(kDir + "daemonset.yaml");
  ASSERT_EQ(ds["kind"].as<std::string>(), "DaemonSet");
  YAML::Node pod = ds["spec"]["template"]["spec"];
  YAML::Node c = pod["containers"][0];
  std::map<std::string, YAML::Node> mounts = HostMounts(pod);
  // Exactly what it reads (with the DRA driver's checkpoint: one allocation record per node),
  // and the directory its sockets go in. No /dev: device paths come from udev, and the kubelet
  // gives containers their nodes.
  std::set<std::string> paths;
  for (const auto& [path, m] : mounts) paths.insert(path);
  EXPECT_EQ(paths,
            (std::set<std::string>{"/var/lib/kubelet/device-plugins", "/sys", "/proc/cpuinfo",
                                   "/run/udev", "/var/lib/kubelet/plugins/edgefd.io"}));
  // The checkpoint is read where the kubelet-side path says, so the flag and the mount agree.
  EXPECT_EQ(mounts.at("/var/lib/kubelet/plugins/edgefd.io")["mountPath"].as<std::string>(),
            "/var/lib/kubelet/plugins/edgefd.io");
  for (const auto& [path, m] : mounts) {
    if (path == "/var/lib/kubelet/device-plugins") {
      EXPECT_FALSE(m["readOnly"] && m["readOnly"].as<bool>()) << "it creates its sockets here";
    } else {
      EXPECT_TRUE(m["readOnly"] && m["readOnly"].as<bool>()) << path;
    }
  }
  // /sys has submounts (configfs, debugfs, tracefs, cgroup): read-only too.
  // IfPossible, not Enabled: containerd 1.7 (k3s) cannot do it, and Enabled stops the pod.
  EXPECT_EQ(mounts.at("/sys")["recursiveReadOnly"].as<std::string>(""), "IfPossible");
  // uid 0 for the kubelet's root-owned directory and socket, but no capability at all.
  ExpectUidZeroWithoutPrivileges(pod);
  std::set<std::string> args = Args(c);
  EXPECT_TRUE(args.contains("--root=/host"));
  EXPECT_TRUE(args.contains("--udev"));
  EXPECT_TRUE(args.contains("--metrics-addr=:9479"));
  EXPECT_TRUE(args.contains("--dra-checkpoint=/var/lib/kubelet/plugins/edgefd.io/checkpoint.json"));
}

TEST(Manifests, NriDaemonSetReadsOnlyTheSocketTheOnlineCoresAndTheCpuManagerState) {
  YAML::Node k = YAML::LoadFile(kDir + "kustomization.yaml");
  std::set<std::string> resources;
  for (const auto& r : k["resources"]) resources.insert(r.as<std::string>());
  EXPECT_TRUE(resources.contains("nri-daemonset.yaml")) << "kubectl apply -k deploys edgefd-nri";
  YAML::Node ds = YAML::LoadFile(kDir + "nri-daemonset.yaml");
  ASSERT_EQ(ds["kind"].as<std::string>(), "DaemonSet");
  EXPECT_EQ(ds["metadata"]["name"].as<std::string>(), "edgefd-nri");
  YAML::Node pod = ds["spec"]["template"]["spec"];
  YAML::Node c = pod["containers"][0];
  EXPECT_EQ(c["command"][0].as<std::string>(), "edgefd-nri");
  // The runtime's socket directory, the online cores, the kubelet's CPU manager policy, the
  // allocation record (PodResources socket, DRA checkpoint): all read-only, and not the
  // kubelet's directory (pods' secrets live there).
  std::map<std::string, YAML::Node> mounts = HostMounts(pod);
  std::set<std::string> paths;
  for (const auto& [path, m] : mounts) {
    paths.insert(path);
    EXPECT_TRUE(m["readOnly"] && m["readOnly"].as<bool>()) << path;
  }
  EXPECT_EQ(paths, (std::set<std::string>{
                       "/var/run/nri", "/sys", "/var/lib/kubelet/cpu_manager_state",
                       "/var/lib/kubelet/pod-resources", "/var/lib/kubelet/plugins/edgefd.io"}));
  // The allocation record is where the defaults under --kubelet-dir look for it.
  EXPECT_EQ(mounts.at("/var/lib/kubelet/pod-resources")["mountPath"].as<std::string>(),
            "/var/lib/kubelet/pod-resources");
  EXPECT_EQ(mounts.at("/var/lib/kubelet/plugins/edgefd.io")["mountPath"].as<std::string>(),
            "/var/lib/kubelet/plugins/edgefd.io");
  // IfPossible, not Enabled: containerd 1.7 (k3s) cannot do it, and Enabled stops the pod.
  EXPECT_EQ(mounts.at("/sys")["recursiveReadOnly"].as<std::string>(""), "IfPossible");
  // The flags name what is mounted where.
  std::set<std::string> args = Args(c);
  EXPECT_EQ(mounts.at("/var/run/nri")["mountPath"].as<std::string>(), "/var/run/nri");
  EXPECT_TRUE(args.contains("--socket=/var/run/nri/nri.sock"));
  EXPECT_EQ(mounts.at("/sys")["mountPath"].as<std::string>(), "/host/sys");
  EXPECT_TRUE(args.contains("--root=/host"));
  EXPECT_EQ(mounts.at("/var/lib/kubelet/cpu_manager_state")["mountPath"].as<std::string>(),
            "/var/lib/kubelet/cpu_manager_state");
  EXPECT_TRUE(args.contains("--kubelet-dir=/var/lib/kubelet"));
  EXPECT_TRUE(args.contains("--policy=exclusive"));
  EXPECT_TRUE(args.contains("--metrics-addr=:9481"));
  // It talks to the runtime over the socket only: no host network, no API server token.
  EXPECT_FALSE(pod["hostNetwork"].as<bool>(false));
  EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>(true));
  ExpectUidZeroWithoutPrivileges(pod);
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

// A runtime without recursive read-only mounts (containerd 1.7, as k3s ships it) refuses to
// start a pod whose mount says `recursiveReadOnly: Enabled`; IfPossible starts it read-only.
TEST(Manifests, NoManifestRequiresRecursiveReadOnlyMounts) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(testing::ManifestsDir())) {
    if (entry.path().extension() != ".yaml") continue;
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(text.find("recursiveReadOnly: Enabled"), std::string::npos) << entry.path();
    checked += text.find("recursiveReadOnly: IfPossible") != std::string::npos;
  }
  EXPECT_GE(checked, 3);  // the device plugin, DRA and NRI DaemonSets
}

}  // namespace
}  // namespace edgefd::deviceplugin
