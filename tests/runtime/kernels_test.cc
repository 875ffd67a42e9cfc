// Every fast kernel against the reference, on odd shapes with a fixed seed.
#include "edgefd/runtime/kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "edgefd/runtime/backend.h"
#include "edgefd/runtime/model.h"

namespace edgefd::runtime {
namespace {

float MaxAbsDiff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

/// Runs layers [first, last) of `model` through the CPU backend and the reference.
void ExpectMatchesReference(Model& model, int first, int last, int threads, float tol = 1e-4f) {
  InitWeights(model, 1234, first, last);
  Buffer in(model.layers[first].in.Elements());
  FillUniform(in.data(), in.size(), 99, -1.0f, 1.0f);
  const size_t out_elems = model.layers[last - 1].out.Elements();
  std::vector<float> ref(out_elems);
  std::vector<float> fast(out_elems);
  std::fill(fast.begin(), fast.end(), -7.0f);  // a kernel that writes nothing must fail
  ReferenceForward(model, first, last, in.data(), ref.data());
  std::unique_ptr<Backend> backend = MakeCpuBackend();
  Result<std::unique_ptr<Executor>> exec =
      backend->Compile(model, first, last, ExecOptions{threads, {}, true});
  ASSERT_TRUE(exec.ok()) << exec.error().message;
  exec.value()->Run(in.data(), fast.data());
  EXPECT_LT(MaxAbsDiff(ref, fast), tol) << model.name << " layers " << first << ".." << last;
}

Model SingleLayer(Layer l) {
  Model m;
  m.name = "test-" + l.name;
  m.layers.push_back(std::move(l));
  return m;
}

// Odd multi-channel convolution shapes: strides, paddings, 1x1 and 5x5 kernels.
struct ConvCase {
  Shape in;
  int filters, k, stride, pad;
  Activation act;
};
const ConvCase kConvCases[] = {
    {{13, 11, 3}, 5, 3, 1, 1, Activation::kLeaky}, {{9, 7, 4}, 6, 3, 2, 1, Activation::kRelu},
    {{10, 9, 2}, 3, 1, 1, 0, Activation::kNone},   {{12, 13, 5}, 7, 5, 2, 2, Activation::kLeaky},
    {{7, 5, 17}, 33, 3, 1, 1, Activation::kNone},
};

// oneDNN's, or where the build has none, the runtime's loops.
TEST(Kernels, MultiChannelConvolutionMatchesReferenceOnOddShapes) {
  for (const ConvCase& c : kConvCases) {
    Model m = SingleLayer(ConvLayer("conv", c.in, c.filters, c.k, c.stride, c.pad, c.act));
    ExpectMatchesReference(m, 0, 1, 2);
  }
}

TEST(Kernels, SingleChannelConvolutionMatchesReference) {
  for (Shape s : {Shape{5, 4, 1}, Shape{17, 23, 1}, Shape{31, 64, 1}}) {
    Model m = SingleLayer(ConvLayer("conv", s, 1, 3, 1, 0, Activation::kNone));
    ExpectMatchesReference(m, 0, 1, 1);
    ExpectMatchesReference(m, 0, 1, 2);
  }
}

TEST(Kernels, FusedConvReluPoolMatchesTheLayerByLayerReference) {
  for (auto [w, h] : {std::pair{4, 4}, std::pair{37, 29}, std::pair{64, 17}, std::pair{101, 55}}) {
    auto m = MakeConvModel({w, h, 1});
    ASSERT_TRUE(m.ok());
    auto exec_check = [&](int threads) { ExpectMatchesReference(*m, 0, 4, threads); };
    exec_check(1);
    exec_check(2);
  }
}

TEST(Kernels, FusedKernelIsChosenForTheWholeConvModel) {
  auto m = MakeConvModel({37, 29, 1});
  ASSERT_TRUE(m.ok());
  InitWeights(*m, 1, 0, 4);
  auto exec = MakeCpuBackend()->Compile(*m, 0, 4, ExecOptions{1, {}, true});
  ASSERT_TRUE(exec.ok());
  ASSERT_EQ((*exec)->Plan().size(), 1u);
  EXPECT_NE((*exec)->Plan()[0].find("fused"), std::string::npos);
}

TEST(Kernels, MultiChannelConvModelMatchesReference) {
  auto m = MakeConvModel({23, 19, 3});
  ASSERT_TRUE(m.ok());
  ExpectMatchesReference(*m, 0, 4, 2);
}

TEST(Kernels, MaxPoolMatchesReferenceOnOddShapes) {
  for (Shape s : {Shape{7, 9, 1}, Shape{8, 5, 3}, Shape{15, 15, 16}, Shape{2, 2, 1}}) {
    Model m = SingleLayer(PoolLayer("pool", s, 2, 2));
    ExpectMatchesReference(m, 0, 1, 2);
  }
}

TEST(Kernels, FullyConnectedMatchesReference) {
  for (Activation act : {Activation::kNone, Activation::kLeaky, Activation::kRelu}) {
    Model m = SingleLayer(FcLayer("fc", {3, 5, 7}, 13, act));
    ExpectMatchesReference(m, 0, 1, 1);
  }
}

TEST(Kernels, ElementwiseLayersMatchReference) {
  for (Activation act : {Activation::kRelu, Activation::kLeaky}) {
    Model m = SingleLayer(ElementwiseLayer("act", {13, 17, 3}, LayerKind::kActivation, act));
    ExpectMatchesReference(m, 0, 1, 2, 0.0f + 1e-7f);
  }
  Layer n = ElementwiseLayer("norm", {9000, 1, 1}, LayerKind::kNormalize, Activation::kNone);
  n.scale = 2;
  n.shift = -1;
  Model m = SingleLayer(n);
  ExpectMatchesReference(m, 0, 1, 2, 1e-6f);
}

TEST(Kernels, YoloTinyTailMatchesReference) {
  Model m = MakeYoloTiny();
  int fc1 = int(m.layers.size()) - 3;
  ASSERT_EQ(m.layers[fc1].name, "fc1");
  ExpectMatchesReference(m, fc1, int(m.layers.size()), 2);
}

// The loops a build without oneDNN (armhf) runs for multi-channel layers, tested directly so
// that every build checks them, whichever library its backend uses.
TEST(Kernels, LoopConvolutionAndFullyConnectedMatchReference) {
  for (const ConvCase& c : kConvCases) {
    Model m = SingleLayer(ConvLayer("conv", c.in, c.filters, c.k, c.stride, c.pad, c.act));
    InitWeights(m, 1234, 0, 1);
    const Layer& l = m.layers[0];
    std::vector<float> in(l.in.Elements());
    FillUniform(in.data(), in.size(), 99, -1.0f, 1.0f);
    std::vector<float> ref(l.out.Elements()), loop(l.out.Elements(), -7.0f);
    ReferenceLayer(l, in.data(), ref.data());
    std::vector<float> w = RepackConvWeights(l);
    // In two row ranges, as two threads would.
    ConvLoop(l, w.data(), in.data(), loop.data(), 0, l.out.h / 2);
    ConvLoop(l, w.data(), in.data(), loop.data(), l.out.h / 2, l.out.h);
    EXPECT_LT(MaxAbsDiff(ref, loop), 1e-4f) << l.in.ToString() << " k" << c.k;
  }
  for (Activation act : {Activation::kNone, Activation::kLeaky, Activation::kRelu}) {
    Model m = SingleLayer(FcLayer("fc", {3, 5, 7}, 130, act));
    InitWeights(m, 1234, 0, 1);
    const Layer& l = m.layers[0];
    std::vector<float> in(l.in.Elements());
    FillUniform(in.data(), in.size(), 99, -1.0f, 1.0f);
    std::vector<float> ref(130), loop(130, -7.0f);
    ReferenceLayer(l, in.data(), ref.data());
    FullyConnectedRows(l, in.data(), loop.data(), 0, 64);
    FullyConnectedRows(l, in.data(), loop.data(), 64, 130);
    EXPECT_LT(MaxAbsDiff(ref, loop), 1e-4f);
    // Any split at multiples of 4 gives the same bits as one thread.
    std::vector<float> whole(130), split(130);
    FullyConnectedRows(l, in.data(), whole.data(), 0, 130);
    FullyConnectedRows(l, in.data(), split.data(), 0, 8);
    FullyConnectedRows(l, in.data(), split.data(), 8, 128);
    FullyConnectedRows(l, in.data(), split.data(), 128, 130);
    EXPECT_EQ(whole, split);
  }
}

TEST(Kernels, KernelIsaNamesTheCloneInUse) {
  std::string isa = KernelIsa();
#if defined(__x86_64__) && !defined(EDGEFD_NATIVE_KERNELS)
  __builtin_cpu_init();
  EXPECT_EQ(isa, __builtin_cpu_supports("x86-64-v4")   ? "x86-64-v4"
                 : __builtin_cpu_supports("x86-64-v3") ? "x86-64-v3"
                                                       : "x86-64");
#else
  EXPECT_FALSE(isa.empty());
#endif
}

TEST(Kernels, ChecksumSumsEveryValue) {
  std::vector<float> v(10007, 0.5f);
  EXPECT_DOUBLE_EQ(Checksum(v.data(), v.size()), 10007 * 0.5);
}

}  // namespace
}  // namespace edgefd::runtime
