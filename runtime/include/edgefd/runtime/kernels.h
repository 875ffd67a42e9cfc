#pragma once

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

}  // namespace edgefd::runtime
