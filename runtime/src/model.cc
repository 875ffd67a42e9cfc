#include "edgefd/runtime/model.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>

namespace edgefd::runtime {

size_t Layer::WeightCount() const {
  switch (kind) {
    case LayerKind::kConv:
      return size_t(out.c) * kernel * kernel * in.c;
    case LayerKind::kFullyConnected:
      return in.Elements() * out.Elements();
    default:
      return 0;
  }
}

size_t Layer::BiasCount() const {
  return kind == LayerKind::kConv || kind == LayerKind::kFullyConnected ? size_t(out.c) : 0;
}

double Layer::Flops() const {
  switch (kind) {
    case LayerKind::kConv:
      return 2.0 * double(out.Elements()) * kernel * kernel * in.c;
    case LayerKind::kFullyConnected:
      return 2.0 * double(in.Elements()) * double(out.Elements());
    case LayerKind::kMaxPool:
      return double(out.Elements()) * kernel * kernel;
    default:
      return double(out.Elements());
  }
}

double Model::Flops(int first, int last) const {
  double f = 0;
  for (int i = first; i < last; ++i) f += layers[i].Flops();
  return f;
}

std::string LayerKindName(LayerKind kind) {
  switch (kind) {
    case LayerKind::kNormalize:
      return "normalize";
    case LayerKind::kConv:
      return "conv";
    case LayerKind::kActivation:
      return "activation";
    case LayerKind::kMaxPool:
      return "maxpool";
    case LayerKind::kFullyConnected:
      return "fc";
  }
  return "?";
}

Layer ConvLayer(const std::string& name, Shape in, int filters, int k, int stride, int pad,
                Activation act) {
  Layer l = ElementwiseLayer(name, in, LayerKind::kConv, act);
  l.kernel = k;
  l.stride = stride;
  l.pad = pad;
  l.out = {(in.h + 2 * pad - k) / stride + 1, (in.w + 2 * pad - k) / stride + 1, filters};
  return l;
}

Layer PoolLayer(const std::string& name, Shape in, int k, int stride) {
  Layer l = ElementwiseLayer(name, in, LayerKind::kMaxPool, Activation::kNone);
  l.kernel = k;
  l.stride = stride;
  l.out = {(in.h - k) / stride + 1, (in.w - k) / stride + 1, in.c};
  return l;
}

Layer FcLayer(const std::string& name, Shape in, int outputs, Activation act) {
  Layer l = ElementwiseLayer(name, in, LayerKind::kFullyConnected, act);
  l.out = {1, 1, outputs};
  return l;
}

Layer ElementwiseLayer(const std::string& name, Shape shape, LayerKind kind, Activation act) {
  Layer l;
  l.kind = kind;
  l.name = name;
  l.in = l.out = shape;
  l.act = act;
  return l;
}

Result<Model> MakeConvModel(const ConvModelOptions& o) {
  if (o.width < 4 || o.height < 4 || o.channels < 1 || o.width > 16384 || o.height > 16384 ||
      o.channels > 64) {
    return Error{"conv model: --width/--height must be 4..16384 and --channels 1..64, got " +
                 std::to_string(o.width) + "x" + std::to_string(o.height) + "x" +
                 std::to_string(o.channels)};
  }
  Model m;
  m.name = "conv";
  Shape in{o.height, o.width, o.channels};
  Layer norm = ElementwiseLayer("normalize", in, LayerKind::kNormalize, Activation::kNone);
  // Pixel intensities in [0, 1) to roughly zero mean, unit range.
  norm.scale = 2.0f;
  norm.shift = -1.0f;
  m.layers.push_back(norm);
  m.layers.push_back(ConvLayer("conv3x3", in, o.channels, 3, 1, 0, Activation::kNone));
  m.layers.push_back(
      ElementwiseLayer("relu", m.layers.back().out, LayerKind::kActivation, Activation::kRelu));
  m.layers.push_back(PoolLayer("maxpool2x2", m.layers.back().out, 2, 2));
  return m;
}

Model MakeYoloTiny() {
  Model m;
  m.name = "yolo-tiny";
  Shape s{448, 448, 3};
  const int filters[] = {16, 32, 64, 128, 256, 512, 1024, 1024, 1024};
  for (int i = 0; i < 9; ++i) {
    m.layers.push_back(
        ConvLayer("conv" + std::to_string(i + 1), s, filters[i], 3, 1, 1, Activation::kLeaky));
    s = m.layers.back().out;
    if (i < 6) {
      m.layers.push_back(PoolLayer("pool" + std::to_string(i + 1), s, 2, 2));
      s = m.layers.back().out;
    }
  }
  m.layers.push_back(FcLayer("fc1", s, 256, Activation::kLeaky));
  m.layers.push_back(FcLayer("fc2", m.layers.back().out, 4096, Activation::kLeaky));
  m.layers.push_back(FcLayer("fc3", m.layers.back().out, 1470, Activation::kNone));
  return m;
}

Result<Model> MakeModel(const std::string& name, const ConvModelOptions& conv_options) {
  if (name == "conv") return MakeConvModel(conv_options);
  if (name == "yolo-tiny") return MakeYoloTiny();
  return Error{"--model " + name + ": unknown model (use conv or yolo-tiny)"};
}

void InitWeights(Model& model, uint64_t seed, int first, int last) {
  for (int i = first; i < last; ++i) {
    Layer& l = model.layers[i];
    l.weights.resize(l.WeightCount());
    l.bias.resize(l.BiasCount());
    if (l.weights.empty()) continue;
    size_t fan_in = l.WeightCount() / size_t(l.out.c);
    // Uniform with variance 2/fan_in keeps activations O(1) through all layers.
    float limit = std::sqrt(6.0f / float(fan_in));
    uint64_t s = seed * 1000003ull + uint64_t(i) * 7919ull;
    FillUniform(l.weights.data(), l.weights.size(), s, -limit, limit);
    FillUniform(l.bias.data(), l.bias.size(), s + 1, -0.1f, 0.1f);
  }
}

namespace {
struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;
}  // namespace

Status LoadWeights(Model& model, const std::string& path, int first, int last) {
  size_t total = 0;
  for (const Layer& l : model.layers) total += (l.WeightCount() + l.BiasCount()) * sizeof(float);
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return Error{"--weights " + path + ": cannot open"};
  std::fseek(f.get(), 0, SEEK_END);
  long size = std::ftell(f.get());
  if (size < 0 || size_t(size) != total) {
    return Error{"--weights " + path + ": " + std::to_string(size) + " bytes, model " + model.name +
                 " needs exactly " + std::to_string(total) +
                 " (float32 weights then biases per layer, see docs/pipeline.md)"};
  }
  size_t offset = 0;
  for (int i = 0; i < int(model.layers.size()); ++i) {
    Layer& l = model.layers[i];
    size_t bytes = (l.WeightCount() + l.BiasCount()) * sizeof(float);
    if (i >= first && i < last && bytes > 0) {
      l.weights.resize(l.WeightCount());
      l.bias.resize(l.BiasCount());
      std::fseek(f.get(), long(offset), SEEK_SET);
      if (std::fread(l.weights.data(), sizeof(float), l.weights.size(), f.get()) !=
              l.weights.size() ||
          std::fread(l.bias.data(), sizeof(float), l.bias.size(), f.get()) != l.bias.size()) {
        return Error{"--weights " + path + ": short read in layer " + l.name};
      }
      for (float v : l.weights) {
        if (!std::isfinite(v))
          return Error{"--weights " + path + ": non-finite weight in layer " + l.name};
      }
    }
    offset += bytes;
  }
  return Ok{};
}

Status SaveWeights(const Model& model, const std::string& path) {
  File f(std::fopen(path.c_str(), "wb"));
  if (!f) return Error{path + ": cannot create"};
  for (const Layer& l : model.layers) {
    if (l.weights.size() != l.WeightCount() || l.bias.size() != l.BiasCount()) {
      return Error{path + ": layer " + l.name + " has no weights to save"};
    }
    if (l.weights.empty()) continue;  // layers without weights write nothing
    std::fwrite(l.weights.data(), sizeof(float), l.weights.size(), f.get());
    std::fwrite(l.bias.data(), sizeof(float), l.bias.size(), f.get());
  }
  if (std::fflush(f.get()) != 0) return Error{path + ": write failed"};
  return Ok{};
}

}  // namespace edgefd::runtime
