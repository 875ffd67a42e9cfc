#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/tensor.h"

namespace edgefd::runtime {

enum class LayerKind { kNormalize, kConv, kActivation, kMaxPool, kFullyConnected };
enum class Activation { kNone, kRelu, kLeaky };

/// One layer of a model. Weights use the layouts of the flat weight file (docs/pipeline.md):
/// convolution OHWI (`filters` x kernel x kernel x in.c), fully connected O x I with the
/// input flattened in HWC order; biases one per output channel.
struct Layer {
  LayerKind kind = LayerKind::kNormalize;
  std::string name;
  Shape in;
  Shape out;
  int kernel = 0;  ///< conv / pool window
  int stride = 1;
  int pad = 0;                         ///< conv zero padding on every side
  Activation act = Activation::kNone;  ///< fused into conv / fc, or the whole kActivation layer
  float leaky_slope = 0.1f;
  float scale = 1.0f;  ///< kNormalize: y = x * scale + shift
  float shift = 0.0f;
  std::vector<float> weights;
  std::vector<float> bias;

  size_t WeightCount() const;
  size_t BiasCount() const;
  /// Floating-point operations for one frame (a multiply-add counts 2).
  double Flops() const;
};

/// An ordered list of layers; layer i's output shape is layer i+1's input shape.
struct Model {
  std::string name;
  std::vector<Layer> layers;

  Shape Input() const { return layers.front().in; }
  Shape Output() const { return layers.back().out; }
  double Flops(int first, int last) const;  ///< layers [first, last)
};

/// Layer constructors that derive the output shape (valid windows, floor division).
Layer ConvLayer(const std::string& name, Shape in, int filters, int kernel, int stride, int pad,
                Activation act);
Layer PoolLayer(const std::string& name, Shape in, int kernel, int stride);
Layer FcLayer(const std::string& name, Shape in, int outputs, Activation act);
Layer ElementwiseLayer(const std::string& name, Shape shape, LayerKind kind, Activation act);

/// Options that shape the `conv` model.
struct ConvModelOptions {
  int width = 1280;
  int height = 720;
  int channels = 1;

  bool operator==(const ConvModelOptions&) const = default;
};

/// The thesis workload: normalise → 3x3 convolution (valid) → ReLU → 2x2/2 max-pool.
Result<Model> MakeConvModel(const ConvModelOptions& options);
/// YoloTinyNet (DESIGN.md): 448x448x3, nine 3x3 convs, leaky 0.1, six 2x2 pools, FC
/// 50176→256→4096→1470; 4.84 GFLOP per image.
Model MakeYoloTiny();
/// Builds a model by name ("conv" or "yolo-tiny").
Result<Model> MakeModel(const std::string& name, const ConvModelOptions& conv_options);

/// Fills the weights of layers [first, last) from a seed; each layer draws from its own
/// stream (seed, layer index), so a stage can initialise only its own layers.
void InitWeights(Model& model, uint64_t seed, int first, int last);
/// Loads layers [first, last) from a flat little-endian float32 file holding, for every layer
/// in order, its weights then its biases. The file must hold exactly the whole model.
Status LoadWeights(Model& model, const std::string& path, int first, int last);
/// Writes all weights in the same format (used by tests and to export seeded weights).
Status SaveWeights(const Model& model, const std::string& path);

std::string LayerKindName(LayerKind kind);

}  // namespace edgefd::runtime
