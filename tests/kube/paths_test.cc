// Request paths from names another party chose, and the typed calls built on them.
#include "edgefd/kube/paths.h"

#include <gtest/gtest.h>

#include "edgefd/kube/api.h"

namespace edgefd::kube {
namespace {

TEST(Paths, NamesFollowKubernetesPathSegmentRulesAndRefuseControlBytes) {
  for (std::string_view good : {"n1", "rock-5b.local", "a_b", "a?b", "a b", "ä"}) {
    EXPECT_TRUE(CheckName(good, "name")) << good;
  }
  for (const std::string& bad :
       {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
        std::string("a%2F"), std::string("a\rb"), std::string("a\nb"), std::string("a\0b", 3),
        std::string("a\x7f"), std::string(254, 'a')}) {
    Status s = CheckName(bad, "claim name");
    ASSERT_FALSE(s) << bad;
    EXPECT_NE(s.error().message.find("claim name '"), std::string::npos);
    // The message never carries the raw byte (a log line split by a name).
    EXPECT_EQ(s.error().message.find_first_of("\r\n"), std::string::npos);
  }
}

TEST(Paths, EscapeLeavesOnlyUnreservedBytes) {
  EXPECT_EQ(Escape("a-b.c_d~e"), "a-b.c_d~e");
  EXPECT_EQ(Escape("a?b=c&d/e f#%"), "a%3Fb%3Dc%26d%2Fe%20f%23%25");
  EXPECT_EQ(Escape(std::string("\r\n\0", 3)), "%0D%0A%00");
}

TEST(Paths, PathOfChecksNamesAndEscapesEveryPart) {
  auto ok = PathOf("/api/v1", {"namespaces", "ns", "events"});
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(*ok, "/api/v1/namespaces/ns/events");
  EXPECT_FALSE(PathOf("/api/v1", {"nodes", ".."}));
  EXPECT_FALSE(PathOf("/api/v1", {"nodes", "a/b"}));
  EXPECT_EQ(ResourceClaimsPath("v1", "").value(), "/apis/resource.k8s.io/v1/resourceclaims");
  EXPECT_FALSE(ResourceSlicesPath("../v1"));
}

TEST(Paths, RequestPathsAreCheckedWhoeverBuiltThem) {
  for (std::string_view good : {"/api/v1/nodes/n1", "/apis/resource.k8s.io",
                                "/a/b?fieldSelector=a%3Db&x=..", "/api/v1/nodes/a%3F"}) {
    EXPECT_TRUE(CheckRequestPath(good)) << good;
  }
  for (std::string_view bad : {"", "api", "/a/../b", "/a/./b", "/a/%2E%2e", "/a//b", "/a b",
                               "/a\r\nb", "/a#b", "/a?b?c", "/\xc3\xa4"}) {
    EXPECT_FALSE(CheckRequestPath(bad)) << bad;
  }
}

TEST(WatchEvents, LinesAreEventsWithTheirResourceVersion) {
  auto events = ParseWatchEvents(
      "{\"type\":\"ADDED\",\"object\":{\"metadata\":{\"name\":\"a\",\"resourceVersion\":\"5\"}}}\n"
      "{\"type\":\"BOOKMARK\",\"object\":{\"metadata\":{\"resourceVersion\":\"9\"}}}\n\n");
  ASSERT_TRUE(events) << events.error().message;
  ASSERT_EQ(events->size(), 2u);
  EXPECT_EQ((*events)[0].type, "ADDED");
  EXPECT_EQ((*events)[1].resource_version, "9");
  EXPECT_FALSE(ParseWatchEvents("{\"type\":\"ADDED\"}\n"));
  EXPECT_FALSE(ParseWatchEvents("[[[[\n"));
  EXPECT_FALSE(
      ParseWatchEvents("{\"type\":\"A\",\"object\":{}}\n{\"type\":\"A\",\"object\":{}}", 1));
}

}  // namespace
}  // namespace edgefd::kube
