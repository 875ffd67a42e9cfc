// The planner's cost model and search (planner.h).
#include "edgefd/runtime/planner.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>

#include "edgefd/common/cpu_list.h"
#include "edgefd/runtime/partition.h"
#include "edgefd/runtime/transport.h"

namespace edgefd::runtime {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
/// More (node, class) slots than this and only the fastest are searched (the search is
/// exhaustive over their orders).
constexpr size_t kMaxSlots = 7;
constexpr int kMaxPlannedStages = 6;

// Single-precision FLOPs per cycle and core a CPU of this architecture sustains on
// convolutions, for the estimate without a calibration: half of the FMA peak of its usual SIMD
// width (AVX2 on amd64, NEON on arm64/arm).
double FlopsPerCycle(const std::string& arch) {
  if (arch == "amd64") return 16;
  if (arch == "arm64") return 8;
  return 4;
}

// What runs where: a (node, class) and how fast it computes each layer.
struct Slot {
  int node = 0;
  const CoreClass* cls = nullptr;
  ClassSpeed speed;
  std::vector<double> prefix;  // prefix[i]: ms of layers [0, i)
  double Ms(int first, int last) const { return prefix[last] - prefix[first]; }
};

std::vector<double> LayerMsFromGflops(const Model& model, double gflops) {
  std::vector<double> ms;
  for (const Layer& l : model.layers) ms.push_back(l.Flops() / (gflops * 1e6));
  return ms;
}

// Calibrated layer times for `threads`, scaling the nearest measured count linearly.
std::vector<double> CalibratedMs(const Calibration::Class& c, int threads, int* measured) {
  auto it = c.layer_ms.lower_bound(threads);
  if (it == c.layer_ms.end() || (it->first != threads && it != c.layer_ms.begin())) --it;
  *measured = it->first;
  std::vector<double> ms = it->second;
  for (double& v : ms) v *= double(it->first) / double(threads);
  return ms;
}

std::vector<Slot> MakeSlots(const Model& model, const std::vector<NodeInventory>& nodes,
                            const PlannerOptions& o, std::vector<std::string>* notes) {
  std::vector<Slot> slots;
  for (size_t n = 0; n < nodes.size(); ++n) {
    for (const CoreClass& c : nodes[n].classes) {
      Slot s{int(n), &c, SpeedOf(nodes[n], c, model, o), {0.0}};
      for (double ms : s.speed.layer_ms) s.prefix.push_back(s.prefix.back() + ms);
      if (!s.speed.calibrated) {
        notes->push_back(nodes[n].name + " " + c.name + ": " + s.speed.basis);
      } else if (!s.speed.links_measured) {
        notes->push_back(nodes[n].name + " " + c.name +
                         ": the links' per-frame work is not calibrated (a calibration from "
                         "before 'calibrate' measured it, or a published figure): assumed");
      }
      slots.push_back(std::move(s));
    }
  }
  if (slots.size() > kMaxSlots) {
    std::stable_sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) {
      return a.prefix.back() < b.prefix.back();
    });
    notes->push_back("searched the " + std::to_string(kMaxSlots) + " fastest of " +
                     std::to_string(slots.size()) + " (node, core class) slots");
    slots.resize(kMaxSlots);
  }
  return slots;
}

double LinkMbps(const std::vector<NodeInventory>& nodes, int a, int b, const PlannerOptions& o) {
  double mbps = o.link_mbps;
  for (int n : {a, b}) {
    if (nodes[size_t(n)].link_mbps) mbps = std::min(mbps, *nodes[size_t(n)].link_mbps);
  }
  return mbps;
}

size_t CutBytes(const Model& model, int last, WireFormat format) {
  return WireBytes(format, model.layers[size_t(last - 1)].out.Elements());
}

