// The device plugin against a kubelet stand-in over real gRPC on unix sockets.
#include "edgefd/deviceplugin/plugin_server.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "edgefd/deviceplugin/feed.h"
#include "edgefd/deviceplugin/service.h"
#include "edgefd/testing/fake_kubelet.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/inventories.h"
#include "edgefd/testing/manual_change_source.h"
#include "edgefd/testing/timing.h"

namespace edgefd::deviceplugin {
namespace {

namespace fs = std::filesystem;
using testing::BigLittleInventory;
using ::testing::ElementsAre;
using testing::FakeKubelet;
using ::testing::HasSubstr;
using testing::ManualChangeSource;
using testing::TempDir;

using testing::kBig;
using testing::kLittle;
using testing::kNcs;

bool LastListHas(const FakeKubelet::Endpoint& ep, const std::string& id,
                 const std::string& health) {
  return !ep.lists.empty() && FakeKubelet::HealthIn(ep.lists.back(), id) == health;
}

// A running plugin: registry fed by a manual change source, served in a temp directory.
class PluginServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    inventory_ = BigLittleInventory(InitialSticks());
    feed_ = std::make_unique<InventoryFeed>(
        registry_,
        [this]() -> Result<Inventory> {
          std::lock_guard lock(mu_);
          return inventory_;
        },
        changes_, &metrics_);
    ASSERT_TRUE(feed_->Start());
  }
  void TearDown() override {
    if (server_) server_->Stop();
    feed_->Stop();
  }
  void StartServer() {
    PluginServerOptions options;
    options.kubelet_dir = dir_.path();
    server_ = std::make_unique<PluginServer>(registry_, options, &metrics_);
    auto s = server_->Start();
    ASSERT_TRUE(s) << s.error().message;
  }
  void SetHardware(Inventory inv) {
    {
      std::lock_guard lock(mu_);
      inventory_ = std::move(inv);
    }
    changes_.Fire();  // what the udev monitor does on an event
  }
  static bool Registered(const FakeKubelet::Endpoint& ep) { return !ep.lists.empty(); }
  virtual int InitialSticks() const { return 2; }

  TempDir dir_;
  FakeKubelet kubelet_{dir_.path()};
  Metrics metrics_;
  InventoryRegistry registry_;
  ManualChangeSource changes_;
  std::mutex mu_;
  Inventory inventory_;
  std::unique_ptr<InventoryFeed> feed_;
  std::unique_ptr<PluginServer> server_;
};

TEST_F(PluginServerTest, RegistersEveryResourceLikeTheKubeletExpects) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  for (const char* r : {kBig, kLittle, kNcs}) {
    ASSERT_TRUE(kubelet_.WaitFor(r, Registered)) << r;
  }
  EXPECT_THAT(kubelet_.Resources(), ElementsAre(kBig, kLittle, kNcs));
  auto ep = *kubelet_.Get(kLittle);
  EXPECT_EQ(ep.request.version(), "v1beta1");
  EXPECT_EQ(ep.request.endpoint(), "edgefd-little-cpu.sock");
  EXPECT_TRUE(fs::exists(dir_.path() / ep.request.endpoint()));
  // The options in Register are the ones GetDevicePluginOptions returns.
  EXPECT_EQ(ep.request.options().SerializeAsString(), ep.options.SerializeAsString());
  EXPECT_TRUE(ep.options.get_preferred_allocation_available());
  EXPECT_FALSE(ep.options.pre_start_required());
  // The first list is the full list, with the NUMA node as topology.
  const auto& list = ep.lists.front();
  ASSERT_EQ(list.devices_size(), 4);
  EXPECT_EQ(list.devices(0).id(), "cpu0");
  EXPECT_EQ(list.devices(0).health(), "Healthy");
  ASSERT_EQ(list.devices(0).topology().nodes_size(), 1);
  EXPECT_EQ(list.devices(0).topology().nodes(0).id(), 0);
  EXPECT_EQ(kubelet_.Get(kNcs)->lists.front().devices_size(), 2);
  auto state = server_->State();
  ASSERT_EQ(state.size(), 3u);
  EXPECT_EQ(state[1].resource, kLittle);
  EXPECT_EQ(state[1].socket, dir_.path() / "edgefd-little-cpu.sock");
}

