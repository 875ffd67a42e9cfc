#include "edgefd/runtime/model.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "edgefd/runtime/partition.h"
#include "edgefd/testing/files.h"

namespace edgefd::runtime {
namespace {

TEST(Models, YoloTinyIsDesignsNetwork) {
  Model m = MakeYoloTiny();
  EXPECT_EQ(m.Input(), (Shape{448, 448, 3}));
  EXPECT_EQ(m.Output(), (Shape{1, 1, 1470}));
  int convs = 0, pools = 0, fcs = 0;
  for (const Layer& l : m.layers) {
    convs += l.kind == LayerKind::kConv;
    pools += l.kind == LayerKind::kMaxPool;
    fcs += l.kind == LayerKind::kFullyConnected;
    if (l.kind == LayerKind::kConv) {
      EXPECT_EQ(l.kernel, 3);
      EXPECT_EQ(l.act, Activation::kLeaky);
    }
  }
  EXPECT_EQ(convs, 9);
  EXPECT_EQ(pools, 6);
  EXPECT_EQ(fcs, 3);
  EXPECT_EQ(m.layers[m.layers.size() - 3].in.Elements(), 50176u);
  EXPECT_NEAR(m.Flops(0, int(m.layers.size())) / 1e9, 4.84, 0.01);
}

TEST(Models, ConvModelShapesFollowValidConvAndPool) {
  auto m = MakeConvModel({1280, 720, 1});
  ASSERT_TRUE(m.ok());
  ASSERT_EQ(m->layers.size(), 4u);
  EXPECT_EQ(m->Output(), (Shape{359, 639, 1}));
  EXPECT_FALSE(MakeConvModel({2, 720, 1}).ok());
  EXPECT_FALSE(MakeModel("resnet", {}).ok());
}

TEST(Models, SeededWeightsAreDeterministicPerLayer) {
  Model a = MakeYoloTiny(), b = MakeYoloTiny();
  InitWeights(a, 7, 0, int(a.layers.size()));
  InitWeights(b, 7, 16, 18);  // a stage initialising only its own layers
  EXPECT_EQ(a.layers[16].weights, b.layers[16].weights);
  EXPECT_EQ(a.layers[17].bias, b.layers[17].bias);
  EXPECT_TRUE(b.layers[0].weights.empty());
}

TEST(Models, WeightsFileRoundTripsAndWrongSizesAreRejected) {
  auto m = MakeConvModel({16, 12, 3});
  ASSERT_TRUE(m.ok());
  InitWeights(*m, 5, 0, 4);
  std::string path =
      std::filesystem::temp_directory_path() / (testing::UniqueName("weights") + ".bin");
  ASSERT_TRUE(SaveWeights(*m, path).ok());
  auto loaded = MakeConvModel({16, 12, 3});
  ASSERT_TRUE(LoadWeights(*loaded, path, 0, 4).ok());
  EXPECT_EQ(loaded->layers[1].weights, m->layers[1].weights);
  EXPECT_EQ(loaded->layers[1].bias, m->layers[1].bias);
  // 3x3x3x3 weights + 3 biases.
  EXPECT_EQ(std::filesystem::file_size(path), (81u + 3u) * 4u);

  std::filesystem::resize_file(path, 80);
  auto bad = LoadWeights(*loaded, path, 0, 4);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find(path), std::string::npos);
  EXPECT_NE(bad.error().message.find("needs exactly 336"), std::string::npos);
  std::filesystem::remove(path);
  EXPECT_FALSE(LoadWeights(*loaded, path, 0, 4).ok());
}

TEST(Partitioner, SplitsYoloTinyByComputeIntoBalancedStages) {
  Model m = MakeYoloTiny();
  PartitionOptions o;
  o.stages = 2;
  o.link_mbps = 0;
  auto plan = Partition(m, o);
  ASSERT_TRUE(plan.ok());
  ASSERT_EQ(plan->stages.size(), 2u);
  EXPECT_EQ(plan->stages[0].first, 0);
  EXPECT_EQ(plan->stages[0].last, plan->stages[1].first);
  EXPECT_EQ(plan->stages[1].last, int(m.layers.size()));
  double total = m.Flops(0, int(m.layers.size())) / 1e9;
  EXPECT_LT(std::max(plan->stages[0].gflop, plan->stages[1].gflop), 0.55 * total);
  std::string text = FormatPlan(m, *plan);
  EXPECT_NE(text.find("conv1"), std::string::npos);
  EXPECT_NE(text.find("fc3"), std::string::npos);
}

TEST(Partitioner, SlowLinksMoveCutsToSmallTensors) {
  Model m = MakeYoloTiny();
  PartitionOptions o;
  o.stages = 2;
  o.link_mbps = 10;  // 10 Mbit/s: bytes dominate, cut where the tensor is smallest
  auto plan = Partition(m, o);
  ASSERT_TRUE(plan.ok());
  EXPECT_LE(plan->stages[0].output_bytes, 100352u);
}

TEST(Partitioner, ProfileReplacesFlops) {
  auto m = MakeConvModel({64, 64, 1});
  ASSERT_TRUE(m.ok());
  PartitionOptions o;
  o.stages = 2;
  o.link_mbps = 0;
  o.layer_ms = {10, 1, 1, 1};  // normalisation measured as the slow layer
  auto plan = Partition(*m, o);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->stages[0].last, 1);
}

TEST(Partitioner, RejectsMoreStagesThanLayers) {
  auto m = MakeConvModel({64, 64, 1});
  PartitionOptions o;
  o.stages = 5;
  auto plan = Partition(*m, o);
  ASSERT_FALSE(plan.ok());
  EXPECT_NE(plan.error().message.find("--stages 5"), std::string::npos);
}

}  // namespace
}  // namespace edgefd::runtime
