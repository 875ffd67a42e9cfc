#pragma once

// Shared by the DRA suites: the node they play, and a client for a plain-HTTP API server
// stand-in.
#include <gtest/gtest.h>

#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/kube/client.h"
#include "edgefd/testing/fake_apiserver.h"
#include "edgefd/testing/fake_dra_kubelet.h"
#include "edgefd/testing/fed_registry.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"

namespace edgefd::dra::testing {

using ::edgefd::testing::DraInventory;
using ::edgefd::testing::FakeApiServer;
using ::edgefd::testing::FakeDraKubelet;
using ::edgefd::testing::FedRegistry;
using ::edgefd::testing::TempDir;

inline constexpr char kNode[] = "rock5b";

/// A client for a plain-HTTP FakeApiServer.
inline std::unique_ptr<kube::ApiTransport> ClientFor(FakeApiServer& server) {
  kube::KubeConfig config;
  config.server = server.url();
  config.allow_insecure_http = true;
  config.source = "test";
  config.timeout = std::chrono::milliseconds(5000);
  auto client = kube::MakeSharedKubeClient(config);  // as the program: several threads
  EXPECT_TRUE(client.ok()) << client.error().message;
  return client.ok() ? std::move(*client) : nullptr;
}

// Answers each request with the next scripted response and records what was asked.
class ScriptedTransport final : public kube::ApiTransport {
 public:
  struct Request {
    std::string method, path, body, content_type;
  };
  explicit ScriptedTransport(std::deque<kube::ApiResponse> answers)
      : answers_(std::move(answers)) {}
  ::edgefd::Result<kube::ApiResponse> Send(std::string_view method, const std::string& path,
                                           const std::string& body,
                                           std::string_view content_type) override {
    requests.push_back({std::string(method), path, body, std::string(content_type)});
    if (answers_.empty()) return Error{"no more answers"};
    kube::ApiResponse next = answers_.front();
    answers_.pop_front();
    return next;
  }
  std::vector<Request> requests;

 private:
  std::deque<kube::ApiResponse> answers_;
};

/// "" when `r` holds a value, else its message: one string for a test to compare or match.
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r ? std::string() : r.error().message;
}

}  // namespace edgefd::dra::testing
