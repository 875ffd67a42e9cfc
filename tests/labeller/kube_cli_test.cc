// edgefd-labeller without --dry-run, run as a process against the test API server.
#include <cpprest/asyncrt_utils.h>
#include <cpprest/http_client.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <sstream>

#include "kube_test_support.h"

extern char** environ;

namespace edgefd::testing {
namespace {

namespace fs = std::filesystem;

const fs::path kJetsonRoot = fs::path(EDGEFD_TESTDATA_DIR) / "roots/jetson-nano-blog";

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

class KubeCliTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    std::string ca = ReadFile(pki_->ca_cert);
    kubeconfig_ = dir_ / "kubeconfig";
    WriteFile(
        kubeconfig_,
        "apiVersion: v1\nkind: Config\ncurrent-context: edge\n"
        "contexts:\n- name: edge\n  context: {cluster: c1, user: u1}\n"
        "clusters:\n- name: c1\n  cluster:\n    server: " +
            server_->url() + "\n    certificate-authority-data: " +
            utility::conversions::to_base64(std::vector<unsigned char>(ca.begin(), ca.end())) +
            "\nusers:\n- name: u1\n  user:\n    tokenFile: token\n");
  }

  CliResult Run(const std::string& args) {
    CliResult r;
    std::string cmd = std::string(EDGEFD_LABELLER_BIN) + " " + args + " >" +
                      (dir_ / "out").string() + " 2>" + (dir_ / "err").string();
    int status = std::system(cmd.c_str());
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.out = ReadFile(dir_ / "out");
    r.err = ReadFile(dir_ / "err");
    return r;
  }

  // The labels the dry run prints for the fixture root.
  Labels DryRunLabels() {
    CliResult r = Run("--dry-run --root " + kJetsonRoot.string());
    EXPECT_EQ(r.exit_code, 0) << r.err;
    Labels labels;
    std::istringstream in(r.out);
    for (std::string line; std::getline(in, line);) {
      size_t eq = line.find('=');
      if (eq != std::string::npos) labels[line.substr(0, eq)] = line.substr(eq + 1);
    }
    return labels;
  }

  fs::path kubeconfig_;
};

TEST_F(KubeCliTest, OnceLabelsTheNodeWithWhatTheDryRunPrints) {
  Labels expected = DryRunLabels();
  ASSERT_FALSE(expected.empty());
  expected.insert({{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/arch", "arm64"}});
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1"), expected);
  EXPECT_EQ(server_->Count("PATCH"), 1u);

  // A second run (a restarted pod) finds nothing to do.
  r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
          kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->Count("PATCH"), 1u);
  EXPECT_EQ(server_->NodeLabels("n1"), expected);
}

TEST_F(KubeCliTest, NodeNameComesFromTheEnvironment) {
  setenv("NODE_NAME", "n1", 1);
  CliResult r =
      Run("--once --kubeconfig " + kubeconfig_.string() + " --root " + kJetsonRoot.string());
  unsetenv("NODE_NAME");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(server_->NodeLabels("n1").count("edgefd.io/board"), 1u);
}

TEST_F(KubeCliTest, BadKubeconfigIsUsageErrorNamingTheFile) {
  WriteFile(dir_ / "broken", "current-context: x\n");
  CliResult r = Run("--once --kubeconfig " + (dir_ / "broken").string() + " --node-name n1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find((dir_ / "broken").string()), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);
}

TEST_F(KubeCliTest, MissingDtbIsUsageErrorBeforeAnyRequest) {
  CliResult r = Run("--kubeconfig " + kubeconfig_.string() + " --node-name n1 --dtb " +
                    (dir_ / "absent.dtb").string());
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("absent.dtb"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);
}

TEST_F(KubeCliTest, RejectedTokenFailsWithAClearMessage) {
  WriteFile(dir_ / "token", "wrong\n");
  CliResult r = Run("--once --kubeconfig " + kubeconfig_.string() + " --node-name n1 --root " +
                    kJetsonRoot.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("401"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("credentials"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Count("PATCH"), 0u);
}

TEST_F(KubeCliTest, OutsideAClusterWithoutKubeconfigSaysWhatToDo) {
  unsetenv("KUBERNETES_SERVICE_HOST");
  CliResult r = Run("--once --node-name n1");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--kubeconfig"), std::string::npos) << r.err;
}

TEST_F(KubeCliTest, BadOptionValuesAreRejected) {
  EXPECT_EQ(Run("--resync 0").exit_code, 2);
  EXPECT_EQ(Run("--resync soon").exit_code, 2);
  EXPECT_EQ(Run("--output json").exit_code, 2);
  CliResult r =
      Run("--kubeconfig " + kubeconfig_.string() + " --node-name n1 --metrics-addr nonsense");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("--metrics-addr 'nonsense'"), std::string::npos) << r.err;
  EXPECT_EQ(server_->Requests().size(), 0u);  // refused before labelling anything
}

TEST_F(KubeCliTest, NfdOutputWritesTheFeatureFile) {
  Labels expected = DryRunLabels();
  fs::path file = dir_ / "features.d" / "edgefd";
  CliResult r =
      Run("--once --output nfd --nfd-file " + file.string() + " --root " + kJetsonRoot.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string want;
  for (const auto& [k, v] : expected) want += k + "=" + v + "\n";
  EXPECT_EQ(ReadFile(file), want);
  EXPECT_EQ(server_->Requests().size(), 0u);  // NFD mode never talks to the API server
}

TEST_F(KubeCliTest, DaemonLabelsRepairsServesHealthAndStopsCleanlyOnSigterm) {
  std::vector<std::string> args = {EDGEFD_LABELLER_BIN,  "--kubeconfig", kubeconfig_.string(),
                                   "--node-name",        "n1",           "--root",
                                   kJetsonRoot.string(), "--resync",     "1",
                                   "--metrics-addr",     "127.0.0.1:0"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const fs::path err = dir_ / "daemon.err";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);

  auto labelled = [&] { return server_->NodeLabels("n1").count("edgefd.io/board") == 1; };
  bool converged = server_->WaitFor(labelled);
  bool repaired = false;
  std::string readyz, metrics;
  if (converged) {
    EXPECT_EQ(server_->ForeignPatch("n1", R"({"metadata":{"labels":{"edgefd.io/board":null}}})"),
              200);
    repaired = server_->WaitFor(labelled);  // the 1 s resync puts it back
    // The health endpoint started before the first reconcile and logged its port.
    std::string log = ReadFile(err);
    const std::string marker = "/metrics on port ";
    size_t at = log.find(marker);
    EXPECT_NE(at, std::string::npos) << log;
    if (at != std::string::npos) {
      web::http::client::http_client client(
          "http://127.0.0.1:" + std::to_string(std::stoi(log.substr(at + marker.size()))));
      auto get = [&](const std::string& path) {
        auto r = client.request(web::http::methods::GET, path).get();
        return std::to_string(r.status_code()) + " " + r.extract_utf8string(true).get();
      };
      readyz = get("/readyz");
      metrics = get("/metrics");
    }
  }
  kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(converged);
  EXPECT_TRUE(repaired);
  EXPECT_EQ(readyz.substr(0, 3), "200") << readyz;
  // 2 patches (label, repair); the second may still be on its way back to the agent.
  EXPECT_TRUE(metrics.find("\nedgefd_node_patches_total 2\n") != std::string::npos ||
              metrics.find("\nedgefd_node_patches_total 1\n") != std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("\nedgefd_ready 1\n"), std::string::npos) << metrics;
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << ReadFile(err);
}

}  // namespace
}  // namespace edgefd::testing
