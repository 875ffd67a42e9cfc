#pragma once

#include <memory>
#include <string>
#include <vector>

#include "edgefd/common/result.h"
#include "edgefd/runtime/model.h"

namespace edgefd::runtime {

/// How an executor may use the machine.
struct ExecOptions {
  int threads = 1;  ///< compute threads (OpenMP team of the calling thread)
  /// Cores for those threads (each thread may run on any of them); empty: not pinned.
  std::vector<int> cpus;
  bool fuse = true;  ///< fuse conv→ReLU→pool where a fused kernel exists
};

/// Runs a contiguous range of a model's layers on one device. Buffers between layers are
/// allocated once; Run never allocates.
class Executor {
 public:
  virtual ~Executor() = default;
  virtual Shape InputShape() const = 0;
  virtual Shape OutputShape() const = 0;
  /// `in` holds InputShape() floats, `out` OutputShape() floats (HWC).
  virtual void Run(const float* in, float* out) = 0;
  /// Milliseconds per layer of the range (the mean of each op over `iterations` passes
  /// through the whole range in order, as frames run it, the slowest pass of three or more
  /// left out), for the partitioner's --profile and `calibrate`.
  virtual std::vector<double> ProfileLayers(int iterations) = 0;
  /// Human-readable list of the kernels chosen ("conv3x3+relu+maxpool2x2: fused", ...).
  virtual std::vector<std::string> Plan() const = 0;
};

/// A compute device kind. Only the CPU backend exists; accelerator backends would implement
/// this interface and take the device nodes the runtime opened.
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string Name() const = 0;
  /// Prepares layers [first, last) of `model` (weights must be present).
  virtual Result<std::unique_ptr<Executor>> Compile(const Model& model, int first, int last,
                                                    const ExecOptions& options) = 0;
};

/// oneDNN for multi-channel convolution, hand-written loops for fully connected layers
/// (FullyConnectedRows: at batch 1 they stream their weights, which oneDNN 2.6 did on one
/// thread), one-channel convolution (fused with ReLU and pooling) and element-wise layers.
/// Where the build has no oneDNN (Debian builds none for armhf) convolutions run the runtime's
/// own loop instead (ConvLoop): same results within float rounding, slower, and reported as
/// such (OneDnnVersion() empty).
std::unique_ptr<Backend> MakeCpuBackend();

/// The oneDNN version the CPU backend runs ("2.6.3"), or "" when built without oneDNN.
std::string OneDnnVersion();

}  // namespace edgefd::runtime
