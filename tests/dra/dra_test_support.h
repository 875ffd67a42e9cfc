#pragma once

// Shared by the DRA suites: the node they play, and a client for a plain-HTTP API server
// stand-in.
#include <gtest/gtest.h>

#include <memory>
#include <string>

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

/// "" when `r` holds a value, else its message: one string for a test to compare or match.
template <typename T>
std::string ErrorOf(const Result<T>& r) {
  return r ? std::string() : r.error().message;
}

}  // namespace edgefd::dra::testing
