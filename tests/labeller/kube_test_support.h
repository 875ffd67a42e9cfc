#pragma once

// Shared pieces of the kube_*_test.cc suites: the kube suite's TLS API server fixture
// (tests/kube/kube_fixture.h), the labeller's parts wired as in the daemon, a ChangeSource the
// test fires, and a sink observer to wait on.
#include <gtest/gtest.h>

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "../kube/kube_fixture.h"
#include "edgefd/agent/reconcile.h"
#include "edgefd/testing/fake_apiserver.h"

namespace edgefd::testing {

/// What discovery reports; tests change it as if hardware were plugged in.
class Hardware {
 public:
  explicit Hardware(Labels labels) : labels_(std::move(labels)) {}
  void Set(Labels labels) {
    std::lock_guard lock(mu_);
    labels_ = std::move(labels);
  }
  Agent::DiscoverFn Discover() {
    return [this]() -> Result<Labels> {
      std::lock_guard lock(mu_);
      return labels_;
    };
  }

 private:
  std::mutex mu_;
  Labels labels_;
};

/// Passes Apply through and lets the test wait for outcomes.
class ObservedSink final : public LabelSink {
 public:
  explicit ObservedSink(LabelSink& inner) : inner_(inner) {}
  ApplyOutcome Apply(const Labels& wanted) override {
    ApplyOutcome out = inner_.Apply(wanted);
    std::lock_guard lock(mu_);
    (out.ok() ? successes_ : failures_)++;
    cv_.notify_all();
    return out;
  }
  bool WaitFor(int successes, int failures,
               std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout,
                        [&] { return successes_ >= successes && failures_ >= failures; });
  }

 private:
  LabelSink& inner_;
  std::mutex mu_;
  std::condition_variable cv_;
  int successes_ = 0;
  int failures_ = 0;
};

/// KubeTest with a kubeconfig file for the labeller's command line (`kubeconfig_`, the token
/// from `dir_/token`).
class KubeconfigTest : public KubeTest {
 protected:
  void SetUp() override {
    KubeTest::SetUp();
    kubeconfig_ = dir_ / "kubeconfig";
    WriteFile(kubeconfig_,
              KubeconfigYaml(server_->url(), ReadFile(pki_->ca_cert), "    tokenFile: token\n"));
  }

  std::filesystem::path kubeconfig_;
};

/// Runs Agent::Run on a thread for the scope's lifetime.
class RunningAgent {
 public:
  RunningAgent(Agent& agent, ChangeSource* source)
      : agent_(agent), thread_([this, source] { (void)agent_.Run(source); }) {}
  ~RunningAgent() {
    agent_.Stop();
    thread_.join();
  }

 private:
  Agent& agent_;
  std::thread thread_;
};

/// Fast retries so fault tests finish quickly.
inline Agent::Options FastAgentOptions() {
  Agent::Options o;
  o.backoff.initial = std::chrono::milliseconds(5);
  o.backoff.max = std::chrono::milliseconds(50);
  o.resync = std::chrono::hours(1);
  o.once_attempts = 20;
  return o;
}

/// The labeller's parts wired as in the daemon: a client, a NodeLabeller, the hardware's
/// labels and an Agent over them.
struct Rig {
  Rig(std::unique_ptr<ApiTransport> client, Labels labels, const std::string& node = "n1",
      Agent::Options options = FastAgentOptions())
      : api(std::move(client)),
        labeller(*api, node, &metrics),
        hw(std::move(labels)),
        agent(hw.Discover(), labeller, metrics, options) {}

  std::unique_ptr<ApiTransport> api;
  AgentMetrics metrics;
  NodeLabeller labeller;
  Hardware hw;
  Agent agent;
};

}  // namespace edgefd::testing
