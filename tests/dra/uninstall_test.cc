// `helm uninstall` leaves no CDI spec behind: the DRA driver removes its specs at a stop only
// when its DaemonSet is going away for good, and never a spec a prepared claim still needs;
// the chart's hook (edgefd-labeller --prune --stop-daemonset) deletes the DaemonSet in the
// foreground first and waits for it.
#include "edgefd/dra/uninstall.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::ScriptedTransport;

const std::string kPath = "/apis/apps/v1/namespaces/edgefd-system/daemonsets/edgefd-dra";
const std::string kUid1 = "0b5a3c1e-8f0d-4c2a-9a57-3d0c8e4f6a21";
const std::string kUid2 = "1c6b4d2f-9a1e-4d3b-8b68-4e1d9f5a7b32";

kube::ApiResponse DaemonSet(bool deleting) {
  Json ds = {{"kind", "DaemonSet"}, {"metadata", {{"name", "edgefd-dra"}}}};
  if (deleting) ds["metadata"]["deletionTimestamp"] = "2026-12-06T00:00:00Z";
  return {200, ds.dump()};
}

Result<bool> Leaving(std::deque<kube::ApiResponse> answers) {
  ScriptedTransport transport(std::move(answers));
  kube::Api api(transport);
  auto leaving = DaemonSetLeaving(api, "edgefd-system", "edgefd-dra");
  EXPECT_EQ(transport.requests.size(), 1u);
  if (!transport.requests.empty()) {
    EXPECT_EQ(transport.requests[0].method, "GET");
    EXPECT_EQ(transport.requests[0].path, kPath);
  }
  return leaving;
}

TEST(DaemonSetLeaving, GoneOrBeingDeletedIsAnUninstallPresentIsARestart) {
  auto gone = Leaving({{404, "{}"}});
  ASSERT_TRUE(gone) << gone.error().message;
  EXPECT_TRUE(*gone);
  auto deleting = Leaving({DaemonSet(true)});
  ASSERT_TRUE(deleting) << deleting.error().message;
  EXPECT_TRUE(*deleting);
  auto there = Leaving({DaemonSet(false)});  // a rolling update keeps it
  ASSERT_TRUE(there) << there.error().message;
  EXPECT_FALSE(*there);
}

TEST(DaemonSetLeaving, AnyDoubtIsAnError) {
  auto forbidden = Leaving({{403, R"({"kind":"Status","code":403})"}});
  ASSERT_FALSE(forbidden);
  EXPECT_THAT(forbidden.error().message, HasSubstr("403"));
  EXPECT_FALSE(Leaving({}));                   // no answer
  EXPECT_FALSE(Leaving({{200, "not json"}}));  // garbage
  EXPECT_FALSE(Leaving({{200, R"({"metadata":{"name":"other"}})"}}));
  ScriptedTransport transport({});
  kube::Api api(transport);
  EXPECT_FALSE(DaemonSetLeaving(api, "edgefd-system", "../nodes"));  // never sent
  EXPECT_TRUE(transport.requests.empty());
}

class UninstallCdiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.WriteClaim(kUid1, {"EDGEFD_BIG_CPUS=4,5"}));
    ASSERT_TRUE(dir_.WriteClaim(kUid2, {"EDGEFD_BIG_CPUS=6"}));
    edgefd::testing::WriteFile(dir_.CommonSpecPath(), "{}");
    edgefd::testing::WriteFile(tmp_.path() / "vendor.com-gpu.json", "{}");  // not ours
  }
  std::vector<std::string> Files() {
    std::vector<std::string> out;
    for (const auto& e : fs::directory_iterator(tmp_.path())) {
      out.push_back(e.path().filename().string());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  bool Remove(std::deque<kube::ApiResponse> answers, const std::set<std::string>& prepared) {
    ScriptedTransport transport(std::move(answers));
    kube::Api api(transport);
    return RemoveCdiSpecsIfUninstalled(api, "edgefd-system", "edgefd-dra", dir_, prepared);
  }

  edgefd::testing::TempDir tmp_;
  deviceplugin::CdiSpecDir dir_{tmp_.path()};
};

TEST_F(UninstallCdiTest, ARestartOrAnyDoubtKeepsEverySpec) {
  const auto before = Files();
  ASSERT_EQ(before.size(), 4u);
  EXPECT_FALSE(Remove({DaemonSet(false)}, {}));
  EXPECT_FALSE(Remove({{403, "{}"}}, {}));
  EXPECT_FALSE(Remove({}, {}));
  EXPECT_EQ(Files(), before);
}

TEST_F(UninstallCdiTest, AnUninstallKeepsOnlyWhatPreparedClaimsNeed) {
  // A pod of claim 1 still runs: its spec and the common spec (its container names the
  // devices there) stay; claim 2's spec was not needed any more.
  EXPECT_TRUE(Remove({DaemonSet(true)}, {kUid1}));
  EXPECT_THAT(Files(), ElementsAre("edgefd.io-device.json", "edgefd.io-device_" + kUid1 + ".json",
                                   "vendor.com-gpu.json"));
  // No prepared claim: nothing of edgefd's stays; the vendor's spec does.
  EXPECT_TRUE(Remove({{404, "{}"}}, {}));
  EXPECT_THAT(Files(), ElementsAre("vendor.com-gpu.json"));
}

TEST(DeleteDaemonSetsAndWait, DeletesInTheForegroundAndWaitsUntilItIsGone) {
  ScriptedTransport transport({{200, "{}"}, DaemonSet(true), DaemonSet(true), {404, "{}"}});
  int waits = 0;
  Status done = kube::DeleteDaemonSetsAndWait(
      kube::Api(transport), "edgefd-system", {"edgefd-dra"}, std::chrono::seconds(60),
      [&waits](std::chrono::milliseconds) { return ++waits > 100; });
  ASSERT_TRUE(done) << done.error().message;
  EXPECT_EQ(waits, 2);
  ASSERT_EQ(transport.requests.size(), 4u);
  EXPECT_EQ(transport.requests[0].method, "DELETE");
  EXPECT_EQ(transport.requests[0].path, kPath);
  EXPECT_THAT(transport.requests[0].body, HasSubstr(R"("propagationPolicy":"Foreground")"));
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(transport.requests[i].method, "GET");
}

TEST(DeleteDaemonSetsAndWait, ARefusalOrTheDeadlineIsAnErrorNamingTheDaemonSet) {
  ScriptedTransport refused({{403, R"({"kind":"Status"})"}});
  Status s = kube::DeleteDaemonSetsAndWait(kube::Api(refused), "edgefd-system", {"edgefd-dra"},
                                           std::chrono::seconds(60),
                                           [](std::chrono::milliseconds) { return false; });
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("edgefd-system/edgefd-dra"));
  EXPECT_THAT(s.error().message, HasSubstr("403"));
  ScriptedTransport stays({{404, "{}"}, DaemonSet(true)});  // already gone? then it must stay gone
  s = kube::DeleteDaemonSetsAndWait(kube::Api(stays), "edgefd-system", {"edgefd-dra"},
                                    std::chrono::seconds(0),
                                    [](std::chrono::milliseconds) { return false; });
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("still stop"));
}

}  // namespace
}  // namespace edgefd::dra
