#include "edgefd/nri/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/nri/ttrpc.h"
#include "fake_record.h"
#include "nri/api.pb.h"

namespace edgefd::nri {
namespace {

namespace api = ::nri::pkg::api::v1alpha1;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

api::Container MakeContainer(const std::string& id, const std::vector<std::string>& env,
                             api::ContainerState state = api::CONTAINER_RUNNING) {
  api::Container c;
  c.set_id(id);
  c.set_pod_sandbox_id("pod");
  c.set_name(id);
  c.set_state(state);
  for (const std::string& e : env) c.add_env(e);
  return c;
}

api::PodSandbox MakePod() {
  api::PodSandbox pod;
  pod.set_id("pod");
  pod.set_name("web");
  pod.set_namespace_("default");
  return pod;
}

std::vector<std::pair<std::string, std::string>> Updates(
    const google::protobuf::RepeatedPtrField<api::ContainerUpdate>& updates) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& u : updates) {
    EXPECT_TRUE(u.ignore_failure());
    out.emplace_back(u.container_id(), u.linux().resources().cpu().cpus());
  }
  return out;
}

class NriServiceTest : public ::testing::Test {
 protected:
  NriServiceTest() {
    // What the kubelet's device manager or a prepared claim gave the containers of pod web.
    record_.held[{"default", "web", "holder"}] = {0, 2};
    record_.held[{"default", "web", "c"}] = {1};
  }

  template <typename Message>
  Answer Call(std::string_view method, const Message& request) {
    return service_.Handle(kPluginService, method, request.SerializeAsString());
  }

  Metrics metrics_;
  FakeRecord record_;
  NriService service_{{0, 1, 2, 3}, Policy::kExclusive, metrics_, record_};
};

TEST_F(NriServiceTest, ConfigureSubscribesToTheContainerEventsItHandles) {
  api::ConfigureRequest req;
  req.set_runtime_name("containerd");
  Answer a = Call("Configure", req);
  ASSERT_EQ(a.code, kStatusOk);
  api::ConfigureResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(a.payload));
  // Bit (event - 1): CREATE_CONTAINER 4, UPDATE_CONTAINER 8, STOP_CONTAINER 10,
  // REMOVE_CONTAINER 11.
  EXPECT_EQ(rsp.events(), (1 << 3) | (1 << 7) | (1 << 9) | (1 << 10));
}

TEST_F(NriServiceTest, ASplitSynchronizeAnswersOnlyAtItsLastPart) {
  api::SynchronizeRequest first;
  *first.add_pods() = MakePod();
  *first.add_containers() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=2"});
  first.set_more(true);
  Answer a = Call("Synchronize", first);
  api::SynchronizeResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(a.payload));
  EXPECT_TRUE(rsp.more());
  EXPECT_EQ(rsp.update_size(), 0);
  EXPECT_FALSE(metrics_.synchronized);

  api::SynchronizeRequest last;
  *last.add_pods() = MakePod();
  *last.add_containers() = MakeContainer("plain", {});
  *last.add_containers() = MakeContainer("gone", {}, api::CONTAINER_STOPPED);
  a = Call("Synchronize", last);
  ASSERT_TRUE(rsp.ParseFromString(a.payload));
  EXPECT_FALSE(rsp.more());
  EXPECT_THAT(Updates(rsp.update()),
              ElementsAre(std::pair{"holder", "2"}, std::pair{"plain", "0,1,3"}));
  EXPECT_TRUE(metrics_.synchronized);
  EXPECT_EQ(service_.Stats().holders, 1u);
}

TEST_F(NriServiceTest, CreateContainerAdjustsTheCpusetAndCountsOfflineCores) {
  api::CreateContainerRequest req;
  *req.mutable_pod() = MakePod();
  *req.mutable_container() = MakeContainer("c", {"EDGEFD_LITTLE_CPUS=1,9"}, api::CONTAINER_CREATED);
  Answer a = Call("CreateContainer", req);
  api::CreateContainerResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(a.payload));
  EXPECT_EQ(rsp.adjust().linux().resources().cpu().cpus(), "1");
  EXPECT_EQ(metrics_.invalid_cpus, 1u);
}

TEST_F(NriServiceTest, RemovalGivesCoresBackUnsolicitedAlsoAsAnOldStyleEvent) {
  api::SynchronizeRequest sync;
  *sync.add_pods() = MakePod();
  *sync.add_containers() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=0"});
  *sync.add_containers() = MakeContainer("plain", {});
  Call("Synchronize", sync);

  // containerd 1.7's NRI tells of a removal through StateChange.
  api::StateChangeEvent event;
  event.set_event(api::REMOVE_CONTAINER);
  *event.mutable_pod() = MakePod();
  *event.mutable_container() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=0"});
  Answer a = Call("StateChange", event);
  EXPECT_EQ(a.code, kStatusOk);
  EXPECT_THAT(a.unsolicited, ElementsAre(CpusetUpdate{"plain", "0,1,2,3"}));
  // The RemoveContainer that may follow has nothing left to do.
  api::RemoveContainerRequest remove;
  *remove.mutable_container() = event.container();
  EXPECT_THAT(Call("RemoveContainer", remove).unsolicited, IsEmpty());
}

