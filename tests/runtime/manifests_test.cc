// The pipeline manifests start edgefd-pipeline with options it accepts, chained correctly,
// unprivileged, with probes that time out, and with network policies that let frames in only
// from the stage before.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "run_cli.h"

namespace {

const char* const kPipelineFiles[] = {"conv-pipeline.yaml", "yolo-tiny-pipeline.yaml"};

std::vector<YAML::Node> Load(const char* file) {
  const std::filesystem::path dir = edgefd::testing::ManifestsDir() / "pipeline";
  std::vector<YAML::Node> out;
  for (const YAML::Node& d : YAML::LoadAllFromFile((dir / file).string())) {
    if (d.IsMap()) out.push_back(d);
  }
  return out;
}

std::vector<std::string> Argv(const YAML::Node& container) {
  std::vector<std::string> argv = {container["command"][0].as<std::string>()};
  for (const YAML::Node& a : container["args"]) argv.push_back(a.as<std::string>());
  return argv;
}

std::map<std::string, std::string> Labels(const YAML::Node& map) {
  std::map<std::string, std::string> out;
  for (const auto& kv : map) out[kv.first.as<std::string>()] = kv.second.as<std::string>();
  return out;
}

/// Runs the container's command line with --check appended.
std::string Check(const std::vector<std::string>& argv, int* status) {
  std::string args;
  for (size_t i = 1; i < argv.size(); ++i) args += " '" + argv[i] + "'";
  return edgefd::testing::RunCli(args + " --check", status);
}

TEST(PipelineManifests, EveryContainerStartsWithValidOptionsAndChainsToAService) {
  int deployments = 0;
  for (const char* file : kPipelineFiles) {
    std::map<std::string, bool> services;
    std::vector<std::string> nexts;
    for (const YAML::Node& d : Load(file)) {
      std::string kind = d["kind"].as<std::string>();
      std::string name = d["metadata"]["name"].as<std::string>();
      if (kind == "Service") services[name] = true;
      if (kind != "Deployment") continue;
      ++deployments;
      const YAML::Node c = d["spec"]["template"]["spec"]["containers"][0];
      std::vector<std::string> argv = Argv(c);
      int status = 0;
      std::string out = Check(argv, &status);
      EXPECT_EQ(status, 0) << file << " " << name << ": " << out;
      for (size_t i = 0; i + 1 < argv.size(); ++i) {
        if (argv[i] == "--next") nexts.push_back(argv[i + 1].substr(0, argv[i + 1].find(':')));
      }
      if (argv[1] == "stage") {
        const YAML::Node limits = c["resources"]["limits"];
        EXPECT_TRUE(limits["edgefd.io/big-cpu"]) << name << " requests no big cores";
        EXPECT_TRUE(d["spec"]["template"]["spec"]["nodeSelector"]["edgefd.io/cpu.heterogeneous"])
            << name;
      }
    }
    for (const std::string& n : nexts)
      EXPECT_TRUE(services.count(n)) << file << ": no Service " << n;
  }
  EXPECT_EQ(deployments, 6 + 4);
}

// The labeller's securityContext, in every pipeline pod (issue 12, defect 9).
TEST(PipelineManifests, EveryPodRunsUnprivilegedWithAReadOnlyRoot) {
  for (const char* file : kPipelineFiles) {
    for (const YAML::Node& d : Load(file)) {
      if (d["kind"].as<std::string>() != "Deployment") continue;
      const std::string name = d["metadata"]["name"].as<std::string>();
      const YAML::Node pod = d["spec"]["template"]["spec"];
      EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>(false)) << name;
      // The image's user (Dockerfile: USER 10001:10001), numeric for runAsNonRoot.
      EXPECT_EQ(pod["securityContext"]["runAsUser"].as<int>(0), 10001) << name;
      EXPECT_EQ(pod["securityContext"]["runAsGroup"].as<int>(0), 10001) << name;
      EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"].as<std::string>(""),
                "RuntimeDefault")
          << name;
      EXPECT_FALSE(pod["hostNetwork"].as<bool>(false)) << name;
      std::set<std::string> volumes;
      for (const YAML::Node& v : pod["volumes"]) {
        if (v["emptyDir"]) volumes.insert(v["name"].as<std::string>());
      }
      for (const YAML::Node& c : pod["containers"]) {
        const YAML::Node sc = c["securityContext"];
        EXPECT_FALSE(sc["privileged"].as<bool>(true)) << name;
        EXPECT_FALSE(sc["allowPrivilegeEscalation"].as<bool>(true)) << name;
        EXPECT_TRUE(sc["readOnlyRootFilesystem"].as<bool>(false)) << name;
        ASSERT_TRUE(sc["capabilities"]["drop"].IsSequence()) << name;
        EXPECT_EQ(sc["capabilities"]["drop"][0].as<std::string>(), "ALL") << name;
        // Where the runtime may write with a read-only root: an emptyDir at /tmp.
        bool tmp = false;
        for (const YAML::Node& m : c["volumeMounts"]) {
          tmp |= m["mountPath"].as<std::string>() == "/tmp" &&
                 volumes.count(m["name"].as<std::string>()) > 0;
        }
        EXPECT_TRUE(tmp) << name << " has no writable /tmp";
      }
    }
  }
}