// Bytes on the link per frame for every cut: after layer `last`, in each wire format, sent by
// the stage with `upstream` stages before it (each adds its times to the frame's head). Each
// gRPC message is serialised once here, not once per placement the search prices.
class LinkSizes {
 public:
  LinkSizes(const Model& model, int stages, const PlannerOptions& o)
      : layers_(model.layers.size()) {
    for (int upstream = 0; upstream < stages; ++upstream) {
      for (const Layer& layer : model.layers) {
        for (WireFormat f : kFormats) {
          const Shape wire = WireShape(layer.out, f);
          bytes_.push_back(LinkBytes(GrpcFrameMessageBytes(wire, upstream + 1), o.framing));
        }
      }
    }
  }
  size_t Of(int last, WireFormat format, int upstream) const {
    return bytes_[(size_t(upstream) * layers_ + size_t(last - 1)) * kFormats.size() +
                  size_t(format)];
  }

 private:
  static constexpr std::array<WireFormat, 3> kFormats = {WireFormat::kFloat32, WireFormat::kFloat16,
                                                         WireFormat::kInt8};
  size_t layers_;
  std::vector<size_t> bytes_;
};

// A copy of `bytes` on `slot`'s core, ms.
double CopyMs(const Slot& slot, size_t bytes) {
  return double(bytes) / (slot.speed.links.copy_gbps * 1e6);
}

// The hop after layer `last` from slot `from` (the stage with `upstream` stages before it) to
// slot `to` in `format`: transfer ms (the copy into shared memory on `from`'s core, or the
// time of the frame's bytes on the link between nodes, framing and headers included).
double HopMs(const Model& model, const std::vector<NodeInventory>& nodes, const LinkSizes& sizes,
             const Slot& from, const Slot& to, int last, WireFormat format, int upstream,
             const PlannerOptions& o) {
  if (from.node == to.node) return CopyMs(from, CutBytes(model, last, format));
  const double mbps = LinkMbps(nodes, from.node, to.node, o);
  return double(sizes.Of(last, format, upstream)) * 8.0 / (mbps * 1e3) + o.hop_ms;
}

// Encoding (`encode`) or decoding the cut after layer `last` in `format` on `slot`'s core.
double CodecMs(const Model& model, const Slot& slot, int last, WireFormat format, bool encode) {
  if (format == WireFormat::kFloat32) return 0;
  const auto& table = encode ? slot.speed.links.encode_ns : slot.speed.links.decode_ns;
  auto it = table.find(WireFormatName(format));
  const double ns = it == table.end() ? 1.0 : it->second;
  return double(model.layers[size_t(last - 1)].out.Elements()) * ns / 1e6;
}

// One end's share of a gRPC hop's work on its own core (LinkCosts: half each).
double LinkShareMs(const Slot& slot, size_t bytes) {
  const LinkCosts& l = slot.speed.links;
  return 0.5 * (l.hop_ms + double(bytes) * l.hop_ns_per_byte / 1e6);
}

// Costs of one stage on `slot` over [first, last): compute, decode of its input (format
// `in`, from `prev`; null: the first stage), encode of its output (`out`), the links' work on
// its core and the hop to `next` (null: the last stage). A hop to another node overlaps the
// next frame's compute (the gRPC sender lends its buffer and computes into another), so there
// the slower of the two sets the pace; a hop through shared memory is a copy on the stage's
// own thread. The links' work (receiving, sending, the source's copy of each frame into its
// ring on the first stage's node, the sink's read on the last one's) runs on the stage's
// cores and competes with its compute.
struct StageCost {
  double compute = 0, codec = 0, io = 0, transfer = 0;
  bool remote = false;
  double Cycle() const {
    const double busy = compute + codec + io;
    return remote ? std::max(busy, transfer) : busy + transfer;
  }
  double Latency() const { return compute + codec + io + transfer; }
};

