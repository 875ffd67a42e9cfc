#pragma once

// The pipeline planner (DESIGN.md, "Runtime contract", Planner): where each stage of a model
// should run across labelled nodes and links, and how fast that will be.
//
// Inputs: node inventories (`edgefd-labeller --dry-run --output json`, optionally restricted
// to some cores with "cpus": [..] and carrying a calibration), a calibration per node
// (`edgefd-pipeline calibrate`), link bandwidths. Output: stages, cuts, the node and core class
// of each stage, the wire format of each cut, and the predicted frames per second.

#include <algorithm>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "edgefd/common/json.h"
#include "edgefd/common/result.h"
#include "edgefd/runtime/model.h"
#include "edgefd/runtime/wire_format.h"

namespace edgefd::runtime {

/// The per-frame work links cost on one core of a class, beside compute (what `calibrate`
/// measures; the planner charges it to the stage whose cores do it).
struct LinkCosts {
  /// One frame over a gRPC link (loopback TCP), both ends on one core: hop_ms + bytes x
  /// hop_ns_per_byte. The planner charges half to the sender's stage, half to the receiver's.
  double hop_ms = 0;
  double hop_ns_per_byte = 0;
  /// memcpy of a frame (a shared-memory hop's copy, the source's frame into its ring), GB/s.
  double copy_gbps = 0;
  /// Wire format ("float16", "int8") -> ns per element to encode / decode.
  std::map<std::string, double> encode_ns, decode_ns;
};
Json LinkCostsJson(const LinkCosts& c);
Result<LinkCosts> ParseLinkCosts(const Json& j, const std::string& where);
/// Measures LinkCosts on `cpu` (in a child process, so gRPC's threads run there too).
Result<LinkCosts> CalibrateLinks(int cpu, int iterations);

/// Measured speed of one node's core classes for one model (`edgefd-pipeline calibrate`).
struct Calibration {
  std::string model;  ///< "yolo-tiny", "conv"
  std::string input;  ///< the model's input shape ("448x448x3"): conv models differ by size
  std::string cpu_model;
  struct Class {
    std::string name;  ///< "big", "mid", "little" (a homogeneous node's cores are "big")
    std::vector<int> cpus;
    /// threads -> milliseconds per layer of the model (median of short runs).
    std::map<int, std::vector<double>> layer_ms;
    /// threads -> layer kind ("conv", "fc", ...) -> GFLOP/s.
    std::map<int, std::map<std::string, double>> kind_gflops;
    /// threads -> the whole model's GFLOP/s (what the agent publishes).
    std::map<int, double> gflops;
    /// The links' per-frame work on one of these cores; absent in older calibrations.
    std::optional<LinkCosts> links;
  };
  std::vector<Class> classes;

  const Class* Find(const std::string& name) const;
};

Json CalibrationJson(const Calibration& c);
/// Reads a calibration; `source` names it in errors.
Result<Calibration> ParseCalibration(const Json& j, const std::string& source);
/// Refuses a calibration made for another model (or another input size), naming both.
Status CheckCalibrationFor(const Calibration& c, const Model& model, const std::string& source);

/// One core class of a node as the planner sees it.
struct CoreClass {
  std::string name;  ///< "big", "mid", "little"
  std::vector<int> cpus;
  int capacity = 1024;  ///< kernel scale
  int max_mhz = 0;      ///< 0: unknown
  /// The measured speed an agent published: edgefd.io/cpu.<class>.gflops (the whole class),
  /// else the DRA driver's `mflops` attribute of the class's cores (one core).
  std::optional<double> published_gflops;
  int published_cores = 0;     ///< cores the published figure was measured on
  std::string published_from;  ///< which of the two, for the plan's basis
};

/// A node: from a labeller dry-run file or the API server.
struct NodeInventory {
  std::string name;    ///< the Node's name (nodeSelector kubernetes.io/hostname)
  std::string origin;  ///< the file or "cluster", for messages
  std::string arch;    ///< amd64, arm64, ...
  std::string cpu_model;
  std::vector<CoreClass> classes;
  std::optional<Calibration> calibration;
  std::string calibration_source;   ///< its file, for messages
  std::optional<double> link_mbps;  ///< this node's link, when the file says
};

/// Parses one node file: `edgefd-labeller --dry-run --output json` ({"labels": {...}, "cpus":
/// {"big": [..], "little": [..]} or {"all": [..]}}) plus optional keys: "node" (its name;
/// default: the file's stem), "cpus": [..] (an array: use only these cores; the class map
/// then comes from "classes"), "calibration" (a calibration object, or a file path relative to
/// the node file), "link_mbps". `origin` names the file; `dir` resolves relative paths.
Result<NodeInventory> ParseNodeInventory(const Json& j, const std::string& origin,
                                         const std::string& dir);
Result<NodeInventory> ReadNodeFile(const std::string& path);
/// The nodes of a cluster from `kubectl get nodes -o json` (a NodeList): each Node that edgefd
/// labelled (edgefd.io/cpu.arch) and that is not cordoned, its classes' cores from the
/// edgefd.io driver's ResourceSlices in `slices` (the untainted CPU devices of that node: real
/// CPU numbers), else counted from its allocatable edgefd.io/<class>-cpu, else its labels;
/// speeds from its edgefd.io/cpu.<class>.gflops, else the `mflops` attribute of the class's
/// devices in those slices (the DRA driver's --calibration), else the estimate. Nodes left out are
/// named in `skipped` with the reason.
Result<std::vector<NodeInventory>> NodesFromNodeList(const Json& list, const std::string& origin,
                                                     std::vector<std::string>* skipped,
                                                     const std::vector<Json>& slices = {});

/// How a frame crosses a link between nodes, beside its data: what the planner charges the
/// link's rate for (LinkBytes). A link's rate (--link-mbps, a node file's "link_mbps",
/// probe-link's "line_mbps") counts what a shaper or a NIC's counters count: whole link-layer
/// frames, headers included. The defaults are Linux TCP over IPv4 on Ethernet:
struct LinkFraming {
  /// IP packet size on the link (Ethernet's 1500; a VXLAN pod network has 1450).
  int mtu = 1500;
  int ip_header = 20;   ///< IPv4 without options (IPv6: 40)
  int tcp_header = 20;  ///< TCP without options
  /// The timestamp option (10 bytes, padded to 12) in every segment: Linux's default
  /// (net.ipv4.tcp_timestamps=1) when both ends offer it.
  int tcp_options = 12;
  /// The Ethernet header, which tc (tbf) on a veth or NIC counts in every packet's length (a
  /// physical wire also spends preamble, FCS and the gap: 24 more, which no shaper counts).
  int link_header = 14;
  /// HTTP/2's SETTINGS_MAX_FRAME_SIZE at its default (the stages set no other): a message's
  /// DATA frames carry at most this much each (RFC 9113, 4.2 and 6.5.2).
  int http2_max_frame = 16384;

