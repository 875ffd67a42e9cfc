// What the labeller asks the API server to change, decided without a network.
#include <gtest/gtest.h>

#include "edgefd/agent/reconcile.h"
#include "edgefd/common/json.h"

namespace edgefd {
namespace {

Json Parse(const std::string& s) { return Json::parse(s); }

TEST(MergePatchFor, AddsWantedLabelsAndClaimsThem) {
  NodeState node{{{"kubernetes.io/hostname", "n1"}}, {}, {}, "42"};
  auto patch = MergePatchFor(node, {{"edgefd.io/cpu.arch", "arm64"}, {"edgefd.io/cpu.cores", "6"}});
  ASSERT_TRUE(patch);
  Json p = Parse(*patch);
  EXPECT_EQ(p.at("metadata").at("resourceVersion").get<std::string>(), "42");
  EXPECT_EQ(p.at("metadata").at("labels").at("edgefd.io/cpu.arch").get<std::string>(), "arm64");
  EXPECT_EQ(p.at("metadata").at("labels").at("edgefd.io/cpu.cores").get<std::string>(), "6");
  EXPECT_FALSE(p.at("metadata").at("labels").contains("kubernetes.io/hostname"));
  EXPECT_EQ(p.at("metadata").at("annotations").at("edgefd.io/owned-labels").get<std::string>(),
            "edgefd.io/cpu.arch,edgefd.io/cpu.cores");
}

TEST(MergePatchFor, NullsOwnedLabelsThatAreGoneAndNothingElse) {
  NodeState node{{{"edgefd.io/accel.edgetpu", "true"},
                  {"edgefd.io/cpu.arch", "arm64"},
                  {"edgefd.io/custom", "ops"}},
                 {"edgefd.io/accel.edgetpu", "edgefd.io/cpu.arch"},
                 {},
                 "7"};
  auto patch = MergePatchFor(node, {{"edgefd.io/cpu.arch", "arm64"}});
  ASSERT_TRUE(patch);
  Json labels = Parse(*patch).at("metadata").at("labels");
  EXPECT_TRUE(labels.at("edgefd.io/accel.edgetpu").is_null());
  EXPECT_EQ(labels.size(), 1u) << *patch;  // the foreign edgefd.io/custom is not mentioned
  EXPECT_EQ(Parse(*patch)
                .at("metadata")
                .at("annotations")
                .at("edgefd.io/owned-labels")
                .get<std::string>(),
            "edgefd.io/cpu.arch");
}

TEST(MergePatchFor, NeverClaimsOrChangesAForeignLabelOfTheSameName) {
  NodeState node{{{"edgefd.io/camera", "false"}}, {}, {}, "1"};
  auto patch = MergePatchFor(node, {{"edgefd.io/camera", "true"}});
  EXPECT_FALSE(patch) << *patch;
  EXPECT_TRUE(OwnedAfter(node, {{"edgefd.io/camera", "true"}}).empty());
}

TEST(MergePatchFor, NothingToDoWhenConverged) {
  NodeState node{{{"edgefd.io/cpu.arch", "arm64"}}, {"edgefd.io/cpu.arch"}, {}, "9"};
  EXPECT_FALSE(MergePatchFor(node, {{"edgefd.io/cpu.arch", "arm64"}}));
}

TEST(MergePatchFor, RestoresAnOwnedLabelSomebodyRemovedOrChanged) {
  NodeState node{
      {{"edgefd.io/cpu.cores", "1"}}, {"edgefd.io/cpu.arch", "edgefd.io/cpu.cores"}, {}, "9"};
  auto patch = MergePatchFor(node, {{"edgefd.io/cpu.arch", "arm64"}, {"edgefd.io/cpu.cores", "4"}});
  ASSERT_TRUE(patch);
  Json labels = Parse(*patch).at("metadata").at("labels");
  EXPECT_EQ(labels.at("edgefd.io/cpu.arch").get<std::string>(), "arm64");
  EXPECT_EQ(labels.at("edgefd.io/cpu.cores").get<std::string>(), "4");
  EXPECT_FALSE(Parse(*patch).at("metadata").contains("annotations"));
}

TEST(MergePatchFor, DropsTheAnnotationWhenNothingIsOwned) {
  NodeState node{{{"edgefd.io/camera", "true"}}, {"edgefd.io/camera"}, {}, "3"};
  auto patch = MergePatchFor(node, {});
  ASSERT_TRUE(patch);
  EXPECT_TRUE(
      Parse(*patch).at("metadata").at("annotations").at("edgefd.io/owned-labels").is_null());
}

TEST(MergePatchFor, QuotesHardwareStringsAsJson) {
  NodeState node{{}, {}, {}, "1"};
  auto patch = MergePatchFor(node, {{"edgefd.io/board.model", "a\"b\\c"}});
  ASSERT_TRUE(patch);
  EXPECT_EQ(
      Parse(*patch).at("metadata").at("labels").at("edgefd.io/board.model").get<std::string>(),
      "a\"b\\c");
}

TEST(MergePatchFor, NeverTouchesALabelOutsideItsPrefixesWhateverTheAnnotationSays) {
  // The kubelet (or anyone who can write the Node) lists labels edgefd does not own.
  auto node = ParseNode(R"({"metadata":{"resourceVersion":"5","labels":{
      "node-role.kubernetes.io/control-plane":"","edgefd.io/cpu.arch":"arm64",
      "node-restriction.kubernetes.io/pool":"a"},
      "annotations":{"edgefd.io/owned-labels":
      "edgefd.io/cpu.arch,node-role.kubernetes.io/control-plane,node-restriction.kubernetes.io/pool"}}})");
  ASSERT_TRUE(node.ok()) << node.error().message;
  EXPECT_EQ(node->owned, (std::set<std::string>{"edgefd.io/cpu.arch"}));
  EXPECT_EQ(node->refused, (std::set<std::string>{"node-role.kubernetes.io/control-plane",
                                                  "node-restriction.kubernetes.io/pool"}));
  auto patch = MergePatchFor(*node, {{"edgefd.io/cpu.arch", "arm64"}});
  ASSERT_TRUE(patch);  // the annotation is rewritten without the forged names
  Json p = Parse(*patch);
  EXPECT_TRUE(p.at("metadata").at("labels").empty()) << *patch;
  EXPECT_EQ(p.at("metadata").at("annotations").at("edgefd.io/owned-labels").get<std::string>(),
            "edgefd.io/cpu.arch");
  // Nor is a wanted label outside the prefixes ever set or claimed.
  NodeState empty{{}, {}, {}, "1"};
  auto odd = MergePatchFor(empty, {{"node-role.kubernetes.io/worker", ""}});
  EXPECT_FALSE(odd) << *odd;
}