StageCost CostOf(const Model& model, const std::vector<NodeInventory>& nodes,
                 const LinkSizes& sizes, const Slot& slot, int index, int first, int last,
                 WireFormat in, WireFormat out, const Slot* prev, const Slot* next,
                 const PlannerOptions& o) {
  StageCost c;
  c.compute = slot.Ms(first, last);
  if (first == 0) {
    c.io += CopyMs(slot, model.Input().Bytes());  // the source's frame into the first ring
  } else {
    c.codec += CodecMs(model, slot, first, in, false);
    if (prev != nullptr && prev->node != slot.node) {
      c.io += LinkShareMs(slot, CutBytes(model, first, in));
    }
  }
  if (next != nullptr) {
    c.codec += CodecMs(model, slot, last, out, true);
    c.transfer = HopMs(model, nodes, sizes, slot, *next, last, out, index, o);
    c.remote = next->node != slot.node;
    if (c.remote) c.io += LinkShareMs(slot, CutBytes(model, last, out));
  } else {
    c.io += CopyMs(slot, CutBytes(model, last, WireFormat::kFloat32));  // the sink's read
  }
  return c;
}

// (bottleneck, latency), compared one way or the other.
struct Score {
  double bottleneck = kInf, latency = kInf;
};

struct Placement {
  Score score;
  std::vector<int> cuts;            // stage k covers [cuts[k], cuts[k+1])
  std::vector<WireFormat> formats;  // format of the cut after stage k
  std::vector<int> slots;
};

// Exact DP over cuts and formats for one ordered list of slots: minimises (bottleneck,
// latency) lexicographically, or (latency, bottleneck) with `by_latency`.
Placement BestCuts(const Model& model, const std::vector<NodeInventory>& nodes,
                   const LinkSizes& sizes, const std::vector<Slot>& all,
                   const std::vector<int>& order, bool by_latency, const PlannerOptions& o) {
  const int n = int(model.layers.size());
  const int k_count = int(order.size());
  const int f_count = int(o.formats.size());
  auto better = [by_latency](const Score& a, const Score& b) {
    if (by_latency) {
      return a.latency < b.latency || (a.latency == b.latency && a.bottleneck < b.bottleneck);
    }
    return a.bottleneck < b.bottleneck || (a.bottleneck == b.bottleneck && a.latency < b.latency);
  };
  // best[k][j][f]: stages 0..k cover [0, j), the cut after stage k in format f.
  struct Cell {
    Score score;
    int from = -1, from_format = 0;
  };
  std::vector<std::vector<std::vector<Cell>>> best(
      size_t(k_count), std::vector<std::vector<Cell>>(size_t(n + 1), std::vector<Cell>(f_count)));
  for (int k = 0; k < k_count; ++k) {
    const Slot& slot = all[size_t(order[size_t(k)])];
    const bool last_stage = k == k_count - 1;
    const Slot* next = last_stage ? nullptr : &all[size_t(order[size_t(k) + 1])];
    const Slot* prev_slot = k == 0 ? nullptr : &all[size_t(order[size_t(k) - 1])];
    // Between two stages of one node frames go through shared memory, as float32.
    const int out_formats = last_stage || next->node == slot.node ? 1 : f_count;
    for (int j = k + 1; j <= n - (k_count - 1 - k); ++j) {
      if (last_stage && j != n) continue;
      for (int fo = 0; fo < out_formats; ++fo) {
        Cell& cell = best[size_t(k)][size_t(j)][size_t(fo)];
        for (int i = k; i < j; ++i) {
          for (int fi = 0; fi < (k == 0 ? 1 : f_count); ++fi) {
            Score prev{0, 0};
            if (k > 0) {
              prev = best[size_t(k - 1)][size_t(i)][size_t(fi)].score;
              if (!std::isfinite(prev.bottleneck)) continue;
            } else if (i != 0) {
              continue;
            }
            StageCost c = CostOf(model, nodes, sizes, slot, k, i, j, o.formats[size_t(fi)],
                                 o.formats[size_t(fo)], prev_slot, next, o);
            Score s{std::max(prev.bottleneck, c.Cycle()), prev.latency + c.Latency()};
            if (better(s, cell.score)) cell = Cell{s, i, fi};
          }
        }
      }
    }
  }
  Placement p;
  p.score = best[size_t(k_count - 1)][size_t(n)][0].score;
  if (!std::isfinite(p.score.bottleneck)) return p;
  p.slots = order;
  p.cuts.assign(size_t(k_count + 1), 0);
  p.formats.assign(size_t(k_count), WireFormat::kFloat32);
  p.cuts[size_t(k_count)] = n;
  int j = n, f = 0;
  for (int k = k_count - 1; k >= 0; --k) {
    const Cell& cell = best[size_t(k)][size_t(j)][size_t(f)];
    p.formats[size_t(k)] = o.formats[size_t(f)];
    p.cuts[size_t(k)] = cell.from;
    j = cell.from;
    f = cell.from_format;
  }
  return p;
}

