// Hand-written kernels for the shapes oneDNN handles badly (one-channel images), the cheap
// element-wise layers, and the multi-channel layers where the target has no oneDNN. Written as
// plain loops the compiler vectorises, built with -O3.
//
// The default build runs on any x86-64 and still uses AVX2+FMA or AVX-512 where the CPU has
// them: GCC compiles each kernel once per ISA level (target_clones) and the dynamic loader
// picks one for the CPU at start-up (an ifunc). With EDGEFD_NATIVE_KERNELS the file is built
// for the build machine's CPU alone (-march=native) and runs on nothing older.
#include <algorithm>

#include "edgefd/runtime/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(EDGEFD_NATIVE_KERNELS)
#define EDGEFD_KERNEL_CLONES 1
#define EDGEFD_KERNEL __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define EDGEFD_KERNEL_CLONES 0
#define EDGEFD_KERNEL
#endif

namespace edgefd::runtime {

namespace {

void Activate(float* v, int n, Activation act, float slope) {
  if (act == Activation::kRelu) {
    for (int i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : 0.0f;
  } else if (act == Activation::kLeaky) {
    for (int i = 0; i < n; ++i) v[i] = v[i] > 0.0f ? v[i] : v[i] * slope;
  }
}

}  // namespace

const char* KernelIsa() {
#if defined(EDGEFD_NATIVE_KERNELS)
  return "native";
#elif EDGEFD_KERNEL_CLONES
  // The same tests the clones' resolver makes.
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
  return "x86-64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__arm__) && defined(__ARM_NEON)
  return "armv7+neon";
#elif defined(__arm__)
  return "armv7";
#else
  return "generic";
#endif
}

EDGEFD_KERNEL
void Conv3x3SingleChannel(const float* __restrict in, int h, int w, const float* weights,
                          float bias, float* __restrict out, int row_begin, int row_end) {
  (void)h;
  const int wo = w - 2;
  const float w0 = weights[0], w1 = weights[1], w2 = weights[2], w3 = weights[3], w4 = weights[4],
              w5 = weights[5], w6 = weights[6], w7 = weights[7], w8 = weights[8];
  for (int y = row_begin; y < row_end; ++y) {
    const float* __restrict i0 = in + size_t(y) * w;
    const float* __restrict i1 = i0 + w;
    const float* __restrict i2 = i1 + w;
    float* __restrict o = out + size_t(y) * wo;
    for (int x = 0; x < wo; ++x) {
      o[x] = bias + (w0 * i0[x] + w1 * i0[x + 1] + w2 * i0[x + 2]) +
             (w3 * i1[x] + w4 * i1[x + 1] + w5 * i1[x + 2]) +
             (w6 * i2[x] + w7 * i2[x + 1] + w8 * i2[x + 2]);
    }
  }
}

EDGEFD_KERNEL
void FusedConvReluPool(const float* __restrict in, int h, int w, const float* weights, float bias,
                       float scale, float shift, float* __restrict out, int row_begin, int row_end,
                       float* __restrict scratch) {
  (void)h;
  // Fold the normalisation into the filter: conv(s*x + t) = s*conv(x) + t*sum(w) exactly for
  // a valid (unpadded) convolution.
  float k[9];
  float wsum = 0;
  for (int i = 0; i < 9; ++i) {
    k[i] = weights[i] * scale;
    wsum += weights[i];
  }
  const float b = bias + shift * wsum;
  const int wc = w - 2;
  const int wp = wc / 2;
  float* __restrict c0 = scratch;
  float* __restrict c1 = scratch + w;
  for (int r = row_begin; r < row_end; ++r) {
    const float* __restrict i0 = in + size_t(2 * r) * w;
    const float* __restrict i1 = i0 + w;
    const float* __restrict i2 = i1 + w;
    const float* __restrict i3 = i2 + w;
    for (int x = 0; x < wc; ++x) {
      float r1 = k[0] * i1[x] + k[1] * i1[x + 1] + k[2] * i1[x + 2];
      float r2a = k[3] * i2[x] + k[4] * i2[x + 1] + k[5] * i2[x + 2];
      float r1b = k[3] * i1[x] + k[4] * i1[x + 1] + k[5] * i1[x + 2];
      float r2b = k[6] * i2[x] + k[7] * i2[x + 1] + k[8] * i2[x + 2];
      c0[x] = b + (k[0] * i0[x] + k[1] * i0[x + 1] + k[2] * i0[x + 2]) + r1b + r2b;
      c1[x] = b + r1 + r2a + (k[6] * i3[x] + k[7] * i3[x + 1] + k[8] * i3[x + 2]);
    }
    float* __restrict o = out + size_t(r) * wp;
    for (int x = 0; x < wp; ++x) {
      float m = std::max(std::max(c0[2 * x], c0[2 * x + 1]), std::max(c1[2 * x], c1[2 * x + 1]));
      o[x] = m > 0.0f ? m : 0.0f;
    }
  }
}

EDGEFD_KERNEL
void MaxPool2x2(const float* __restrict in, Shape s, float* __restrict out, int row_begin,
                int row_end) {
  const int ow = (s.w - 2) / 2 + 1;
  const int c = s.c;
  if (c == 1) {
    // One channel: a flat stride-2 loop the compiler vectorises with permutes.
    for (int y = row_begin; y < row_end; ++y) {
      const float* __restrict a = in + size_t(2 * y) * s.w;
      const float* __restrict b = a + s.w;
      float* __restrict o = out + size_t(y) * ow;
      for (int x = 0; x < ow; ++x) {
        o[x] = std::max(std::max(a[2 * x], a[2 * x + 1]), std::max(b[2 * x], b[2 * x + 1]));
      }
    }
    return;
  }
  for (int y = row_begin; y < row_end; ++y) {
    const float* __restrict a = in + size_t(2 * y) * s.w * c;
    const float* __restrict b = a + size_t(s.w) * c;
    float* __restrict o = out + size_t(y) * ow * c;
    for (int x = 0; x < ow; ++x) {
      const float* pa = a + size_t(2 * x) * c;
      const float* pb = b + size_t(2 * x) * c;
      float* po = o + size_t(x) * c;
      for (int i = 0; i < c; ++i) {
        po[i] = std::max(std::max(pa[i], pa[c + i]), std::max(pb[i], pb[c + i]));
      }
    }
  }
}

EDGEFD_KERNEL
void ActivationKernel(const float* in, float* out, size_t n, Activation act, float slope) {
  if (act == Activation::kRelu) {
    for (size_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : 0.0f;
  } else if (act == Activation::kLeaky) {
    for (size_t i = 0; i < n; ++i) out[i] = in[i] > 0.0f ? in[i] : in[i] * slope;
  } else if (in != out) {
    std::copy(in, in + n, out);
  }
}

EDGEFD_KERNEL
void NormalizeKernel(const float* __restrict in, float* __restrict out, size_t n, float scale,
                     float shift) {
  for (size_t i = 0; i < n; ++i) out[i] = in[i] * scale + shift;
}

EDGEFD_KERNEL
double Checksum(const float* p, size_t n) {
  // Sixteen independent float lanes per block vectorise; doubles between blocks keep precision.
  double total = 0;
  size_t i = 0;
  while (i < n) {
    size_t end = std::min(n, i + 4096);
    float lanes[16] = {};
    size_t j = i;
    for (; j + 16 <= end; j += 16) {
      for (int k = 0; k < 16; ++k) lanes[k] += p[j + k];
    }
    for (; j < end; ++j) lanes[0] += p[j];
    for (float v : lanes) total += v;
    i = end;
  }
  return total;
}

EDGEFD_KERNEL
void ConvLoop(const Layer& l, const float* __restrict wt, const float* __restrict in,
              float* __restrict out, int row_begin, int row_end) {
  const int oc = l.out.c, ic = l.in.c, k = l.kernel;
  const float* bias = l.bias.data();
  for (int y = row_begin; y < row_end; ++y) {
    for (int x = 0; x < l.out.w; ++x) {
      float* __restrict o = out + (size_t(y) * l.out.w + x) * oc;
      for (int c = 0; c < oc; ++c) o[c] = bias[c];
      for (int ky = 0; ky < k; ++ky) {
        const int iy = y * l.stride - l.pad + ky;
        if (iy < 0 || iy >= l.in.h) continue;
        for (int kx = 0; kx < k; ++kx) {
          const int ix = x * l.stride - l.pad + kx;
          if (ix < 0 || ix >= l.in.w) continue;
          const float* __restrict px = in + (size_t(iy) * l.in.w + ix) * ic;
          const float* __restrict w = wt + size_t(ky * k + kx) * ic * oc;
          for (int i = 0; i < ic; ++i) {
            const float v = px[i];
            const float* __restrict wi = w + size_t(i) * oc;
            for (int c = 0; c < oc; ++c) o[c] += v * wi[c];
          }
        }
      }
      Activate(o, oc, l.act, l.leaky_slope);
    }
  }
}

std::vector<float> RepackConvWeights(const Layer& l) {
  const int oc = l.out.c, ic = l.in.c, k = l.kernel;
  std::vector<float> w(l.weights.size());
  for (int o = 0; o < oc; ++o) {
    for (int t = 0; t < k * k; ++t) {
      for (int i = 0; i < ic; ++i) {
        w[(size_t(t) * ic + i) * oc + o] = l.weights[(size_t(o) * k * k + t) * ic + i];
      }
    }
  }
  return w;
}

namespace {

constexpr int kFcLanes = 16;

// One output of a fully connected layer: bias + the dot product of a weight row with the
// input, in kFcLanes independent lanes (they vectorise without reassociating a reduction),
// summed last, in order, as FullyConnectedRows sums its groups of four.
inline float FcDot(const float* __restrict w, const float* __restrict in, size_t n, float bias) {
  float lanes[kFcLanes] = {};
  const size_t body = n / kFcLanes * kFcLanes;
  for (size_t i = 0; i < body; i += kFcLanes) {
    for (int k = 0; k < kFcLanes; ++k) lanes[k] += w[i + k] * in[i + k];
  }
  float sum = bias;
  for (size_t i = body; i < n; ++i) sum += w[i] * in[i];
  for (float v : lanes) sum += v;
  return sum;
}

}  // namespace

EDGEFD_KERNEL
void FullyConnectedRows(const Layer& l, const float* __restrict in, float* __restrict out,
                        int out_begin, int out_end) {
  const size_t n = l.in.Elements();
  const float* __restrict w = l.weights.data();
  const float* bias = l.bias.data();
  const size_t body = n / kFcLanes * kFcLanes;
  int o = out_begin;
  // Four rows at a time share each load of the input: at batch 1 the layer streams its
  // weights once, and that stream is the whole cost.
  for (; o + 4 <= out_end; o += 4) {
    const float* __restrict w0 = w + size_t(o) * n;
    const float* __restrict w1 = w0 + n;
    const float* __restrict w2 = w1 + n;
    const float* __restrict w3 = w2 + n;
    float a0[kFcLanes] = {}, a1[kFcLanes] = {}, a2[kFcLanes] = {}, a3[kFcLanes] = {};
    for (size_t i = 0; i < body; i += kFcLanes) {
      for (int k = 0; k < kFcLanes; ++k) {
        const float x = in[i + k];
        a0[k] += w0[i + k] * x;
        a1[k] += w1[i + k] * x;
        a2[k] += w2[i + k] * x;
        a3[k] += w3[i + k] * x;
      }
    }
    float s0 = bias[o], s1 = bias[o + 1], s2 = bias[o + 2], s3 = bias[o + 3];
    for (size_t i = body; i < n; ++i) {
      s0 += w0[i] * in[i];
      s1 += w1[i] * in[i];
      s2 += w2[i] * in[i];
      s3 += w3[i] * in[i];
    }
    for (int k = 0; k < kFcLanes; ++k) {
      s0 += a0[k];
      s1 += a1[k];
      s2 += a2[k];
      s3 += a3[k];
    }
    out[o] = s0;
    out[o + 1] = s1;
    out[o + 2] = s2;
    out[o + 3] = s3;
  }
  for (; o < out_end; ++o) out[o] = FcDot(w + size_t(o) * n, in, n, bias[o]);
  Activate(out + out_begin, out_end - out_begin, l.act, l.leaky_slope);
}

}  // namespace edgefd::runtime
