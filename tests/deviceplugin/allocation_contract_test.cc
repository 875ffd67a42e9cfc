// The allocation contract end to end: what the plugin's Allocate answers is what the runtime
// reads. The plugin runs in this process against the kubelet stand-in; its answer becomes the
// environment of the real edgefd-pipeline, whose --json report says what it used.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sched.h>

#include <map>
#include <string>
#include <vector>

#include "edgefd/common/allocation.h"
#include "edgefd/common/json.h"
#include "edgefd/deviceplugin/plugin_server.h"
#include "edgefd/deviceplugin/registry.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/paths.h"
#include "edgefd/testing/process.h"

namespace edgefd::deviceplugin {
namespace {

using ::testing::ElementsAre;
using testing::FakeKubelet;
using ::testing::Pair;
using testing::TempDir;

std::vector<int> AllowedCpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  std::vector<int> out;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) out.push_back(c);
    }
  }
  return out;
}

// A node whose big and little cores are two CPUs this process may use, with two Coral sticks
// whose device nodes are files in `dev`.
Inventory NodeWith(int big, int little, const TempDir& dev) {
  Inventory inv;
  for (int cpu : {little, big}) {
    CpuCore core;
    core.id = cpu;
    core.cluster = cpu == big ? 1 : 0;
    inv.cpu.cores.push_back(core);
  }
  inv.cpu.classes.push_back({"big", "cortex-a76", {big}, 2400, 1024});
  inv.cpu.classes.push_back({"little", "cortex-a55", {little}, 1800, 400});
  for (int i = 0; i < 2; ++i) {
    Device d;
    d.rule = "edgetpu";
    d.id = "0000:0" + std::to_string(i + 1) + ":00.0";
    d.subsystem = "pci";
    d.devnodes = {dev.Write("apex_" + std::to_string(i), "").string()};
    d.resource = true;
    inv.devices.push_back(d);
  }
  return inv;
}

class AllocationContract : public ::testing::Test {
 protected:
  void SetUp() override {
    std::vector<int> cpus = AllowedCpus();
    if (cpus.size() < 2) GTEST_SKIP() << "needs two CPUs to allocate a big and a little one";
    big_ = cpus[1];
    little_ = cpus[0];
    registry_.Update(NodeWith(big_, little_, dev_));
    ASSERT_TRUE(kubelet_.Start());
    PluginServerOptions options;
    options.kubelet_dir = sockets_.path();
    server_ = std::make_unique<PluginServer>(registry_, options, nullptr);
    ASSERT_TRUE(server_->Start());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  // What the kubelet would put into the container's environment for `resource` and `ids`.
  std::map<std::string, std::string> Allocate(const std::string& resource,
                                              const std::vector<std::string>& ids) {
    EXPECT_TRUE(kubelet_.WaitFor(resource, [](const auto& ep) { return !ep.lists.empty(); }));
    v1beta1::AllocateRequest request;
    auto* container = request.add_container_requests();
    for (const std::string& id : ids) container->add_devices_ids(id);
    v1beta1::AllocateResponse response;
    grpc::ClientContext context;
    grpc::Status status = kubelet_.Dial(resource)->Allocate(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    if (response.container_responses_size() != 1) return {};
    const auto& envs = response.container_responses(0).envs();
    return {envs.begin(), envs.end()};
  }

  // The environment of a container given every resource of the node.
  std::vector<std::string> ContainerEnvironment() {
    std::vector<std::string> env;
    for (const auto& [resource, ids] :
         std::vector<std::pair<std::string, std::vector<std::string>>>{
             {"edgefd.io/big-cpu", {"cpu" + std::to_string(big_)}},
             {"edgefd.io/little-cpu", {"cpu" + std::to_string(little_)}},
             {"edgefd.io/edgetpu", {"0000:02:00.0", "0000:01:00.0"}}}) {
      for (const auto& [name, value] : Allocate(resource, ids)) env.push_back(name + "=" + value);
    }
    return env;
  }

  int big_ = -1, little_ = -1;
  TempDir dev_, sockets_;
  InventoryRegistry registry_;
  FakeKubelet kubelet_{sockets_.path()};
  std::unique_ptr<PluginServer> server_;
};

TEST_F(AllocationContract, TheContractReaderGetsWhatAllocateSet) {
  auto stated = ParseAllocationEnv(ContainerEnvironment());
  ASSERT_TRUE(stated.ok()) << stated.error().message;
  EXPECT_THAT(stated->cpus,
              ElementsAre(Pair("big", ElementsAre(big_)), Pair("little", ElementsAre(little_))));
  EXPECT_THAT(stated->devices,
              ElementsAre(Pair("EDGETPU", ElementsAre("0000:01:00.0", "0000:02:00.0"))));
  EXPECT_THAT(stated->devnodes,
              ElementsAre(Pair("EDGETPU", ElementsAre(dev_ / "apex_0", dev_ / "apex_1"))));
}

TEST_F(AllocationContract, TheRuntimePinsToAndOpensWhatAllocateGaveIt) {
  auto run = testing::RunCommand({testing::PipelineBin(), "run", "--model", "conv", "--width", "32",
                                  "--height", "32", "--frames", "2", "--json"},
                                 ContainerEnvironment());
  ASSERT_EQ(run.exit_code, 0) << run.err;
  auto report = ParseJson(run.out, "edgefd-pipeline run --json");
  ASSERT_TRUE(report.ok()) << report.error().message;
  EXPECT_EQ((*report)["compute_cpus"], Json::array({big_}));
  EXPECT_EQ((*report)["io_cpus"], Json::array({little_}));
  EXPECT_EQ((*report)["pinned"], true);
  const Json& devices = (*report)["devices"];
  ASSERT_EQ(devices.size(), 2u) << run.out;
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(devices[i]["resource"], "EDGETPU");
    EXPECT_EQ(devices[i]["id"], "0000:0" + std::to_string(i + 1) + ":00.0");
    EXPECT_EQ(devices[i]["path"], dev_ / ("apex_" + std::to_string(i)));
    EXPECT_EQ(devices[i]["opened"], true) << devices[i]["error"];
  }
}

}  // namespace
}  // namespace edgefd::deviceplugin