// Every ordered choice of `k` distinct slots, each passed to `visit`.
template <typename Visit>
void ForEachOrder(int slot_count, int k, std::vector<int>& order, std::vector<bool>& used,
                  Visit& visit) {
  if (int(order.size()) == k) {
    visit(order);
    return;
  }
  for (int s = 0; s < slot_count; ++s) {
    if (used[size_t(s)]) continue;
    used[size_t(s)] = true;
    order.push_back(s);
    ForEachOrder(slot_count, k, order, used, visit);
    order.pop_back();
    used[size_t(s)] = false;
  }
}

std::vector<PlannedStage> StagesOf(const Placement& p, const std::vector<Slot>& slots,
                                   const std::vector<NodeInventory>& nodes) {
  std::vector<PlannedStage> stages;
  for (size_t k = 0; k < p.slots.size(); ++k) {
    const Slot& s = slots[size_t(p.slots[k])];
    PlannedStage st;
    st.first = p.cuts[k];
    st.last = p.cuts[k + 1];
    st.node = s.node;
    st.node_name = nodes[size_t(s.node)].name;
    st.core_class = s.cls->name;
    st.cpus = s.cls->cpus;
    st.wire = p.formats[k];
    stages.push_back(st);
  }
  return stages;
}

Status CheckNodes(const std::vector<NodeInventory>& nodes) {
  size_t cores = 0;
  for (const NodeInventory& n : nodes) {
    for (const CoreClass& c : n.classes) cores += c.cpus.size();
  }
  if (nodes.empty() || cores == 0) {
    std::string names;
    for (const NodeInventory& n : nodes) names += (names.empty() ? "" : ", ") + n.origin;
    return Error{"no usable node: " + (names.empty() ? std::string("none given") : names) +
                 " list no core to place a stage on"};
  }
  return Ok{};
}

}  // namespace

size_t LinkBytes(size_t message_bytes, const LinkFraming& f) {
  // gRPC over HTTP/2: each message is a 1-byte compressed flag and a 4-byte length, then the
  // message, carried in DATA frames with a 9-byte header each (RFC 9113, 4.1).
  constexpr size_t kGrpcPrefix = 5, kHttp2FrameHeader = 9;
  const size_t body = message_bytes + kGrpcPrefix;
  const size_t max_frame = size_t(std::max(1, f.http2_max_frame));
  const size_t stream = body + kHttp2FrameHeader * ((body + max_frame - 1) / max_frame);
  // TCP cuts the stream into segments of at most the MSS (the last one partly filled); each
  // carries the TCP and IP headers and the link layer's.
  const size_t mss = size_t(std::max(1, f.Mss()));
  const size_t per_segment = size_t(std::max(0, f.PacketBytes() - f.Mss()));
  return stream + per_segment * ((stream + mss - 1) / mss);
}

