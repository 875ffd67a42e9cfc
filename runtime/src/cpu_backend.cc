#include <omp.h>

#include <algorithm>
#include <functional>
#include <memory>
#include <numeric>
#ifdef EDGEFD_HAVE_ONEDNN
#include <oneapi/dnnl/dnnl.hpp>
#endif

#include "edgefd/runtime/backend.h"
#include "edgefd/runtime/devices.h"
#include "edgefd/runtime/kernels.h"
#include "edgefd/runtime/tensor.h"
#include "edgefd/runtime/work_team.h"

namespace edgefd::runtime {
namespace {

/// One step of the compiled range: reads `in`, writes `out`.
struct Op {
  std::string description;
  int first_layer = 0;
  int layer_count = 1;
  Shape out;
  std::function<void(const float*, float*)> run;
};

#ifdef EDGEFD_HAVE_ONEDNN
using dnnl::memory;
using Tag = memory::format_tag;
using Dt = memory::data_type;

dnnl::post_ops ActivationPostOps(Activation act, float slope) {
  dnnl::post_ops po;
  if (act == Activation::kRelu) po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  if (act == Activation::kLeaky) {
    po.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, slope, 0.0f);
  }
  return po;
}
#endif

class CpuExecutor final : public Executor {
 public:
  CpuExecutor(const Model& model, int first, int last, const ExecOptions& options)
      : model_(model), first_(first), last_(last), options_(options) {}

  Status Build() {
    // oneDNN sizes its kernels' work split for the thread count current at creation.
    omp_set_num_threads(Threads());
#ifdef EDGEFD_HAVE_ONEDNN
    try {
      BuildOps();
    } catch (const dnnl::error& e) {
      return Error{"oneDNN could not build layers " + std::to_string(first_) + ".." +
                   std::to_string(last_) + " of " + model_.name + ": " + e.what()};
    }
    // One scratchpad for every oneDNN op of this executor (they run one after the other).
    dnnl_scratch_.Reserve(scratch_bytes_ / sizeof(float) + 1);
    for (const auto& m : scratchpads_) m->set_data_handle(dnnl_scratch_.data());
#else
    BuildOps();
#endif
    if (Threads() > 1) team_ = std::make_unique<WorkTeam>(Threads(), options_.cpus);
    size_t max_elems = 0;
    for (const Op& op : ops_) max_elems = std::max(max_elems, op.out.Elements());
    ping_.Reserve(max_elems);
    pong_.Reserve(max_elems);
    return Ok{};
  }

  Shape InputShape() const override { return model_.layers[first_].in; }
  Shape OutputShape() const override { return model_.layers[last_ - 1].out; }

  void Run(const float* in, float* out) override {
    omp_set_num_threads(options_.threads);
    if (!pinned_) {
      // Pin the team of the thread that runs us (GOMP keeps one team per calling thread).
      PinTeam();
      pinned_ = true;
    }
    const float* src = in;
    for (size_t i = 0; i < ops_.size(); ++i) {
      float* dst = i + 1 == ops_.size() ? out : (i % 2 == 0 ? ping_.data() : pong_.data());
      ops_[i].run(src, dst);
      src = dst;
    }
  }

  std::vector<double> ProfileLayers(int iterations) override {
    omp_set_num_threads(options_.threads);
    std::vector<double> per_layer(last_ - first_, 0.0);
    Buffer in(InputShape().Elements());
    FillUniform(in.data(), InputShape().Elements(), 7, 0.0f, 1.0f);
    Buffer a(ping_.size()), b(ping_.size());
    // Whole passes, each op once per pass, as frames run them: an op repeated back to back
    // finds its weights and input in the caches, which in a pipeline the other layers (and
    // the frames' own traffic) have evicted; on the 2-vCPU VMs such warm figures ran 15 to
    // 20 % faster than the pipeline's stages did (issue 19).
    std::vector<std::vector<double>> t(ops_.size());
    for (int k = 0; k < std::max(1, iterations); ++k) {
      const float* src = in.data();
      for (size_t i = 0; i < ops_.size(); ++i) {
        float* dst = i % 2 == 0 ? a.data() : b.data();
        int64_t t0 = NowNs();
        ops_[i].run(src, dst);
        t[i].push_back(double(NowNs() - t0) / 1e6);
        src = dst;
      }
    }
    for (size_t i = 0; i < ops_.size(); ++i) {
      // The mean, not the median: frames per second follow the mean time per frame, which on
      // a shared machine includes the slices other programs take; only the slowest pass of
      // three or more is left out (a page fault, a migration).
      std::sort(t[i].begin(), t[i].end());
      if (t[i].size() >= 3) t[i].pop_back();
      const double mean = std::accumulate(t[i].begin(), t[i].end(), 0.0) / double(t[i].size());
      // A fused op's time is shared among its layers by FLOPs.
      double flops = model_.Flops(ops_[i].first_layer, ops_[i].first_layer + ops_[i].layer_count);
      for (int l = 0; l < ops_[i].layer_count; ++l) {
        int idx = ops_[i].first_layer + l;
        per_layer[idx - first_] = mean * model_.layers[idx].Flops() / flops;
      }
    }
    return per_layer;
  }

