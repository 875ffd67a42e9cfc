// Reference kernels: one obvious loop nest per layer, the ground truth for tests.
#include <algorithm>
#include <limits>
#include <vector>

#include "edgefd/runtime/kernels.h"

namespace edgefd::runtime {

namespace {

float Activate(float v, Activation act, float slope) {
  switch (act) {
    case Activation::kRelu:
      return v > 0 ? v : 0;
    case Activation::kLeaky:
      return v > 0 ? v : v * slope;
    case Activation::kNone:
      return v;
  }
  return v;
}

}  // namespace

void ReferenceLayer(const Layer& l, const float* in, float* out) {
  switch (l.kind) {
    case LayerKind::kNormalize:
      for (size_t i = 0; i < l.in.Elements(); ++i) out[i] = in[i] * l.scale + l.shift;
      return;
    case LayerKind::kActivation:
      for (size_t i = 0; i < l.in.Elements(); ++i) out[i] = Activate(in[i], l.act, l.leaky_slope);
      return;
    case LayerKind::kConv:
      for (int y = 0; y < l.out.h; ++y) {
        for (int x = 0; x < l.out.w; ++x) {
          for (int o = 0; o < l.out.c; ++o) {
            double acc = l.bias[o];
            for (int ky = 0; ky < l.kernel; ++ky) {
              int iy = y * l.stride - l.pad + ky;
              if (iy < 0 || iy >= l.in.h) continue;
              for (int kx = 0; kx < l.kernel; ++kx) {
                int ix = x * l.stride - l.pad + kx;
                if (ix < 0 || ix >= l.in.w) continue;
                const float* px = in + (size_t(iy) * l.in.w + ix) * l.in.c;
                const float* wk =
                    l.weights.data() + ((size_t(o) * l.kernel + ky) * l.kernel + kx) * l.in.c;
                for (int i = 0; i < l.in.c; ++i) acc += double(px[i]) * wk[i];
              }
            }
            out[(size_t(y) * l.out.w + x) * l.out.c + o] =
                Activate(float(acc), l.act, l.leaky_slope);
          }
        }
      }
      return;
    case LayerKind::kMaxPool:
      for (int y = 0; y < l.out.h; ++y) {
        for (int x = 0; x < l.out.w; ++x) {
          for (int c = 0; c < l.out.c; ++c) {
            float m = -std::numeric_limits<float>::infinity();
            for (int ky = 0; ky < l.kernel; ++ky) {
              for (int kx = 0; kx < l.kernel; ++kx) {
                m = std::max(
                    m, in[(size_t(y * l.stride + ky) * l.in.w + x * l.stride + kx) * l.in.c + c]);
              }
            }
            out[(size_t(y) * l.out.w + x) * l.out.c + c] = m;
          }
        }
      }
      return;
    case LayerKind::kFullyConnected: {
      size_t n = l.in.Elements();
      for (int o = 0; o < l.out.c; ++o) {
        double acc = l.bias[o];
        const float* wo = l.weights.data() + size_t(o) * n;
        for (size_t i = 0; i < n; ++i) acc += double(in[i]) * wo[i];
        out[o] = Activate(float(acc), l.act, l.leaky_slope);
      }
      return;
    }
  }
}

void ReferenceForward(const Model& model, int first, int last, const float* in, float* out) {
  std::vector<float> a(in, in + model.layers[first].in.Elements());
  std::vector<float> b;
  for (int i = first; i < last; ++i) {
    b.assign(model.layers[i].out.Elements(), 0.0f);
    ReferenceLayer(model.layers[i], a.data(), b.data());
    a.swap(b);
  }
  std::copy(a.begin(), a.end(), out);
}

}  // namespace edgefd::runtime