  /// TCP payload per segment: 1448 with the defaults.
  int Mss() const { return mtu - ip_header - tcp_header - tcp_options; }
  /// Bytes a full segment puts on the link: 1514 with the defaults.
  int PacketBytes() const { return mtu + link_header; }
};

/// Bytes on the link for one gRPC message of `message_bytes` (GrpcFrameMessageBytes): the
/// message, gRPC's 5-byte length prefix, a 9-byte HTTP/2 frame header per DATA frame, then
/// the TCP, IP and link-layer headers of every segment (the last one partly filled). With the
/// defaults a large frame costs 1514/1448 of its bytes (+4.6 %), HTTP/2 +0.05 %.
size_t LinkBytes(size_t message_bytes, const LinkFraming& framing);

/// What the planner may choose.
struct PlannerOptions {
  int stages = 0;             ///< 0: choose; else exactly this many
  double link_mbps = 1000.0;  ///< between two nodes, unless a node file says less
  double latency_ms = 0;      ///< 0: no bound
  std::vector<WireFormat> formats = {WireFormat::kFloat32, WireFormat::kFloat16, WireFormat::kInt8};
  /// Frames are produced on the first stage's node and consumed on the last one's.
  /// The cost of encoding / decoding one element for float16 and int8 (ms), where a node's
  /// calibration does not measure it.
  double codec_ms_per_element = 1.0e-6;
  /// Fixed latency of one hop between nodes (protocol, wake-ups), ms, added to its wire time.
  double hop_ms = 0.3;
  /// Same-node hops (shared memory) move bytes at this speed, GB/s, where a node's
  /// calibration does not measure it.
  double local_gbps = 4.0;
  /// The links' per-frame work on a stage's own cores (receiving, sending, the source's and
  /// the sink's copies) where a node's calibration does not measure it (LinkCosts; its codec
  /// and copy figures come from the two fields above). Charged beside compute: on a board
  /// this work competes with the stage's layers for the same cores.
  double link_hop_ms = 0.1;
  double link_ns_per_byte = 1.0;
  /// What a frame costs on a link between nodes beside its data; `link_mbps` is the rate of
  /// those bytes.
  LinkFraming framing;
};

/// How long each layer of the model takes on a core class of a node, and why we think so.
struct ClassSpeed {
  std::vector<double> layer_ms;
  std::string basis;  ///< "calibrated (FILE, 2 threads)", "estimated: capacity x max-MHz", ...
  bool calibrated = false;
  LinkCosts links;              ///< measured, or the planner's defaults
  bool links_measured = false;  ///< from the calibration
};
/// Without a calibration or a published figure: capacity/1024 x max-MHz x FLOPs per cycle of
/// the architecture (1500 MHz when unknown), said so in `basis`.
ClassSpeed SpeedOf(const NodeInventory& node, const CoreClass& cls, const Model& model,
                   const PlannerOptions& options);

struct PlannedStage {
  int first = 0, last = 0;  ///< layers [first, last)
  int node = 0;             ///< index into the node list
  std::string node_name, core_class;
  std::vector<int> cpus;
  std::string speed_basis;
  double compute_ms = 0;
  /// Its output's hop to the next stage (0 for the last stage).
  WireFormat wire = WireFormat::kFloat32;
  size_t wire_bytes = 0;
  /// Bytes its output puts on the link per frame (LinkBytes of its gRPC message); 0 when the
  /// next stage is on the same node or for the last stage.
  size_t link_bytes = 0;
  double codec_ms = 0;  ///< encoding its output and decoding its input
  /// Its share of the links' work on its cores: receiving its input and sending its output
  /// over gRPC, the source's copy into its ring (first stage), the sink's read (last stage).
  double io_ms = 0;
  double transfer_ms = 0;  ///< its output over the link
  double max_error = 0;    ///< wire format's worst relative error of this cut (0 for float32)
  bool remote = false;     ///< the next stage is on another node