  std::vector<std::string> Plan() const override {
    std::vector<std::string> plan;
    for (const Op& op : ops_) plan.push_back(op.description);
    return plan;
  }

 private:
  void PinTeam() {
    if (options_.cpus.empty()) return;
    (void)PinThisThread(options_.cpus);
    if (options_.threads <= 1) return;
    const std::vector<int>& cpus = options_.cpus;
    // The whole set, not one core per thread: on a node where other pods share the allocated
    // cores a thread must be free to move. GOMP keeps this calling thread's team, so it sticks.
#pragma omp parallel num_threads(options_.threads)
    { (void)PinThisThread(cpus); }
  }

  int Threads() const { return std::max(1, options_.threads); }

  // Splits [0, rows) among the runtime's own team (work_team.h: no OpenMP, whose idle threads
  // either spin or pay a wake-up per region); one thread runs inline.
  void ParallelRows(int rows, const std::function<void(int, int, int)>& body) {
    if (!team_ || rows < 2 * team_->threads()) {
      body(0, rows, 0);
      return;
    }
    team_->Run(rows, body);
  }

  bool IsSingleChannelConv3x3(const Layer& l) const {
    return l.kind == LayerKind::kConv && l.in.c == 1 && l.out.c == 1 && l.kernel == 3 &&
           l.stride == 1 && l.pad == 0;
  }

  void BuildOps() {
    for (int i = first_; i < last_;) {
      const Layer& l = model_.layers[i];
      // The thesis chain, fused: [normalize] conv3x3 (1ch) relu maxpool2x2.
      int j = i;
      const Layer* norm = nullptr;
      if (l.kind == LayerKind::kNormalize && l.in.c == 1) norm = &model_.layers[j++];
      if (options_.fuse && j + 2 < last_ && IsSingleChannelConv3x3(model_.layers[j]) &&
          model_.layers[j].act == Activation::kNone &&
          model_.layers[j + 1].kind == LayerKind::kActivation &&
          model_.layers[j + 1].act == Activation::kRelu &&
          model_.layers[j + 2].kind == LayerKind::kMaxPool && model_.layers[j + 2].kernel == 2 &&
          model_.layers[j + 2].stride == 2) {
        AddFused(norm, model_.layers[j], i, j + 3 - i);
        i = j + 3;
        continue;
      }
      AddSingle(i);
      ++i;
    }
  }

  void AddFused(const Layer* norm, const Layer& conv, int first, int count) {
    Op op;
    op.first_layer = first;
    op.layer_count = count;
    op.out = model_.layers[first + count - 1].out;
    op.description = std::string(norm ? "normalize+" : "") + "conv3x3+relu+maxpool2x2: fused";
    float scale = norm ? norm->scale : 1.0f, shift = norm ? norm->shift : 0.0f;
    Shape in = conv.in;
    int rows = op.out.h;
    scratch_.resize(Threads());
    for (Buffer& b : scratch_) b.Reserve(2 * size_t(in.w) + 16);
    op.run = [this, in, rows, scale, shift, &conv](const float* src, float* dst) {
      ParallelRows(rows, [&](int b, int e, int id) {
        FusedConvReluPool(src, in.h, in.w, conv.weights.data(), conv.bias[0], scale, shift, dst, b,
                          e, scratch_[id].data());
      });
    };
    ops_.push_back(std::move(op));
  }