ClassSpeed SpeedOf(const NodeInventory& node, const CoreClass& cls, const Model& model,
                   const PlannerOptions& o) {
  ClassSpeed s;
  s.links.hop_ms = o.link_hop_ms;
  s.links.hop_ns_per_byte = o.link_ns_per_byte;
  s.links.copy_gbps = o.local_gbps;
  for (WireFormat f : {WireFormat::kFloat16, WireFormat::kInt8}) {
    s.links.encode_ns[WireFormatName(f)] = o.codec_ms_per_element * 1e6;
    s.links.decode_ns[WireFormatName(f)] = o.codec_ms_per_element * 1e6;
  }
  const int threads = int(cls.cpus.size());
  if (node.calibration) {
    if (const Calibration::Class* c = node.calibration->Find(cls.name); c && c->links) {
      s.links = *c->links;
      if (s.links.copy_gbps <= 0) s.links.copy_gbps = o.local_gbps;
      s.links_measured = true;
    }
    const Calibration::Class* c = node.calibration->Find(cls.name);
    // CheckCalibrationFor refuses another model's file; this keeps a caller that did not
    // check from indexing past the model's layers.
    if (c != nullptr && !c->layer_ms.empty() &&
        c->layer_ms.begin()->second.size() != model.layers.size()) {
      c = nullptr;
    }
    if (c != nullptr) {
      int measured = 0;
      s.layer_ms = CalibratedMs(*c, threads, &measured);
      s.calibrated = true;
      s.basis = "calibrated, " + std::to_string(measured) + " thread(s)";
      if (measured != threads) s.basis += " scaled to " + std::to_string(threads);
      return s;
    }
  }
  if (cls.published_gflops) {
    const int cores = cls.published_cores > 0 ? cls.published_cores : threads;
    s.layer_ms = LayerMsFromGflops(model, *cls.published_gflops * threads / cores);
    s.calibrated = true;
    s.basis = cls.published_from;
    return s;
  }
  // capacity already holds the class's clock (DMIPS/MHz x max MHz, the largest core 1024):
  // the absolute scale is the clock of the node's largest cores.
  int mhz = 0;
  for (const CoreClass& c : node.classes) {
    if (c.max_mhz > 0 && (mhz == 0 || c.capacity >= 1024)) mhz = c.max_mhz;
  }
  const bool known = mhz > 0;
  if (!known) mhz = 1500;
  const double gflops =
      double(cls.capacity) / 1024.0 * mhz / 1000.0 * FlopsPerCycle(node.arch) * threads;
  s.layer_ms = LayerMsFromGflops(model, gflops);
  s.basis = "no calibration: estimated from capacity x max-MHz (" + std::to_string(cls.capacity) +
            "/1024 x " + (known ? std::to_string(mhz) : "1500, assumed,") +
            " MHz of the largest cores)";
  return s;
}

Plan PricePlan(const Model& model, const std::vector<NodeInventory>& nodes,
               std::vector<PlannedStage> stages, const PlannerOptions& o) {
  Plan plan;
  plan.model = model.name;
  const LinkSizes sizes(model, int(stages.size()), o);
  std::vector<Slot> slots;
  for (const PlannedStage& st : stages) {
    const NodeInventory& node = nodes[size_t(st.node)];
    const CoreClass* cls = &node.classes.front();
    for (const CoreClass& c : node.classes) {
      if (c.name == st.core_class) cls = &c;
    }
    Slot s{st.node, cls, SpeedOf(node, *cls, model, o), {0.0}};
    for (double ms : s.speed.layer_ms) s.prefix.push_back(s.prefix.back() + ms);
    slots.push_back(std::move(s));
  }
  for (size_t k = 0; k < stages.size(); ++k) {
    PlannedStage& st = stages[k];
    const bool last = k + 1 == stages.size();
    if (last) st.wire = WireFormat::kFloat32;
    const WireFormat in = k == 0 ? WireFormat::kFloat32 : stages[k - 1].wire;
    StageCost c = CostOf(model, nodes, sizes, slots[k], int(k), st.first, st.last, in, st.wire,
                         k == 0 ? nullptr : &slots[k - 1], last ? nullptr : &slots[k + 1], o);
    st.compute_ms = c.compute;
    st.codec_ms = c.codec;
    st.io_ms = c.io;
    st.transfer_ms = c.transfer;
    st.speed_basis = slots[k].speed.basis;
    st.remote = !last && slots[k + 1].node != slots[k].node;
    st.wire_bytes = last ? 0 : WireBytes(st.wire, model.layers[size_t(st.last - 1)].out.Elements());
    st.link_bytes = st.remote ? sizes.Of(st.last, st.wire, int(k)) : 0;
    st.max_error = WireErrorBound(st.wire);
    plan.latency_ms += c.Latency();
    if (st.CycleMs() > plan.bottleneck_ms) {
      plan.bottleneck_ms = st.CycleMs();
      plan.bottleneck_stage = int(k);
    }
  }
  plan.stages = std::move(stages);
  return plan;
}