TEST_F(PluginServerTest, WaitsForAnAbsentKubelet) {
  StartServer();  // no kubelet.sock yet: it serves and waits
  EXPECT_TRUE(fs::exists(dir_.path() / "edgefd-big-cpu.sock"));
  EXPECT_TRUE(kubelet_.Resources().empty());
  ASSERT_TRUE(kubelet_.Start());
  for (const char* r : {kBig, kLittle, kNcs}) {
    EXPECT_TRUE(kubelet_.WaitFor(r, Registered)) << r;
  }
}

TEST_F(PluginServerTest, HotplugIsReflectedInTheStream) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kLittle, Registered));
  ASSERT_TRUE(
      kubelet_.WaitFor(kNcs, [](const auto& ep) { return LastListHas(ep, "1-1.2", "Healthy"); }));
  SetHardware(BigLittleInventory(1));  // unplug stick 1-1.2
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) {
    return LastListHas(ep, "1-1.2", "Unhealthy") && LastListHas(ep, "1-1.1", "Healthy");
  }));
  SetHardware(BigLittleInventory(3));  // plug it back and a third one
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) {
    return LastListHas(ep, "1-1.2", "Healthy") && LastListHas(ep, "1-1.3", "Healthy");
  }));
  // The core resources saw no change, so no second list.
  EXPECT_EQ(kubelet_.Get(kLittle)->lists.size(), 1u);
}

// A node that starts without any stick.
class PluginServerNoSticksTest : public PluginServerTest {
 protected:
  int InitialSticks() const override { return 0; }
};

TEST_F(PluginServerNoSticksTest, FirstDeviceOfANewKindGetsItsOwnSocketAndRegistration) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kLittle, Registered));
  ASSERT_TRUE(kubelet_.WaitFor(kBig, Registered));
  EXPECT_FALSE(kubelet_.Get(kNcs));
  EXPECT_FALSE(fs::exists(dir_.path() / "edgefd-movidius-ncs.sock"));
  SetHardware(BigLittleInventory(1));
  EXPECT_TRUE(
      kubelet_.WaitFor(kNcs, [](const auto& ep) { return LastListHas(ep, "1-1.1", "Healthy"); }));
}

// Whatever reaches a plugin socket is held to the kubelet's needs: a request of megabytes
// (the kubelet's name a few device IDs) is refused before it is worked on, a connection gets
// a few streams at once, and the kubelet's own calls go on. The memory a flood of such
// connections costs is measured by bench/deviceplugin/socket_flood.
TEST_F(PluginServerTest, RequestsAndStreamsBeyondTheKubeletsNeedsAreRefused) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, Registered));
  // A connection of its own (the kubelet's already holds its ListAndWatch stream).
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1beta1::DevicePlugin::NewStub(
      grpc::CreateCustomChannel("unix:" + (dir_.path() / "edgefd-big-cpu.sock").string(),
                                grpc::InsecureChannelCredentials(), args));
  const auto deadline = std::chrono::system_clock::now() + testing::Scaled(std::chrono::seconds(5));
  v1beta1::AllocateRequest big;
  auto* container = big.add_container_requests();
  for (int i = 0; i < 2048; ++i) container->add_devices_ids(std::string(1024, 'x'));  // 2 MiB
  v1beta1::AllocateResponse resp;
  grpc::ClientContext big_ctx;
  big_ctx.set_deadline(deadline);
  EXPECT_EQ(stub->Allocate(&big_ctx, big, &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
  // Streams past the limit wait on the client's side for a slot: the 17th does not start.
  grpc::CompletionQueue cq;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientAsyncReader<v1beta1::ListAndWatchResponse>>> streams;
  for (intptr_t i = 0; i < 17; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(deadline);
    streams.push_back(
        stub->AsyncListAndWatch(contexts.back().get(), v1beta1::Empty(), &cq, (void*)(i + 1)));
  }
  int started = 0;
  for (int seen = 0; seen < 17; ++seen) {  // 16 starts, then the 17th fails at the deadline
    void* tag = nullptr;
    bool ok = false;
    if (!cq.Next(&tag, &ok)) break;
    started += ok ? 1 : 0;
  }
  EXPECT_EQ(started, 16);
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("cpu5");
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + testing::Scaled(std::chrono::seconds(5)));
  EXPECT_TRUE(kubelet_.Dial(kBig)->Allocate(&ctx, req, &resp).ok());
  for (auto& c : contexts) c->TryCancel();
  cq.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST_F(PluginServerTest, SurvivesTwentyKubeletRestartsInARow) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  for (const char* r : {kBig, kLittle, kNcs}) ASSERT_TRUE(kubelet_.WaitFor(r, Registered));
  for (int i = 1; i <= 20; ++i) {
    kubelet_.Restart();  // sockets wiped, kubelet.sock recreated
    for (const char* r : {kBig, kLittle, kNcs}) {
      ASSERT_TRUE(kubelet_.WaitFor(r,
                                   [&](const auto& ep) {
                                     return ep.registrations >= i + 1 && ep.stream_open &&
                                            !ep.lists.empty() &&
                                            ep.list_times.back() >= ep.registered_at;
                                   }))
          << "restart " << i << " " << r;
    }
    ASSERT_TRUE(fs::exists(dir_.path() / "edgefd-movidius-ncs.sock")) << "restart " << i;
  }
  // Still fully working after the last restart.
  auto stub = kubelet_.Dial(kBig);
  v1beta1::AllocateRequest req;
  req.add_container_requests()->add_devices_ids("cpu5");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.container_responses(0).envs().at("EDGEFD_BIG_CPUS"), "5");
}