  void AddSingle(int index) {
    const Layer& l = model_.layers[index];
    Op op;
    op.first_layer = index;
    op.out = l.out;
    op.description = l.name + ": ";
    switch (l.kind) {
      case LayerKind::kNormalize:
      case LayerKind::kActivation:
        op.description += "loop";
        op.run = [this, n = l.in.Elements(), &l](const float* s, float* d) {
          // Element-wise: split into 4096-float chunks among the team.
          ParallelRows(int(n / 4096 + 1), [&](int b, int e, int) {
            size_t lo = size_t(b) * 4096, hi = std::min(n, size_t(e) * 4096);
            if (lo >= hi) return;
            if (l.kind == LayerKind::kNormalize) {
              NormalizeKernel(s + lo, d + lo, hi - lo, l.scale, l.shift);
            } else {
              ActivationKernel(s + lo, d + lo, hi - lo, l.act, l.leaky_slope);
            }
          });
        };
        break;
      case LayerKind::kMaxPool:
        if (l.kernel == 2 && l.stride == 2) {
          op.description += "loop";
          op.run = [this, &l](const float* s, float* d) {
            ParallelRows(l.out.h, [&](int b, int e, int) { MaxPool2x2(s, l.in, d, b, e); });
          };
        } else {
          op.description += "reference";
          op.run = [&l](const float* s, float* d) { ReferenceLayer(l, s, d); };
        }
        break;
      case LayerKind::kConv:
        if (IsSingleChannelConv3x3(l) && l.act == Activation::kNone) {
          op.description += "loop";
          op.run = [this, &l](const float* s, float* d) {
            ParallelRows(l.out.h, [&](int b, int e, int) {
              Conv3x3SingleChannel(s, l.in.h, l.in.w, l.weights.data(), l.bias[0], d, b, e);
            });
          };
        } else {
          AddConvLayer(l, op);
        }
        break;
      case LayerKind::kFullyConnected:
        AddFcLayer(l, op);
        break;
    }
    ops_.push_back(std::move(op));
  }

  // Multi-channel conv layers: oneDNN, or where the build has none,
#ifndef EDGEFD_HAVE_ONEDNN
  // built without oneDNN (a target Debian has no build of it for): the runtime's own loop,
  // with the weights reordered once for it.
  void AddConvLayer(const Layer& l, Op& op) {
    op.description += "loop (no oneDNN)";
    auto w = std::make_shared<const std::vector<float>>(RepackConvWeights(l));
    op.run = [this, w, &l](const float* s, float* d) {
      ParallelRows(l.out.h, [&](int b, int e, int) { ConvLoop(l, w->data(), s, d, b, e); });
    };
  }

#else
  void AddConvLayer(const Layer& l, Op& op) {
    memory::dims src_dims{1, l.in.c, l.in.h, l.in.w};
    memory::dims wei_dims{l.out.c, l.in.c, l.kernel, l.kernel};
    memory::dims dst_dims{1, l.out.c, l.out.h, l.out.w};
    memory::desc src_md(src_dims, Dt::f32, Tag::nhwc);
    memory::desc dst_md(dst_dims, Dt::f32, Tag::nhwc);
    memory::desc wei_any(wei_dims, Dt::f32, Tag::any);
    memory::desc bias_md({l.out.c}, Dt::f32, Tag::a);
    // Right/bottom padding that makes oneDNN's output size equal ours on odd shapes.
    int pad_b = (l.out.h - 1) * l.stride + l.kernel - l.in.h - l.pad;
    int pad_r = (l.out.w - 1) * l.stride + l.kernel - l.in.w - l.pad;
    dnnl::convolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src_md, wei_any,
        bias_md, dst_md, {l.stride, l.stride}, {l.pad, l.pad}, {pad_b, pad_r});
    dnnl::convolution_forward::primitive_desc pd(desc, Attributes(l), engine_);
    AddDnnl(l, op, dnnl::convolution_forward(pd), pd.weights_desc(),
            memory::desc(wei_dims, Dt::f32, Tag::ohwi), src_md, dst_md, bias_md,
            pd.scratchpad_desc(), pd.impl_info_str());
  }

  // The activation as a post-op, and a scratchpad we own. oneDNN's own ("library") scratchpad
  // lives in the creating thread's storage: a stage thread running a primitive that the main
  // thread created wrote through a null scratchpad (SIGSEGV on arm64, where the convolutions
  // are im2col + GEMM and need one).
  dnnl::primitive_attr Attributes(const Layer& l) const {
    dnnl::primitive_attr attr;
    attr.set_post_ops(ActivationPostOps(l.act, l.leaky_slope));
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    return attr;
  }