// Who may push (issue 17, point 3): every end of a pipeline reads the same token from that
// pipeline's Secret, mounted read-only, so no other client can push into a stage or take it
// over; and no pod gets a service-account token it never uses.
TEST(PipelineManifests, EveryEndPresentsOrRequiresItsPipelinesTokenAndNoPodMountsAnApiToken) {
  const std::map<std::string, std::string> secrets = {
      {"conv-pipeline.yaml", "conv-pipeline-token"},
      {"yolo-tiny-pipeline.yaml", "yolo-pipeline-token"}};
  for (const char* file : kPipelineFiles) {
    for (const YAML::Node& d : Load(file)) {
      if (d["kind"].as<std::string>() != "Deployment") continue;
      const std::string name = d["metadata"]["name"].as<std::string>();
      const YAML::Node pod = d["spec"]["template"]["spec"];
      EXPECT_FALSE(pod["automountServiceAccountToken"].as<bool>(true)) << name;
      std::map<std::string, std::string> secret_volumes;  // volume -> Secret
      for (const YAML::Node& v : pod["volumes"]) {
        if (v["secret"]) {
          secret_volumes[v["name"].as<std::string>()] = v["secret"]["secretName"].as<std::string>();
        }
      }
      const YAML::Node c = pod["containers"][0];
      const std::vector<std::string> argv = Argv(c);
      std::string token_file;
      for (size_t i = 0; i + 1 < argv.size(); ++i) {
        if (argv[i] == "--token-file") token_file = argv[i + 1];
      }
      ASSERT_FALSE(token_file.empty()) << name << " runs without --token-file";
      std::string from;
      for (const YAML::Node& m : c["volumeMounts"]) {
        const std::string path = m["mountPath"].as<std::string>();
        if (token_file.rfind(path + "/", 0) == 0 &&
            secret_volumes.count(m["name"].as<std::string>())) {
          EXPECT_TRUE(m["readOnly"].as<bool>(false)) << name;
          from = secret_volumes[m["name"].as<std::string>()];
        }
      }
      EXPECT_EQ(from, secrets.at(file)) << name << ": " << token_file << " is not from a Secret";
      // The file is readable by the image's user: group 10001, not world-readable.
      EXPECT_EQ(pod["securityContext"]["fsGroup"].as<int>(0), 10001) << name;
    }
  }
}

// A slow health endpoint must fail its probe rather than hang it (issue 12, defect 3).
TEST(PipelineManifests, EveryProbeHasATimeoutShorterThanItsPeriod) {
  int probes = 0;
  for (const char* file : kPipelineFiles) {
    for (const YAML::Node& d : Load(file)) {
      if (d["kind"].as<std::string>() != "Deployment") continue;
      for (const YAML::Node& c : d["spec"]["template"]["spec"]["containers"]) {
        for (const char* kind : {"readinessProbe", "livenessProbe", "startupProbe"}) {
          const YAML::Node probe = c[kind];
          if (!probe) continue;
          ++probes;
          const int timeout = probe["timeoutSeconds"].as<int>(0);
          EXPECT_GE(timeout, 1) << d["metadata"]["name"] << " " << kind;
          EXPECT_LT(timeout, probe["periodSeconds"].as<int>(10)) << d["metadata"]["name"];
        }
      }
    }
  }
  EXPECT_EQ(probes, 2 * (4 + 2 + 2));  // readiness and liveness on every stage and sink
}