Result<Plan> MakePlan(const Model& model, const std::vector<NodeInventory>& nodes,
                      const PlannerOptions& o) {
  if (Status s = CheckNodes(nodes); !s) return s.error();
  std::vector<std::string> notes;
  const std::vector<Slot> slots = MakeSlots(model, nodes, o, &notes);
  const int n = int(model.layers.size());
  const int max_k = std::min({int(slots.size()), n, kMaxPlannedStages});
  if (o.stages > max_k) {
    return Error{"--stages " + std::to_string(o.stages) + ": only " + std::to_string(max_k) +
                 " stage(s) can be placed (one per node and core class, at most " +
                 std::to_string(std::min(n, kMaxPlannedStages)) + " for " + model.name + ")"};
  }
  const LinkSizes sizes(model, max_k, o);
  Placement best;
  double min_latency = kInf;
  auto consider = [&](const Placement& p) {
    if (!std::isfinite(p.score.bottleneck)) return;
    min_latency = std::min(min_latency, p.score.latency);
    if (o.latency_ms > 0 && p.score.latency > o.latency_ms) return;
    const Score& b = best.score;
    if (p.score.bottleneck < b.bottleneck ||
        (p.score.bottleneck == b.bottleneck && p.score.latency < b.latency)) {
      best = p;
    }
  };
  for (int k = o.stages > 0 ? o.stages : 1; k <= (o.stages > 0 ? o.stages : max_k); ++k) {
    std::vector<int> order;
    std::vector<bool> used(slots.size(), false);
    auto visit = [&](const std::vector<int>& ord) {
      consider(BestCuts(model, nodes, sizes, slots, ord, false, o));
      if (o.latency_ms > 0) consider(BestCuts(model, nodes, sizes, slots, ord, true, o));
    };
    ForEachOrder(int(slots.size()), k, order, used, visit);
  }
  if (best.slots.empty()) {
    char text[256];
    std::snprintf(text, sizeof text,
                  "no placement of %s meets --latency-ms %.3g: the fastest takes %.1f ms per "
                  "frame",
                  model.name.c_str(), o.latency_ms, min_latency);
    return Error{text};
  }
  Plan plan = PricePlan(model, nodes, StagesOf(best, slots, nodes), o);
  plan.notes = std::move(notes);
  return plan;
}

Result<Plan> EqualComputePlan(const Model& model, const std::vector<NodeInventory>& nodes,
                              int stages, const PlannerOptions& o) {
  if (Status s = CheckNodes(nodes); !s) return s.error();
  std::vector<std::string> notes;
  const std::vector<Slot> slots = MakeSlots(model, nodes, o, &notes);
  if (stages < 1 || stages > int(slots.size())) {
    return Error{"equal-compute split: " + std::to_string(stages) + " stage(s), " +
                 std::to_string(slots.size()) + " slot(s)"};
  }
  PartitionOptions p;
  p.stages = stages;
  p.link_mbps = 0;  // compute alone: the naive split
  auto split = Partition(model, p);
  if (!split) return split.error();
  Placement placement;
  for (int k = 0; k < stages; ++k) {
    placement.cuts.push_back(split->stages[size_t(k)].first);
    placement.slots.push_back(k);
    placement.formats.push_back(WireFormat::kFloat32);
  }
  placement.cuts.push_back(int(model.layers.size()));
  Plan plan = PricePlan(model, nodes, StagesOf(placement, slots, nodes), o);
  plan.notes = std::move(notes);
  return plan;
}