TEST_F(PluginServerTest, OnlyOurSocketRemovedIsServedAndRegisteredAgain) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kBig, Registered));
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, Registered));
  fs::remove(dir_.path() / "edgefd-big-cpu.sock");
  EXPECT_TRUE(kubelet_.WaitFor(kBig, [](const auto& ep) { return ep.registrations >= 2; }));
  EXPECT_TRUE(fs::exists(dir_.path() / "edgefd-big-cpu.sock"));
  EXPECT_EQ(kubelet_.Get(kNcs)->registrations, 1);
}

TEST_F(PluginServerTest, RejectedRegistrationIsRetried) {
  kubelet_.FailRegistrations(grpc::Status(grpc::StatusCode::UNAVAILABLE, "busy"));
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitForRejections(2));  // it tried, was refused, and tried again
  EXPECT_FALSE(kubelet_.Get(kLittle));
  kubelet_.FailRegistrations(std::nullopt);
  EXPECT_TRUE(kubelet_.WaitFor(kLittle, Registered));
}

// Seen with a real kubelet just restarted: it connected to the endpoint but answered Register
// after the plugin's 1 s deadline, then refused every retry as "already connected", and the
// plugin stayed unregistered (not ready) although the kubelet was using it.
TEST_F(PluginServerTest, AKubeletThatAnswersRegisterLateHoldsThePluginAndThatCounts) {
  kubelet_.AnswerRegistrationsAfter(std::chrono::milliseconds(1500));
  kubelet_.RefuseConnectedEndpoints(true);
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kLittle, Registered));
  ASSERT_TRUE(kubelet_.WaitForRejections(1));  // the plugin's retry met the held endpoint
  auto registered = [&] {
    for (const auto& r : server_->State()) {
      if (r.resource == kLittle) return r.registered;
    }
    return false;
  };
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!registered() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(registered()) << "the plugin does not know the kubelet holds it";
  EXPECT_EQ(kubelet_.Get(kLittle)->registrations, 1);
  EXPECT_TRUE(kubelet_.Get(kLittle)->stream_open);
}