// Frames reach a pod only from the pod whose --next names its Service: one NetworkPolicy per
// pod, and every rule that opens the frames port names exactly the upstream's pods (issue 12,
// defect 2). A pod nobody sends to admits nothing.
TEST(PipelineManifests, EachPodTakesFramesOnlyFromItsUpstream) {
  for (const char* file : kPipelineFiles) {
    const std::vector<YAML::Node> docs = Load(file);
    std::map<std::string, std::map<std::string, std::string>> pods;      // deployment -> labels
    std::map<std::string, std::map<std::string, std::string>> services;  // service -> selector
    std::map<std::string, std::string> next_service;                     // deployment -> service
    std::map<std::string, YAML::Node> policies;                          // name -> policy
    std::set<std::string> probed;                                        // deployments
    for (const YAML::Node& d : docs) {
      const std::string kind = d["kind"].as<std::string>();
      const std::string name = d["metadata"]["name"].as<std::string>();
      if (kind == "Deployment") {
        pods[name] = Labels(d["spec"]["template"]["metadata"]["labels"]);
        const YAML::Node c = d["spec"]["template"]["spec"]["containers"][0];
        if (c["readinessProbe"] || c["livenessProbe"]) probed.insert(name);
        std::vector<std::string> argv = Argv(c);
        for (size_t i = 0; i + 1 < argv.size(); ++i) {
          if (argv[i] == "--next")
            next_service[name] = argv[i + 1].substr(0, argv[i + 1].find(':'));
        }
      } else if (kind == "Service") {
        services[name] = Labels(d["spec"]["selector"]);
      } else if (kind == "NetworkPolicy") {
        policies[name] = d;
      }
    }
    auto selects = [](const std::map<std::string, std::string>& selector,
                      const std::map<std::string, std::string>& labels) {
      for (const auto& [k, v] : selector) {
        auto it = labels.find(k);
        if (it == labels.end() || it->second != v) return false;
      }
      return !selector.empty();
    };
    for (const auto& [pod, labels] : pods) {
      // Its upstreams: the pods whose --next Service selects it.
      std::vector<std::map<std::string, std::string>> upstream;
      for (const auto& [from, service] : next_service) {
        if (services.count(service) && selects(services[service], labels)) {
          upstream.push_back(pods[from]);
        }
      }
      int covering = 0;
      for (const auto& [name, policy] : policies) {
        if (!selects(Labels(policy["spec"]["podSelector"]["matchLabels"]), labels)) continue;
        ++covering;
        bool ingress_type = false;
        for (const YAML::Node& t : policy["spec"]["policyTypes"]) {
          ingress_type |= t.as<std::string>() == "Ingress";
        }
        EXPECT_TRUE(ingress_type) << file << " " << name;
        int frame_rules = 0;
        bool probes_admitted = false;
        for (const YAML::Node& rule : policy["spec"]["ingress"]) {
          bool opens_frames = !rule["ports"];  // no ports: every port
          for (const YAML::Node& p : rule["ports"]) {
            const std::string port = p["port"].as<std::string>("");
            opens_frames |= port == "7000" || port == "frames" || port.empty();
            // The kubelet probes from the node's address: the health port admits anyone.
            probes_admitted |= (port == "9090" || port == "metrics") && !rule["from"];
          }
          if (!opens_frames) continue;
          ++frame_rules;
          ASSERT_TRUE(rule["from"].IsSequence()) << file << " " << name << ": frames from anyone";
          ASSERT_EQ(rule["from"].size(), 1u) << file << " " << name;
          const YAML::Node peer = rule["from"][0];
          EXPECT_FALSE(peer["ipBlock"] || peer["namespaceSelector"]) << file << " " << name;
          ASSERT_EQ(upstream.size(), 1u) << file << " " << pod;
          const auto admitted = Labels(peer["podSelector"]["matchLabels"]);
          for (const auto& [other, other_labels] : pods) {
            EXPECT_EQ(selects(admitted, other_labels), other_labels == upstream[0])
                << file << " " << name << (other_labels == upstream[0] ? " refuses" : " admits")
                << " frames from " << other;
          }
        }
        EXPECT_EQ(frame_rules, upstream.empty() ? 0 : 1) << file << " " << name;
        EXPECT_EQ(probes_admitted, probed.count(pod) > 0)
            << file << " " << name << ": the probes' port must be open exactly where probed";
      }
      EXPECT_EQ(covering, 1) << file << ": " << pod << " is covered by " << covering
                             << " network policies";
    }
  }
}

}  // namespace
