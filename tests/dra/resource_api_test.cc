// Reading what the API server says about claims: every byte of it is input.
#include "edgefd/dra/resource_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "edgefd/common/json.h"

namespace edgefd::dra {
namespace {

using ::testing::HasSubstr;

TEST(ParseClaim, ReadsTheAllocationOfAnyDriver) {
  Json claim = {
      {"metadata", {{"namespace", "ns"}, {"name", "c"}, {"uid", "u"}, {"resourceVersion", "7"}}},
      {"status",
       {{"allocation",
         {{"devices",
           {{"results",
             {{{"request", "r/sub"}, {"driver", "edgefd.io"}, {"pool", "n"}, {"device", "cpu4"}},
              {{"request", "g"}, {"driver", "gpu.example.com"}, {"pool", "n"}, {"device", "g0"}}}},
            {"config",
             {{{"source", "FromClass"}, {"opaque", {{"driver", "gpu.example.com"}}}}}}}}}}}}};
  auto parsed = ParseClaim(claim.dump(), "ResourceClaim ns/c");
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->uid, "u");
  EXPECT_TRUE(parsed->allocated);
  ASSERT_EQ(parsed->results.size(), 2u);
  EXPECT_EQ(parsed->results[0], (AllocationResult{"r/sub", "edgefd.io", "n", "cpu4"}));
  EXPECT_EQ(parsed->config_drivers, std::vector<std::string>{"gpu.example.com"});
}

TEST(ParseClaim, HostileOrBrokenAnswersAreErrorsNotCrashes) {
  for (const std::string text :
       {"", "null", "[]", "{\"metadata\": 5}",
        "{\"metadata\": {}, \"status\": {\"allocation\": "
        "{\"devices\": {\"results\": 7}}}}",
        "{\"metadata\": {}, \"status\": {\"allocation\": {\"devices\": {\"results\": [{\"driver\": "
        "\"edgefd.io\"}]}}}}",
        "{\"metadata\": {}, \"status\": {\"allocation\": {\"devices\": {\"results\": [5]}}}}"}) {
    auto parsed = ParseClaim(text, "ResourceClaim ns/c");
    EXPECT_FALSE(parsed) << text;
    if (!parsed) {
      EXPECT_THAT(parsed.error().message, HasSubstr("ResourceClaim ns/c"));
    }
  }
  // Wrong types in optional places are ignored, not trusted.
  auto odd = ParseClaim(R"({"metadata": {"uid": 5}, "status": {"allocation": "yes"}})", "x");
  ASSERT_TRUE(odd);
  EXPECT_EQ(odd->uid, "");
  auto huge = ParseClaim(std::string(5 << 20, ' '), "x");
  EXPECT_FALSE(huge);
}

TEST(ResourceApi, PathsPerVersion) {
  EXPECT_EQ(*kube::ResourceSlicesPath(ResourceApi("v1").version()),
            "/apis/resource.k8s.io/v1/resourceslices");
  EXPECT_EQ(ResourceApi::NodeSlicesSelector("n1"), "spec.nodeName=n1,spec.driver=edgefd.io");
  EXPECT_EQ(*kube::ResourceClaimsPath(ResourceApi("v1beta1").version(), "ns"),
            "/apis/resource.k8s.io/v1beta1/namespaces/ns/resourceclaims");
  EXPECT_TRUE(ResourceApi("v1beta1").NestsDevices());
  EXPECT_FALSE(ResourceApi("v1beta2").NestsDevices());
}

}  // namespace
}  // namespace edgefd::dra
