#pragma once

// The kube and labeller suites' fixture: a TLS API server stand-in with a throw-away PKI, node
// "n1", a token file, and a client configured for both.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <thread>

#include "edgefd/kube/api.h"
#include "edgefd/kube/client.h"
#include "edgefd/testing/fake_apiserver.h"

namespace edgefd::testing {

using kube::ApiResponse;
using kube::ApiTransport;
using kube::InClusterConfig;
using kube::KubeConfig;
using kube::LoadKubeconfig;
using kube::MakeKubeClient;
using kube::MakeSharedKubeClient;
using kube::ParseApiServerUrl;

/// Waits until `pred` holds, re-checking every few milliseconds, for what changes without a
/// notification to wait on (the agent's readiness); false on timeout.
inline bool WaitUntil(const std::function<bool()>& pred,
                      std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

/// A TLS API server with node "n1", a token file and a client configured for both.
class KubeTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (pki_ == nullptr) {
      auto pki = TestPki::Create(MakeTempDir("edgefd-pki"));
      ASSERT_TRUE(pki.ok()) << pki.error().message;
      pki_ = new TestPki(*pki);
    }
  }

  void SetUp() override {
    dir_ = MakeTempDir("edgefd-kube");
    server_ = std::make_unique<FakeApiServer>(
        FakeApiServer::Options{pki_->server_cert, pki_->server_key, pki_->ca_cert});
    server_->SetToken("token-1");
    WriteFile(dir_ / "token", "token-1\n");
    server_->AddNode("n1", {{"kubernetes.io/hostname", "n1"}, {"kubernetes.io/arch", "arm64"}});
  }

  KubeConfig Config() const {
    KubeConfig c;
    c.server = server_->url();
    c.ca_pem = ReadFile(pki_->ca_cert);
    c.token_file = dir_ / "token";
    c.source = "test";
    c.timeout = std::chrono::milliseconds(2000);
    return c;
  }

  std::unique_ptr<ApiTransport> Client(const KubeConfig& config) {
    auto client = MakeKubeClient(config);
    EXPECT_TRUE(client.ok()) << client.error().message;
    return client.ok() ? std::move(*client) : nullptr;
  }
  std::unique_ptr<ApiTransport> Client() { return Client(Config()); }

  static inline TestPki* pki_ = nullptr;
  std::filesystem::path dir_;
  std::unique_ptr<FakeApiServer> server_;
};

}  // namespace edgefd::testing
