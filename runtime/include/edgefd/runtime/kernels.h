#pragma once

#include <vector>

#include "edgefd/runtime/model.h"

namespace edgefd::runtime {

/// Plain reference implementation of one layer (HWC in, HWC out). Slow and obvious; every
/// fast path is tested against it.
void ReferenceLayer(const Layer& layer, const float* in, float* out);

/// Runs layers [first, last) of `model` with the reference kernels.
void ReferenceForward(const Model& model, int first, int last, const float* in, float* out);

/// Fast one-channel 3x3 valid convolution with bias, rows [row_begin, row_end) of the output
/// (shape (h-2) x (w-2)).
void Conv3x3SingleChannel(const float* in, int h, int w, const float* weights, float bias,
                          float* out, int row_begin, int row_end);

/// The fused thesis kernel: y = maxpool2x2(relu(conv3x3(x * scale + shift))) for one channel,
/// in one pass over four input rows per output row. Writes pooled rows [row_begin, row_end);
/// `scratch` holds 2 * w floats.
void FusedConvReluPool(const float* in, int h, int w, const float* weights, float bias, float scale,
                       float shift, float* out, int row_begin, int row_end, float* scratch);

/// 2x2 stride-2 max-pool over HWC rows [row_begin, row_end) of the output.
void MaxPool2x2(const float* in, Shape in_shape, float* out, int row_begin, int row_end);

/// In-place-safe activation and affine normalisation over `n` floats.
void ActivationKernel(const float* in, float* out, size_t n, Activation act, float slope);
void NormalizeKernel(const float* in, float* out, size_t n, float scale, float shift);

/// Sum of `n` floats in double precision (frame checksums).
double Checksum(const float* p, size_t n);

/// Multi-channel convolution without oneDNN (targets Debian builds no oneDNN for): HWC in,
/// HWC out, rows [row_begin, row_end) of the output, activation applied. `weights_hwio` is
/// the layer's weights repacked by RepackConvWeights.
void ConvLoop(const Layer& layer, const float* weights_hwio, const float* in, float* out,
              int row_begin, int row_end);
/// The layer's [out][kh][kw][in] weights as [kh][kw][in][out], the order ConvLoop reads.
std::vector<float> RepackConvWeights(const Layer& layer);

/// Fully connected layer at batch 1 (every build; oneDNN 2.6's inner product ran the
/// 50176->256 layer of yolo-tiny on one thread): outputs [out_begin, out_end) from the layer's
/// own [out][in] weights, rows in groups of four from out_begin, activation applied. An output
/// gets the same bits whichever range computes it, as long as ranges start at multiples of 4.
void FullyConnectedRows(const Layer& layer, const float* in, float* out, int out_begin,
                        int out_end);

/// The instruction set the hand-written loops run with on this CPU: on x86-64 the best of the
/// clones the default build carries ("x86-64-v4" with AVX-512, "x86-64-v3" with AVX2+FMA,
/// "x86-64" baseline), "native" when built with EDGEFD_NATIVE_KERNELS, else the target's
/// baseline ("aarch64", "armv7").
const char* KernelIsa();

}  // namespace edgefd::runtime
