#include "edgefd/nri/record.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/testing/fake_pod_resources.h"
#include "edgefd/testing/files.h"

namespace edgefd::nri {
namespace {

namespace fs = std::filesystem;
using deviceplugin::PreparedClaim;
using ::testing::Pair;
using ::testing::UnorderedElementsAre;

PreparedClaim Claim(std::string uid, std::string ns, std::string name, std::string env) {
  return {std::move(uid), std::move(ns), std::move(name), {}, {std::move(env)}, false};
}

TEST(HeldCoresFrom, CoresOfTheDevicePluginAndOfPreparedClaimsByContainer) {
  deviceplugin::Assignments assigned;
  assigned.devices = {{"a", "p1", "c1", "edgefd.io/big-cpu", "cpu4"},
                      {"a", "p1", "c1", "edgefd.io/little-cpu", "cpu0"},
                      // Not cores: an accelerator, a foreign resource, IDs that are no core.
                      {"a", "p1", "c1", "edgefd.io/edgetpu", "cpu7"},
                      {"a", "p1", "c1", "other.io/big-cpu", "cpu6"},
                      {"a", "p1", "c2", "edgefd.io/big-cpu", "cpu-1"},
                      {"a", "p1", "c2", "edgefd.io/big-cpu", "cpu5x"}};
  assigned.claims = {{"a", "p2", "c1", "cores"},
                     // The same name in another namespace is another claim (not prepared).
                     {"b", "p3", "c1", "cores"},
                     {"a", "p2", "c2", "unknown"}};
  deviceplugin::PreparedClaims claims;
  claims["u1"] = Claim("u1", "a", "cores", "EDGEFD_BIG_CPUS=2,3");
  claims["u2"] = Claim("u2", "a", "broken", "EDGEFD_BIG_CPUS=two");
  EXPECT_THAT(HeldCoresFrom(assigned, claims),
              UnorderedElementsAre(Pair(ContainerRef{"a", "p1", "c1"}, std::vector<int>{0, 4}),
                                   Pair(ContainerRef{"a", "p2", "c1"}, std::vector<int>{2, 3})));
}

TEST(NodeAllocationRecord, ReadsTheKubeletAndTheCheckpointAndRefusesWithoutThem) {
  testing::TempDir dir;
  const fs::path socket = dir.path() / "kubelet.sock";
  const fs::path checkpoint = dir.path() / "checkpoint.json";
  NodeAllocationRecord record(socket, checkpoint);
  // No kubelet: nothing can be confirmed.
  Result<HeldCores> none = record.Read();
  ASSERT_FALSE(none);
  EXPECT_THAT(none.error().message, ::testing::HasSubstr(socket.string()));

  testing::FakePodResources kubelet(socket);
  ASSERT_TRUE(kubelet.Start());
  kubelet.Assign({"a", "p1", "c1", "edgefd.io/big-cpu", {"cpu1"}});
  kubelet.AssignClaim({"a", "p2", "c1", "cores", {"cpu2"}, "edgefd.io"});
  kubelet.AssignClaim({"a", "p2", "c1", "gpu", {"gpu0"}, "gpu.example.com"});
  ASSERT_TRUE(deviceplugin::DraCheckpoint(checkpoint)
                  .Save({{"u1", Claim("u1", "a", "cores", "EDGEFD_BIG_CPUS=2")},
                         {"u2", Claim("u2", "a", "gpu", "EDGEFD_BIG_CPUS=3")}}));
  Result<HeldCores> held = record.Read();
  ASSERT_TRUE(held) << held.error().message;
  // The claim of another driver gives nothing, whatever a checkpoint says of its name.
  EXPECT_THAT(*held,
              UnorderedElementsAre(Pair(ContainerRef{"a", "p1", "c1"}, std::vector<int>{1}),
                                   Pair(ContainerRef{"a", "p2", "c1"}, std::vector<int>{2})));

  // A checkpoint that does not parse confirms no claim: an error, not a guess.
  dir.Write("checkpoint.json", "{\"version\": 1, \"claims\": [");
  Result<HeldCores> corrupt = record.Read();
  ASSERT_FALSE(corrupt);
  EXPECT_THAT(corrupt.error().message, ::testing::HasSubstr("DRA checkpoint"));
}

}  // namespace
}  // namespace edgefd::nri