  /// Time between two frames this stage can take: a hop to another node overlaps the next
  /// frame's compute, a same-node copy does not.
  double CycleMs() const {
    const double busy = compute_ms + codec_ms + io_ms;
    return remote ? std::max(busy, transfer_ms) : busy + transfer_ms;
  }
};

struct Plan {
  std::string model;
  std::vector<PlannedStage> stages;
  double bottleneck_ms = 0;
  int bottleneck_stage = 0;
  double latency_ms = 0;  ///< one frame through every stage, nothing queued
  double PredictedFps() const { return bottleneck_ms > 0 ? 1000.0 / bottleneck_ms : 0; }
  std::vector<std::string> notes;  ///< fallbacks the user should know of
};

/// Maximises throughput (then, among equals, minimises latency) over the number of stages,
/// the cuts, the (node, core class) of each stage (each at most once) and the wire format
/// of each cut, under `latency_ms`. Errors: no node with cores, no placement meets the bound.
Result<Plan> MakePlan(const Model& model, const std::vector<NodeInventory>& nodes,
                      const PlannerOptions& options);

/// The naive placement the planner is compared with: the model split by compute alone
/// into `stages` stages on the first `stages` (node, class) slots in order, float32 cuts,
/// priced with the same cost model.
Result<Plan> EqualComputePlan(const Model& model, const std::vector<NodeInventory>& nodes,
                              int stages, const PlannerOptions& options);

/// Prices a given placement (cuts, slots, formats) with the planner's cost model.
Plan PricePlan(const Model& model, const std::vector<NodeInventory>& nodes,
               std::vector<PlannedStage> stages, const PlannerOptions& options);

std::string FormatPlanText(const Model& model, const Plan& plan);
Json PlanToJson(const Model& model, const Plan& plan);

}  // namespace edgefd::runtime

namespace edgefd::runtime {

struct ModelSpec;

/// What the manifests of a plan name.
struct ManifestOptions {
  std::string name = "planned";  ///< prefix of every object: NAME-stage-K, NAME-source, ...
  std::string image = "edgefd/edgefd:0.1.0";
  int port = 7000;
  int metrics_port = 9090;
  double source_fps = 10;
};

/// The plan as Kubernetes objects (`kubectl apply -k DIR`): DIR/pipeline.yaml with a
/// Deployment + Service per stage (nodeSelector kubernetes.io/hostname: its node, its core
/// class as edgefd.io/<class>-cpu cores, --layers, --wire-in/--wire-out, --next the next
/// stage's Service), the source on the first stage's node and the sink on the last one's,
/// and DIR/kustomization.yaml. Files are replaced whole.
Status WritePlanManifests(const std::string& dir, const ModelSpec& model, const Plan& plan,
                          const ManifestOptions& options);
/// The same YAML as text (what pipeline.yaml holds).
std::string PlanManifests(const ModelSpec& model, const Plan& plan, const ManifestOptions& options);

}  // namespace edgefd::runtime

namespace edgefd::runtime {

/// What `edgefd-pipeline calibrate` measures.
struct CalibrateOptions {
  std::vector<CoreClass> classes;  ///< the node's core classes (restricted to what is measured)
  int iterations = 5;              ///< runs of each layer per thread count (the median is kept)
  int max_threads = 0;             ///< 0: up to every core of a class
  std::string cpu_model;
  bool links = true;  ///< also measure LinkCosts on each class's first core
};

/// Runs each layer of `model` (weights present) on each class's cores with 1..N threads and
/// returns the medians, per-kind GFLOP/s and the whole model's GFLOP/s.
Result<Calibration> Calibrate(const Model& model, const CalibrateOptions& options);

}  // namespace edgefd::runtime
