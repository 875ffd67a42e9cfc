// The API calls of the checkpoint's recovery: this node's claims, listed in pages, and the
// Event on the Node.
#include "edgefd/dra/recovery_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "dra_test_support.h"

namespace edgefd::dra {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::kNode;
using testing::ScriptedTransport;

Json Claim(const std::string& name, const std::string& pool, bool reserved,
           const std::string& driver = "edgefd.io") {
  Json claim = {{"metadata", {{"namespace", "ml"}, {"name", name}, {"uid", name + "-uid"}}},
                {"status",
                 {{"allocation",
                   {{"devices",
                     {{"results", Json::array({{{"request", "r"},
                                                {"driver", driver},
                                                {"pool", pool},
                                                {"device", "cpu4"}}})}}}}}}}};
  if (reserved) claim["status"]["reservedFor"] = Json::array({{{"resource", "pods"}}});
  return claim;
}

kube::ApiResponse Page(Json items, const std::string& next) {
  Json list = {{"items", std::move(items)}, {"metadata", Json::object()}};
  if (!next.empty()) list["metadata"]["continue"] = next;
  return {200, DumpJson(list), {}};
}

TEST(RecoveryApi, ListsThisNodesReservedClaimsAcrossPages) {
  ScriptedTransport api(
      {Page(Json::array({Claim("mine", kNode, true), Claim("unreserved", kNode, false)}),
            "tok+en/="),
       Page(Json::array({Claim("elsewhere", "rpi4", true),
                         Claim("foreign", kNode, true, "gpu.example.com"),
                         Claim("mine-too", kNode, true)}),
            "")});
  auto claims = ListNodeClaims(api, ResourceApi("v1"), kNode);
  ASSERT_TRUE(claims) << claims.error().message;
  std::vector<std::string> names;
  for (const ClaimObject& c : *claims) names.push_back(c.name);
  EXPECT_THAT(names, ElementsAre("mine", "mine-too"));
  ASSERT_EQ(api.requests.size(), 2u);
  EXPECT_EQ(api.requests[0].path, "/apis/resource.k8s.io/v1/resourceclaims?limit=250");
  // The server's token goes back escaped.
  EXPECT_EQ(api.requests[1].path,
            "/apis/resource.k8s.io/v1/resourceclaims?limit=250&continue=tok%2Ben%2F%3D");
}

TEST(RecoveryApi, AFailedPageFailsTheWholeList) {
  ScriptedTransport api({Page(Json::array({Claim("mine", kNode, true)}), "more"),
                         {403, R"({"message":"forbidden: list resourceclaims"})", {}}});
  auto claims = ListNodeClaims(api, ResourceApi("v1"), kNode);
  ASSERT_FALSE(claims);
  EXPECT_THAT(claims.error().message, HasSubstr("HTTP 403"));
  EXPECT_THAT(claims.error().message, HasSubstr("forbidden: list resourceclaims"));
  ScriptedTransport garbage({{200, "[1,2]", {}}});
  EXPECT_FALSE(ListNodeClaims(garbage, ResourceApi("v1"), kNode));
}

TEST(RecoveryApi, AnEventIsAWarningAboutTheNode) {
  ScriptedTransport api({{201, "{}", {}}});
  ASSERT_TRUE(PostNodeEvent(
      api, {kNode, "node-uid", "DraCheckpointRecovered", "rebuilt", true, "edgefd-dra"}));
  ASSERT_EQ(api.requests.size(), 1u);
  EXPECT_EQ(api.requests[0].method, "POST");
  EXPECT_EQ(api.requests[0].path, "/api/v1/namespaces/default/events");
  EXPECT_EQ(api.requests[0].content_type, "application/json");
  Json event = Json::parse(api.requests[0].body);
  EXPECT_EQ(event["involvedObject"],
            Json({{"apiVersion", "v1"}, {"kind", "Node"}, {"name", kNode}, {"uid", "node-uid"}}));
  EXPECT_EQ(event["type"], "Warning");
  EXPECT_EQ(event["reason"], "DraCheckpointRecovered");
  EXPECT_EQ(event["message"], "rebuilt");
  EXPECT_EQ(StringAt(event, "/metadata/namespace"), "default");
  EXPECT_EQ(StringAt(event, "/metadata/generateName"), std::string(kNode) + ".edgefd-dra.");
  EXPECT_EQ(event["reportingComponent"], "edgefd.io/dra");
  ScriptedTransport refused({{403, R"({"message":"events is forbidden"})", {}}});
  auto s = PostNodeEvent(refused, {kNode, "", "X", "y", true, "edgefd-dra"});
  ASSERT_FALSE(s);
  EXPECT_THAT(s.error().message, HasSubstr("events is forbidden"));
}

}  // namespace
}  // namespace edgefd::dra