TEST_F(PluginServerTest, AllocateGivesDeviceNodesAndEnvironment) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, Registered));
  auto stub = kubelet_.Dial(kNcs);
  v1beta1::AllocateRequest req;
  auto* c1 = req.add_container_requests();
  c1->add_devices_ids("1-1.2");
  c1->add_devices_ids("1-1.1");
  req.add_container_requests()->add_devices_ids("1-1.2");
  v1beta1::AllocateResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->Allocate(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 2);
  const auto& r = resp.container_responses(0);
  EXPECT_EQ(r.envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.1,1-1.2");
  ASSERT_EQ(r.devices_size(), 2);
  EXPECT_EQ(r.devices(0).host_path(), "/dev/bus/usb/001/002");
  EXPECT_EQ(r.devices(0).container_path(), "/dev/bus/usb/001/002");
  EXPECT_EQ(r.devices(0).permissions(), "rw");
  // IDs are not paths: the nodes to open come in their own variable, in device-ID order.
  EXPECT_EQ(r.envs().at("EDGEFD_MOVIDIUS_NCS_DEVNODES"),
            "/dev/bus/usb/001/002,/dev/bus/usb/001/003");
  EXPECT_EQ(resp.container_responses(1).envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.2");
  EXPECT_EQ(resp.container_responses(1).envs().at("EDGEFD_MOVIDIUS_NCS_DEVNODES"),
            "/dev/bus/usb/001/003");

  auto cores = kubelet_.Dial(kLittle);
  v1beta1::AllocateRequest creq;
  creq.add_container_requests()->add_devices_ids("cpu3");
  creq.mutable_container_requests(0)->add_devices_ids("cpu1");
  v1beta1::AllocateResponse cresp;
  grpc::ClientContext cctx;
  ASSERT_TRUE(cores->Allocate(&cctx, creq, &cresp).ok());
  EXPECT_EQ(cresp.container_responses(0).envs().at("EDGEFD_LITTLE_CPUS"), "1,3");
  EXPECT_EQ(cresp.container_responses(0).devices_size(), 0);
  // Cores have no device nodes, so no DEVNODES variable of any name.
  EXPECT_EQ(cresp.container_responses(0).envs_size(), 1);
}

std::string Join(const std::vector<std::string>& parts) {
  std::string out;
  for (const std::string& p : parts) out += (out.empty() ? "" : ",") + p;
  return out;
}

TEST_F(PluginServerTest, DevnodesAreTheMountedContainerPathsInDeviceIdOrder) {
  Inventory inv = BigLittleInventory(0);
  auto stick = [](std::string id, std::vector<std::string> nodes) {
    Device d;
    d.rule = "movidius-ncs";
    d.id = std::move(id);
    d.subsystem = "usb";
    d.devnodes = std::move(nodes);
    d.resource = true;
    return d;
  };
  // 1-1.10 sorts after 1-1.2 (port numbers compare as numbers) and brings two nodes.
  inv.devices.push_back(stick("1-1.10", {"/dev/bus/usb/001/011", "/dev/ncs-extra"}));
  inv.devices.push_back(stick("1-1.2", {"/dev/bus/usb/001/003"}));
  Device npu;  // an accelerator the container reaches without a /dev node
  npu.rule = "rk-npu";
  npu.id = "/soc/npu@fdab0000";
  npu.resource = true;
  inv.devices.push_back(npu);
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  SetHardware(inv);
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) {
    return LastListHas(ep, "1-1.10", "Healthy") && LastListHas(ep, "1-1.2", "Healthy");
  }));
  ASSERT_TRUE(kubelet_.WaitFor("edgefd.io/rk-npu", Registered));

  // One container asking for `ids` of `resource`.
  auto allocate = [&](const std::string& resource, const std::vector<std::string>& ids) {
    v1beta1::AllocateRequest req;
    auto* c = req.add_container_requests();
    for (const auto& id : ids) c->add_devices_ids(id);
    v1beta1::AllocateResponse resp;
    grpc::ClientContext ctx;
    EXPECT_TRUE(kubelet_.Dial(resource)->Allocate(&ctx, req, &resp).ok());
    if (resp.container_responses_size() == 0) resp.add_container_responses();
    return resp.container_responses(0);
  };
  v1beta1::ContainerAllocateResponse r = allocate(kNcs, {"1-1.10", "1-1.2"});
  EXPECT_EQ(r.envs().at("EDGEFD_MOVIDIUS_NCS_DEVICES"), "1-1.2,1-1.10");
  std::vector<std::string> container_paths;
  for (const auto& spec : r.devices()) container_paths.push_back(spec.container_path());
  EXPECT_THAT(container_paths,
              ElementsAre("/dev/bus/usb/001/003", "/dev/bus/usb/001/011", "/dev/ncs-extra"));
  EXPECT_EQ(r.envs().at("EDGEFD_MOVIDIUS_NCS_DEVNODES"), Join(container_paths));

  // No node to mount: the variable is there and empty, so a runtime can tell "nothing to open"
  // from a plugin that does not set it.
  v1beta1::ContainerAllocateResponse npu_r = allocate("edgefd.io/rk-npu", {"/soc/npu@fdab0000"});
  EXPECT_EQ(npu_r.devices_size(), 0);
  EXPECT_EQ(npu_r.envs().at("EDGEFD_RK_NPU_DEVICES"), "/soc/npu@fdab0000");
  EXPECT_EQ(npu_r.envs().at("EDGEFD_RK_NPU_DEVNODES"), "");
}