TEST(OwnedLabels, RoundTripsSortedAndTolerant) {
  EXPECT_EQ(ParseOwnedLabels(" b, a,,a ,c"), (std::set<std::string>{"a", "b", "c"}));
  EXPECT_EQ(FormatOwnedLabels({"b", "a"}), "a,b");
  EXPECT_TRUE(ParseOwnedLabels("").empty());
}

TEST(ParseNode, ReadsLabelsOwnershipAndVersion) {
  auto node = ParseNode(R"({"metadata":{"name":"n1","resourceVersion":"77",
      "labels":{"edgefd.io/a":"1"},"annotations":{"edgefd.io/owned-labels":"edgefd.io/a"}}})");
  ASSERT_TRUE(node.ok()) << node.error().message;
  EXPECT_EQ(node->resource_version, "77");
  EXPECT_EQ(node->labels, (Labels{{"edgefd.io/a", "1"}}));
  EXPECT_EQ(node->owned, (std::set<std::string>{"edgefd.io/a"}));
  EXPECT_TRUE(node->refused.empty());
  EXPECT_FALSE(ParseNode("{not json").ok());
  EXPECT_FALSE(ParseNode("[]").ok());
}

TEST(Backoff, GrowsToTheCapWithJitter) {
  Backoff backoff({std::chrono::milliseconds(100), std::chrono::milliseconds(1000), 2.0}, 1);
  std::vector<int64_t> delays;
  for (int i = 0; i < 8; ++i) delays.push_back(backoff.Next().count());
  EXPECT_GE(delays[0], 50);
  EXPECT_LE(delays[0], 100);
  EXPECT_GE(delays[3], 400);
  EXPECT_LE(delays[3], 800);
  for (int i = 4; i < 8; ++i) {
    EXPECT_GE(delays[i], 500);
    EXPECT_LE(delays[i], 1000);
  }
  backoff.Reset();
  EXPECT_LE(backoff.Next().count(), 100);
}

}  // namespace
}  // namespace edgefd