  void AddDnnl(const Layer& l, Op& op, dnnl::primitive prim, const memory::desc& wei_md,
               const memory::desc& user_wei_md, const memory::desc& src_md,
               const memory::desc& dst_md, const memory::desc& bias_md,
               const memory::desc& scratch_md, const char* impl) {
    op.description += std::string("oneDNN ") + impl;
    // Reorder the weights into the kernel's preferred layout once.
    memory user_w(user_wei_md, engine_, const_cast<float*>(l.weights.data()));
    auto w = std::make_shared<memory>(wei_md, engine_);
    dnnl::reorder(user_w, *w).execute(stream_, user_w, *w);
    auto b = std::make_shared<memory>(bias_md, engine_, const_cast<float*>(l.bias.data()));
    auto src = std::make_shared<memory>(src_md, engine_, nullptr);
    auto dst = std::make_shared<memory>(dst_md, engine_, nullptr);
    auto scratch = std::make_shared<memory>(scratch_md, engine_, nullptr);  // set in Build()
    scratch_bytes_ = std::max(scratch_bytes_, scratch_md.get_size());
    scratchpads_.push_back(scratch);
    stream_.wait();
    op.run = [this, prim, w, b, src, dst, scratch](const float* s, float* d) {
      src->set_data_handle(const_cast<float*>(s));
      dst->set_data_handle(d);
      prim.execute(stream_, {{DNNL_ARG_SRC, *src},
                             {DNNL_ARG_WEIGHTS, *w},
                             {DNNL_ARG_BIAS, *b},
                             {DNNL_ARG_DST, *dst},
                             {DNNL_ARG_SCRATCHPAD, *scratch}});
      stream_.wait();
    };
  }

#endif

  // Fully connected layers, with or without oneDNN: at batch 1 a layer streams its weights
  // once (yolo-tiny's fc1 is 51 MB), and oneDNN 2.6's inner product ran that stream on one
  // thread (fc1 3.9 ms at 1 thread and 4.0 at 2, where onnxruntime took 3.0 and 1.7). Blocks
  // of four outputs among the team, each thread streaming its own rows of the weights as they
  // are ([out][in]); the blocks start at multiples of 4, so the bits do not depend on the split.
  void AddFcLayer(const Layer& l, Op& op) {
    op.description += "loop";
    const int blocks = (l.out.c + 3) / 4;
    op.run = [this, blocks, &l](const float* s, float* d) {
      ParallelRows(blocks, [&](int b, int e, int) {
        FullyConnectedRows(l, s, d, b * 4, std::min(l.out.c, e * 4));
      });
    };
  }

  const Model& model_;
  int first_, last_;
  ExecOptions options_;
#ifdef EDGEFD_HAVE_ONEDNN
  dnnl::engine engine_{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream_{engine_};
  Buffer dnnl_scratch_;
  size_t scratch_bytes_ = 0;
  std::vector<std::shared_ptr<memory>> scratchpads_;
#endif
  std::vector<Op> ops_;
  Buffer ping_, pong_;
  std::vector<Buffer> scratch_;
  bool pinned_ = false;
  // Declared last, so its workers stop before anything their work touches goes.
  std::unique_ptr<WorkTeam> team_;
};

class CpuBackend final : public Backend {
 public:
  std::string Name() const override { return "cpu"; }
  Result<std::unique_ptr<Executor>> Compile(const Model& model, int first, int last,
                                            const ExecOptions& options) override {
    if (first < 0 || last > int(model.layers.size()) || first >= last) {
      return Error{"layers [" + std::to_string(first) + ", " + std::to_string(last) +
                   ") are not a range of " + model.name};
    }
    for (int i = first; i < last; ++i) {
      const Layer& l = model.layers[i];
      if (l.weights.size() != l.WeightCount() || l.bias.size() != l.BiasCount()) {
        return Error{model.name + " layer " + l.name + ": weights not loaded"};
      }
    }
    auto e = std::make_unique<CpuExecutor>(model, first, last, options);
    Status s = e->Build();
    if (!s) return s.error();
    return std::unique_ptr<Executor>(std::move(e));
  }
};

}  // namespace

std::unique_ptr<Backend> MakeCpuBackend() { return std::make_unique<CpuBackend>(); }

std::string OneDnnVersion() {
#ifdef EDGEFD_HAVE_ONEDNN
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
#else
  return "";
#endif
}

}  // namespace edgefd::runtime
