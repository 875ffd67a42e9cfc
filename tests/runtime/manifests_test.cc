// The pipeline manifests start edgefd-pipeline with options it accepts, chained correctly.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "run_cli.h"

namespace {

/// Runs the container's command line with --check appended.
std::string Check(const std::vector<std::string>& argv, int* status) {
  std::string args;
  for (size_t i = 1; i < argv.size(); ++i) args += " '" + argv[i] + "'";
  return edgefd::testing::RunCli(args + " --check", status);
}

TEST(PipelineManifests, EveryContainerStartsWithValidOptionsAndChainsToAService) {
  const std::filesystem::path dir = edgefd::testing::ManifestsDir() / "pipeline";
  int deployments = 0;
  for (const char* file : {"conv-pipeline.yaml", "yolo-tiny-pipeline.yaml"}) {
    std::vector<YAML::Node> docs = YAML::LoadAllFromFile((dir / file).string());
    std::map<std::string, bool> services;
    std::vector<std::string> nexts;
    for (const YAML::Node& d : docs) {
      if (!d.IsMap()) continue;
      std::string kind = d["kind"].as<std::string>();
      std::string name = d["metadata"]["name"].as<std::string>();
      if (kind == "Service") services[name] = true;
      if (kind != "Deployment") continue;
      ++deployments;
      const YAML::Node c = d["spec"]["template"]["spec"]["containers"][0];
      std::vector<std::string> argv = {c["command"][0].as<std::string>()};
      for (const YAML::Node& a : c["args"]) argv.push_back(a.as<std::string>());
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

}  // namespace
