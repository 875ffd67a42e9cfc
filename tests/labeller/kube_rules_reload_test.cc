// Rules reload without a restart: edgefd-labeller as the DaemonSet runs it, its rules file in a
// ConfigMap volume laid out as the kubelet lays it out, against the test API server. A new
// version of the ConfigMap changes the labels; a broken one keeps the old rules, says where it
// is broken, counts it and tells the cluster in an Event on the Node.
#include <gtest/gtest.h>

#include "edgefd/common/json.h"
#include "edgefd/testing/http.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"
#include "kube_test_support.h"

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;

const char kTegraRules[] = R"(rules:
  - name: tegra-gpu
    match:
      - compatible: ["nvidia,gm20b"]
)";
const char kMaxwellRules[] = R"(rules:
  - name: maxwell-gpu
    match:
      - compatible: ["nvidia,gm20b"]
)";

class RulesReloadTest : public KubeconfigTest {
 protected:
  bool HasLabel(const std::string& name) { return server_->NodeLabels("n1").count(name) == 1; }

  // The reasons of the Events posted about the Node so far.
  std::vector<std::string> EventReasons() {
    std::vector<std::string> out;
    for (const auto& r : server_->Requests()) {
      if (r.method != "POST" || !r.path.ends_with("/events")) continue;
      Json event = ParseJsonOrNull(r.body);
      if (StringAt(event, "/involvedObject/name") == "n1")
        out.push_back(StringAt(event, "/reason"));
    }
    return out;
  }
};

TEST_F(RulesReloadTest, AConfigMapUpdateRelabelsAndABrokenOneKeepsTheOldRules) {
  ProjectedVolume volume(dir_ / "rules");
  volume.Publish({{"rules.yaml", kTegraRules}});
  Child daemon({LabellerBin(), "--kubeconfig", kubeconfig_.string(), "--node-name", "n1", "--root",
                (TestdataDir() / "roots/jetson-nano-blog").string(), "--config",
                (volume.path() / "rules.yaml").string(), "--metrics-addr", "127.0.0.1:0"});
  ASSERT_TRUE(daemon.started());
  ASSERT_TRUE(server_->WaitFor([&] { return HasLabel("edgefd.io/accel.tegra-gpu"); }))
      << daemon.err();

  // A new version of the ConfigMap: the rule's new name replaces the old label (no resync:
  // the default is 5 minutes, so only the rules watcher can have done it).
  volume.Publish({{"rules.yaml", kMaxwellRules}});
  EXPECT_TRUE(server_->WaitFor([&] {
    return HasLabel("edgefd.io/accel.maxwell-gpu") && !HasLabel("edgefd.io/accel.tegra-gpu");
  })) << daemon.err();
  EXPECT_TRUE(server_->WaitFor([&] {
    auto reasons = EventReasons();
    return std::count(reasons.begin(), reasons.end(), "RulesReloaded") == 1;
  }));

  // A broken version: the labels stay, the error names file, line and key.
  volume.Publish({{"rules.yaml", "rules:\n  - name: maxwell-gpu\n    matchs: {}\n"}});
  EXPECT_TRUE(daemon.WaitFor([](const std::string&, const std::string& err) {
    return err.find("rules not reloaded") != std::string::npos;
  })) << daemon.err();
  EXPECT_NE(daemon.err().find("rules.yaml:3: rule 'maxwell-gpu': unknown key 'matchs'"),
            std::string::npos)
      << daemon.err();
  EXPECT_TRUE(server_->WaitFor([&] {
    auto reasons = EventReasons();
    return std::count(reasons.begin(), reasons.end(), "RulesRejected") == 1;
  }));
  EXPECT_TRUE(HasLabel("edgefd.io/accel.maxwell-gpu"));

  const std::string marker = "/metrics on port ";
  std::string metrics;
  if (size_t at = daemon.err().find(marker); at != std::string::npos) {
    auto port = static_cast<uint16_t>(std::stoi(daemon.err().substr(at + marker.size())));
    metrics = HttpGet(port, "/metrics");
  }
  EXPECT_NE(metrics.find("\nedgefd_rules_reload_errors_total 1\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nedgefd_rules_generation 2\n"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("\nedgefd_rules_stale 1\n"), std::string::npos) << metrics;

  // The ConfigMap's volume gone (deleted with its directory): the old rules stay, it says so.
  fs::remove_all(volume.path());
  EXPECT_TRUE(daemon.WaitFor([](const std::string&, const std::string& err) {
    return err.find("rules not reloaded") != err.rfind("rules not reloaded");
  })) << daemon.err();
  EXPECT_TRUE(HasLabel("edgefd.io/accel.maxwell-gpu"));
  EXPECT_EQ(daemon.Terminate(), 0) << daemon.err();
}

}  // namespace
}  // namespace edgefd::testing