std::string FormatPlanText(const Model& model, const Plan& plan) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%s: %zu stage(s), predicted %.1f frames/s, latency %.1f ms\n",
                model.name.c_str(), plan.stages.size(), plan.PredictedFps(), plan.latency_ms);
  out += line;
  std::snprintf(line, sizeof line, "%-5s %-18s %-16s %-14s %10s %8s %6s %11s %-8s %10s\n", "stage",
                "layers", "node", "class", "compute ms", "codec ms", "io ms", "transfer ms", "wire",
                "bytes out");
  out += line;
  for (size_t k = 0; k < plan.stages.size(); ++k) {
    const PlannedStage& s = plan.stages[k];
    std::string layers = model.layers[size_t(s.first)].name;
    if (s.last - s.first > 1) layers += ".." + model.layers[size_t(s.last - 1)].name;
    const bool last = k + 1 == plan.stages.size();
    std::snprintf(line, sizeof line,
                  "%-5zu %-18s %-16s %-14s %10.2f %8.2f %6.2f %11.2f %-8s %10zu%s\n", k,
                  layers.c_str(), s.node_name.c_str(),
                  (s.core_class + ":" + FormatCpuList(s.cpus)).c_str(), s.compute_ms, s.codec_ms,
                  s.io_ms, s.transfer_ms, last ? "-" : WireFormatName(s.wire).c_str(), s.wire_bytes,
                  int(k) == plan.bottleneck_stage ? "  <- bottleneck" : "");
    out += line;
  }
  for (const PlannedStage& s : plan.stages) {
    if (s.max_error > 0) {
      std::snprintf(line, sizeof line,
                    "cut after %s: %s, error against float32 at most %.2g of the tensor's "
                    "largest magnitude\n",
                    model.layers[size_t(s.last - 1)].name.c_str(), WireFormatName(s.wire).c_str(),
                    s.max_error);
      out += line;
    }
  }
  for (const std::string& note : plan.notes) out += "note: " + note + "\n";
  return out;
}

Json PlanToJson(const Model& model, const Plan& plan) {
  Json stages = Json::array();
  for (size_t k = 0; k < plan.stages.size(); ++k) {
    const PlannedStage& s = plan.stages[k];
    const bool last = k + 1 == plan.stages.size();
    stages.push_back({{"index", k},
                      {"first_layer", s.first},
                      {"last_layer", s.last - 1},
                      {"layers", model.layers[size_t(s.first)].name + ".." +
                                     model.layers[size_t(s.last - 1)].name},
                      {"node", s.node_name},
                      {"core_class", s.core_class},
                      {"cpus", s.cpus},
                      {"speed", s.speed_basis},
                      {"compute_ms", RoundTo(s.compute_ms, 3)},
                      {"codec_ms", RoundTo(s.codec_ms, 3)},
                      {"io_ms", RoundTo(s.io_ms, 3)},
                      {"transfer_ms", RoundTo(s.transfer_ms, 3)},
                      {"cycle_ms", RoundTo(s.CycleMs(), 3)},
                      {"wire", last ? Json(nullptr) : Json(WireFormatName(s.wire))},
                      {"wire_bytes", s.wire_bytes},
                      {"link_bytes", s.link_bytes},
                      {"remote", s.remote},
                      {"max_error", s.max_error}});
  }
  return {{"model", model.name},
          {"predicted_fps", RoundTo(plan.PredictedFps(), 2)},
          {"bottleneck_ms", RoundTo(plan.bottleneck_ms, 3)},
          {"bottleneck_stage", plan.bottleneck_stage},
          {"latency_ms", RoundTo(plan.latency_ms, 3)},
          {"stages", std::move(stages)},
          {"notes", plan.notes}};
}

}  // namespace edgefd::runtime