TEST_F(PluginServerTest, AllocateOfUnknownOrVanishedIdFailsNamingIt) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, Registered));
  auto stub = kubelet_.Dial(kNcs);
  auto allocate = [&](const std::string& id) {
    v1beta1::AllocateRequest req;
    req.add_container_requests()->add_devices_ids("1-1.1");
    req.add_container_requests()->add_devices_ids(id);
    v1beta1::AllocateResponse resp;
    grpc::ClientContext ctx;
    auto status = stub->Allocate(&ctx, req, &resp);
    EXPECT_EQ(resp.container_responses_size(), 0);  // nothing half-applied
    return status;
  };
  grpc::Status unknown = allocate("9-9.9");
  EXPECT_EQ(unknown.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(unknown.error_message(), HasSubstr("\"9-9.9\""));

  SetHardware(BigLittleInventory(1));  // 1-1.2 unplugged
  grpc::Status vanished = allocate("1-1.2");
  EXPECT_EQ(vanished.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(vanished.error_message(), HasSubstr("\"1-1.2\""));
  EXPECT_THAT(vanished.error_message(), HasSubstr("gone"));
}

TEST_F(PluginServerTest, ConcurrentAllocatesAllGetTheirOwnAnswer) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kLittle, Registered));
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto stub = kubelet_.Dial(kLittle);
      for (int i = 0; i < 100; ++i) {
        int cpu = (t + i) % 4;
        v1beta1::AllocateRequest req;
        req.add_container_requests()->add_devices_ids("cpu" + std::to_string(cpu));
        v1beta1::AllocateResponse resp;
        grpc::ClientContext ctx;
        auto s = stub->Allocate(&ctx, req, &resp);
        if (!s.ok() ||
            resp.container_responses(0).envs().at("EDGEFD_LITTLE_CPUS") != std::to_string(cpu)) {
          ++wrong;
        }
      }
    });
  }
  // Hardware changes while the Allocates run must not disturb them.
  for (int i = 0; i < 20; ++i) SetHardware(BigLittleInventory(i % 3));
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(PluginServerTest, PreferredAllocationKeepsCoresInOneCluster) {
  Inventory inv = BigLittleInventory(0);
  // Two little clusters: cpu0-1 in cluster 0, cpu2-3 in cluster 2.
  inv.cpu.cores[2].cluster = 2;
  inv.cpu.cores[3].cluster = 2;
  SetHardware(inv);
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kLittle, Registered));
  auto stub = kubelet_.Dial(kLittle);
  v1beta1::PreferredAllocationRequest req;
  auto* c = req.add_container_requests();
  for (const char* id : {"cpu1", "cpu2", "cpu3"}) c->add_available_deviceids(id);
  c->set_allocation_size(2);
  v1beta1::PreferredAllocationResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(stub->GetPreferredAllocation(&ctx, req, &resp).ok());
  ASSERT_EQ(resp.container_responses_size(), 1);
  EXPECT_THAT(resp.container_responses(0).deviceids(), ElementsAre("cpu2", "cpu3"));
}

TEST_F(PluginServerTest, StopEndsStreamsAndRemovesOnlyOurSockets) {
  ASSERT_TRUE(kubelet_.Start());
  StartServer();
  ASSERT_TRUE(kubelet_.WaitFor(kNcs, Registered));
  server_->Stop();
  EXPECT_TRUE(kubelet_.WaitFor(kNcs, [](const auto& ep) { return !ep.stream_open; }));
  EXPECT_FALSE(fs::exists(dir_.path() / "edgefd-movidius-ncs.sock"));
  EXPECT_FALSE(fs::exists(dir_.path() / "edgefd-little-cpu.sock"));
  EXPECT_TRUE(fs::exists(dir_.path() / "kubelet.sock"));
}

TEST(PluginServer, MissingDirectoryIsAClearError) {
  InventoryRegistry registry(BigLittleInventory(1));
  PluginServerOptions options;
  options.kubelet_dir = "/nonexistent/edgefd";
  PluginServer server(registry, options);
  auto s = server.Start();
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("/nonexistent/edgefd"));
}

}  // namespace
}  // namespace edgefd::deviceplugin