TEST_F(NriServiceTest, StopContainerAnswersWithTheUpdates) {
  api::SynchronizeRequest sync;
  *sync.add_pods() = MakePod();
  *sync.add_containers() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=0"});
  *sync.add_containers() = MakeContainer("plain", {});
  Call("Synchronize", sync);
  api::StopContainerRequest stop;
  *stop.mutable_container() = MakeContainer("holder", {});
  Answer a = Call("StopContainer", stop);
  api::StopContainerResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(a.payload));
  EXPECT_THAT(Updates(rsp.update()), ElementsAre(std::pair{"plain", "0,1,2,3"}));
  EXPECT_THAT(a.unsolicited, IsEmpty());
}

TEST_F(NriServiceTest, ACoreThePodNamedItselfIsRefusedAndCounted) {
  api::SynchronizeRequest sync;
  *sync.add_pods() = MakePod();
  *sync.add_containers() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=0"});
  Call("Synchronize", sync);
  // A container of the same pod sets EDGEFD_BIG_CPUS=0 in its own spec, holding nothing: it is
  // not pinned to core 0 but kept off it, like any other container.
  api::CreateContainerRequest req;
  *req.mutable_pod() = MakePod();
  *req.mutable_container() = MakeContainer("forger", {"EDGEFD_BIG_CPUS=0"}, api::CONTAINER_CREATED);
  api::CreateContainerResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(Call("CreateContainer", req).payload));
  EXPECT_EQ(rsp.adjust().linux().resources().cpu().cpus(), "1,2,3");
  EXPECT_THAT(Updates(rsp.update()), IsEmpty());
  EXPECT_EQ(metrics_.unverified_cpus, 1u);
  EXPECT_EQ(service_.Stats().holders, 1u);
  EXPECT_EQ(service_.Stats().held, std::vector<int>{0});
}

TEST_F(NriServiceTest, OnlyTheCoresTheRecordGivesAreHonoured) {
  // holder holds 0 and 2, and names 2 and 3: pinned to 2; 3 is refused.
  api::CreateContainerRequest req;
  *req.mutable_pod() = MakePod();
  *req.mutable_container() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=2", "EDGEFD_LITTLE_CPUS=3"},
                                           api::CONTAINER_CREATED);
  api::CreateContainerResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(Call("CreateContainer", req).payload));
  EXPECT_EQ(rsp.adjust().linux().resources().cpu().cpus(), "2");
  EXPECT_EQ(metrics_.unverified_cpus, 1u);
  // The same name in another namespace is another container.
  *req.mutable_pod() = MakePod();
  req.mutable_pod()->set_namespace_("other");
  req.mutable_container()->set_id("holder-elsewhere");
  ASSERT_TRUE(rsp.ParseFromString(Call("CreateContainer", req).payload));
  EXPECT_EQ(rsp.adjust().linux().resources().cpu().cpus(), "0,1,3");
  EXPECT_EQ(metrics_.unverified_cpus, 2u);
}

TEST_F(NriServiceTest, WhileTheRecordCannotBeReadNoCoreIsHonoured) {
  record_.error = "/var/lib/kubelet/pod-resources/kubelet.sock: does not exist";
  api::SynchronizeRequest sync;
  *sync.add_pods() = MakePod();
  *sync.add_containers() = MakeContainer("holder", {"EDGEFD_BIG_CPUS=0"});
  *sync.add_containers() = MakeContainer("plain", {});
  api::SynchronizeResponse rsp;
  ASSERT_TRUE(rsp.ParseFromString(Call("Synchronize", sync).payload));
  EXPECT_THAT(Updates(rsp.update()), IsEmpty());
  EXPECT_EQ(service_.Stats().holders, 0u);
  EXPECT_EQ(metrics_.unverified_cpus, 1u);
  EXPECT_EQ(metrics_.record_failures, 1u);

  // Back: the next holder is confirmed, and the first is not asked about again.
  record_.error.clear();
  api::CreateContainerRequest req;
  *req.mutable_pod() = MakePod();
  *req.mutable_container() = MakeContainer("c", {"EDGEFD_LITTLE_CPUS=1"}, api::CONTAINER_CREATED);
  api::CreateContainerResponse created;
  ASSERT_TRUE(created.ParseFromString(Call("CreateContainer", req).payload));
  EXPECT_EQ(created.adjust().linux().resources().cpu().cpus(), "1");
  EXPECT_EQ(metrics_.record_failures, 1u);
}

TEST_F(NriServiceTest, AContainerThatNamesNoCoresCostsNoLookUp) {
  api::CreateContainerRequest req;
  *req.mutable_pod() = MakePod();
  *req.mutable_container() = MakeContainer("plain", {}, api::CONTAINER_CREATED);
  Call("CreateContainer", req);
  EXPECT_EQ(record_.reads, 0);
}

TEST_F(NriServiceTest, UnknownMethodsAndBadPayloadsAreErrorsNotCrashes) {
  EXPECT_EQ(service_.Handle(kPluginService, "Frobnicate", "").code, kStatusUnimplemented);
  EXPECT_EQ(service_.Handle("other.Service", "Configure", "").code, kStatusUnimplemented);
  Answer bad = service_.Handle(kPluginService, "CreateContainer", "\xff\xff\xff");
  EXPECT_EQ(bad.code, kStatusInvalidArgument);
  EXPECT_EQ(metrics_.Requests().at("CreateContainer"), 1u);
}

}  // namespace
}  // namespace edgefd::nri
