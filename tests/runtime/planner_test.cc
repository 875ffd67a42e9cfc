// The planner: wire formats, node inventories, calibrations, the cost model's arithmetic,
// the search, manifests and the CLI's refusals (planner.h, wire_format.h, probe_link.h).
#include "edgefd/runtime/planner.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <future>
#include <thread>

#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/probe_link.h"
#include "edgefd/runtime/transport.h"
#include "edgefd/runtime/wire_format.h"
#include "edgefd/testing/files.h"
#include "edgefd/testing/timing.h"
#include "pipeline.pb.h"
#include "run_cli.h"

namespace edgefd::runtime {
namespace {

using edgefd::testing::ReadFile;
using edgefd::testing::RunCli;
using edgefd::testing::TempDir;

// --- wire formats -------------------------------------------------------------------------

std::vector<float> RoundTrip(WireFormat f, const std::vector<float>& in) {
  std::vector<uint8_t> wire(WireBytes(f, in.size()));
  EncodeWire(f, in.data(), in.size(), wire.data());
  std::vector<float> out(in.size());
  EXPECT_TRUE(DecodeWire(f, wire.data(), in.size(), out.data()));
  return out;
}

TEST(WireFormat, Float16AndInt8StayWithinTheirBoundOfTheLargestMagnitude) {
  std::vector<float> in(1000);
  FillUniform(in.data(), in.size(), 3, -5.0f, 5.0f);
  in[7] = 1e-6f;  // a float16 subnormal
  in[8] = 0;
  float max_abs = 0;
  for (float v : in) max_abs = std::max(max_abs, std::fabs(v));
  for (WireFormat f : {WireFormat::kFloat32, WireFormat::kFloat16, WireFormat::kInt8}) {
    const std::vector<float> out = RoundTrip(f, in);
    double worst = 0;
    for (size_t i = 0; i < in.size(); ++i)
      worst = std::max(worst, double(std::fabs(out[i] - in[i])));
    EXPECT_LE(worst / max_abs, WireErrorBound(f) * 1.0001) << WireFormatName(f);
    if (f != WireFormat::kFloat32) {
      EXPECT_GT(worst, 0) << WireFormatName(f) << " lost nothing?";
    }
  }
}

TEST(WireFormat, Float16RoundsToNearestAndSaturates) {
  const std::vector<float> in = {1.0f,         -2.5f, 65504.0f, 1e9f, -INFINITY, 1.0f + 1.0f / 4096,
                                 5.9604645e-8f};
  const std::vector<float> out = RoundTrip(WireFormat::kFloat16, in);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.5f);
  EXPECT_EQ(out[2], 65504.0f);
  EXPECT_EQ(out[3], 65504.0f);
  EXPECT_EQ(out[4], -65504.0f);
  EXPECT_EQ(out[5], 1.0f);           // a tie rounds to the even mantissa
  EXPECT_EQ(out[6], 5.9604645e-8f);  // the smallest subnormal
  EXPECT_TRUE(std::isnan(RoundTrip(WireFormat::kFloat16, {NAN})[0]));
}

TEST(WireFormat, SizesAndPackedShapes) {
  EXPECT_EQ(WireBytes(WireFormat::kFloat32, 10), 40u);
  EXPECT_EQ(WireBytes(WireFormat::kFloat16, 10), 20u);
  EXPECT_EQ(WireBytes(WireFormat::kInt8, 10), 14u);
  EXPECT_EQ(WireShape({2, 3, 4}, WireFormat::kFloat32), (Shape{2, 3, 4}));
  EXPECT_EQ(WireShape({2, 3, 4}, WireFormat::kInt8), (Shape{1, 7, 1}));  // 28 bytes
  EXPECT_EQ(ParseWireFormat("fp16"), WireFormat::kFloat16);
  EXPECT_FALSE(ParseWireFormat("int4"));
}

TEST(WireFormat, AnInt8FrameWithABadScaleIsRefused) {
  std::vector<uint8_t> wire(WireBytes(WireFormat::kInt8, 4), 1);
  float out[4];
  for (float scale : {NAN, INFINITY, -1.0f}) {
    std::memcpy(wire.data(), &scale, sizeof scale);
    EXPECT_FALSE(DecodeWire(WireFormat::kInt8, wire.data(), 4, out)) << scale;
  }
}

TEST(WireFormat, FramesCrossALinkEncodedAndComeOutDecoded) {
  const Shape shape{4, 5, 3};
  MailboxPair link = MakeInprocLink(WireShape(shape, WireFormat::kInt8).Bytes(), Policy::kBlock);
  auto writer = EncodingWriter(std::move(link.writer), shape, WireFormat::kInt8);
  auto reader = DecodingReader(std::move(link.reader), shape, WireFormat::kInt8);
  FrameMeta meta;
  meta.seq = 1;
  meta.shape = shape;
  FillUniform(writer->Buffer(), shape.Elements(), 9, -1, 1);
  std::vector<float> sent(writer->Buffer(), writer->Buffer() + shape.Elements());
  ASSERT_TRUE(writer->Publish(meta).ok());
  FrameMeta got;
  const float* data = nullptr;
  ASSERT_EQ(reader->Next(&got, &data, std::chrono::seconds(5)), ReadResult::kFrame);
  EXPECT_EQ(got.shape, shape);
  EXPECT_EQ(got.seq, 1u);
  for (size_t i = 0; i < sent.size(); ++i) EXPECT_NEAR(data[i], sent[i], 1.0 / 254 + 1e-6);
}

TEST(WireFormat, EndsThatDisagreeBreakTheLinkWithAMessage) {
  const Shape shape{8, 8, 4};
  // The sender packs float16 (128 floats), the receiver expects int8 (65 floats).
  MailboxPair link = MakeInprocLink(shape.Bytes(), Policy::kBlock);
  auto writer = EncodingWriter(std::move(link.writer), shape, WireFormat::kFloat16);
  auto reader = DecodingReader(std::move(link.reader), shape, WireFormat::kInt8);
  FrameMeta meta;
  meta.seq = 1;
  meta.shape = shape;
  ASSERT_TRUE(writer->Publish(meta).ok());
  FrameMeta got;
  const float* data = nullptr;
  EXPECT_EQ(reader->Next(&got, &data, std::chrono::seconds(5)), ReadResult::kBroken);
  ASSERT_TRUE(reader->Fault());
  EXPECT_NE(reader->Fault()->message.find("same --wire format"), std::string::npos);
}

// --- node inventories and calibrations ----------------------------------------------------

// What `edgefd-labeller --dry-run --output json` prints for an RK3399.
Json Rk3399() {
  return Json::parse(R"({"labels": {
      "edgefd.io/cpu.arch": "arm64", "edgefd.io/cpu.heterogeneous": "true",
      "edgefd.io/cpu.big.capacity": "1024", "edgefd.io/cpu.big.cores": "2",
      "edgefd.io/cpu.big.max-mhz": "1800", "edgefd.io/cpu.little.capacity": "381",
      "edgefd.io/cpu.little.cores": "4", "edgefd.io/cpu.little.max-mhz": "1416"},
    "cpus": {"big": [4, 5], "little": [0, 1, 2, 3]}})");
}

Json Homogeneous(double gflops = 0) {
  Json j = Json::parse(R"({"labels": {"edgefd.io/cpu.arch": "amd64",
      "edgefd.io/cpu.heterogeneous": "false", "edgefd.io/cpu.cores": "2"},
      "cpus": {"all": [0, 1]}})");
  if (gflops > 0) j["labels"]["edgefd.io/cpu.big.gflops"] = std::to_string(gflops);
  return j;
}

TEST(NodeInventory, ReadsTheLabellersClassesCapacitiesAndClocks) {
  auto node = ParseNodeInventory(Rk3399(), "boards/rk3399.json", "");
  ASSERT_TRUE(node.ok()) << node.error().message;
  EXPECT_EQ(node->name, "rk3399");  // the file's stem
  ASSERT_EQ(node->classes.size(), 2u);
  EXPECT_EQ(node->classes[0].name, "big");
  EXPECT_EQ(node->classes[0].cpus, (std::vector<int>{4, 5}));
  EXPECT_EQ(node->classes[0].max_mhz, 1800);
  EXPECT_EQ(node->classes[1].capacity, 381);
}

TEST(NodeInventory, ACpusArrayKeepsOnlyThoseCores) {
  Json j = Homogeneous();
  j["cpus"] = Json::array({1});
  j["node"] = "node-b";
  auto node = ParseNodeInventory(j, "b.json", "");
  ASSERT_TRUE(node.ok()) << node.error().message;
  EXPECT_EQ(node->name, "node-b");
  ASSERT_EQ(node->classes.size(), 1u);
  EXPECT_EQ(node->classes[0].name, "big");  // a homogeneous node's cores are big
  EXPECT_EQ(node->classes[0].cpus, (std::vector<int>{1}));
}

TEST(NodeInventory, BadFilesAreRefusedByName) {
  auto expect_error = [](const Json& j, const std::string& what) {
    auto node = ParseNodeInventory(j, "n.json", "");
    ASSERT_FALSE(node.ok()) << what;
    EXPECT_NE(node.error().message.find("n.json"), std::string::npos) << node.error().message;
    EXPECT_NE(node.error().message.find(what), std::string::npos) << node.error().message;
  };
  expect_error(Json::parse(R"({"cpus": {"all": [0]}})"), "labels");
  Json j = Rk3399();
  j["cpus"] = Json::array({4});
  expect_error(j, "core classes");  // a heterogeneous node's restriction needs the class map
  j["classes"] = Rk3399()["cpus"];
  j["cpus"] = Json::array({9});
  expect_error(j, "CPU 9");
  j["cpus"] = Json::array({4, 4});
  expect_error(j, "twice");
  j = Homogeneous();
  j["node"] = "Not_A_Name";
  expect_error(j, "node name");
}

Model Yolo() { return MakeYoloTiny(); }

Calibration FlatCalibration(const Model& m, double ms_per_layer) {
  Calibration c;
  c.model = m.name;
  c.input = m.Input().ToString();
  Calibration::Class k;
  k.name = "big";
  k.layer_ms[1] = std::vector<double>(m.layers.size(), ms_per_layer);
  k.layer_ms[2] = std::vector<double>(m.layers.size(), ms_per_layer / 2);
  c.classes.push_back(k);
  return c;
}

TEST(Calibration, RoundTripsThroughJsonAndIsRefusedForAnotherModel) {
  const Model yolo = Yolo();
  auto back = ParseCalibration(CalibrationJson(FlatCalibration(yolo, 2.0)), "cal.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(CheckCalibrationFor(*back, yolo, "cal.json").ok());
  auto conv = MakeModel("conv", ConvModelOptions{});
  Status s = CheckCalibrationFor(*back, *conv, "cal.json");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("cal.json: a calibration of model yolo-tiny"), std::string::npos)
      << s.error().message;
  // The same model at another input size is another model.
  auto small = MakeModel("conv", ConvModelOptions{64, 48, 1});
  auto conv_cal = FlatCalibration(*conv, 1.0);
  EXPECT_FALSE(CheckCalibrationFor(conv_cal, *small, "c.json").ok());
}

TEST(Calibration, AStageUsesTheFiguresOfItsThreadCount) {
  const Model yolo = Yolo();
  NodeInventory node;
  node.calibration = FlatCalibration(yolo, 2.0);
  CoreClass one;
  one.name = "big";
  one.cpus = {0};
  CoreClass two = one;
  two.cpus = {0, 1};
  EXPECT_DOUBLE_EQ(SpeedOf(node, one, yolo, {}).layer_ms[0], 2.0);
  EXPECT_DOUBLE_EQ(SpeedOf(node, two, yolo, {}).layer_ms[0], 1.0);
  CoreClass four = one;
  four.cpus = {0, 1, 2, 3};  // beyond what was measured: scaled from 2 threads
  EXPECT_DOUBLE_EQ(SpeedOf(node, four, yolo, {}).layer_ms[0], 0.5);
}

TEST(Calibration, CarriesTheLinksPerFrameWorkAndRefusesNonsenseInIt) {
  const Model yolo = Yolo();
  Calibration c = FlatCalibration(yolo, 2.0);
  LinkCosts l;
  l.hop_ms = 0.25;
  l.hop_ns_per_byte = 1.5;
  l.copy_gbps = 8;
  l.encode_ns["int8"] = 2;
  l.decode_ns["int8"] = 3;
  c.classes[0].links = l;
  Json j = CalibrationJson(c);
  auto back = ParseCalibration(j, "cal.json");
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_TRUE(back->classes[0].links.has_value());
  EXPECT_DOUBLE_EQ(back->classes[0].links->hop_ns_per_byte, 1.5);
  EXPECT_DOUBLE_EQ(back->classes[0].links->decode_ns.at("int8"), 3);
  // An older calibration without the figures still reads (the planner assumes them).
  Json old = j;
  old["classes"][0].erase("links");
  auto older = ParseCalibration(old, "old.json");
  ASSERT_TRUE(older.ok());
  EXPECT_FALSE(older->classes[0].links.has_value());
  for (const char* bad : {R"({"hop_ms": -1, "hop_ns_per_byte": 1, "copy_gbps": 1})",
                          R"({"hop_ms": 1, "hop_ns_per_byte": "fast", "copy_gbps": 1})",
                          R"({"hop_ms": 1, "hop_ns_per_byte": 1})",
                          R"({"hop_ms": 1, "hop_ns_per_byte": 1, "copy_gbps": 1,
                              "encode_ns_per_element": {"int4": 1}})"}) {
    j["classes"][0]["links"] = Json::parse(bad);
    auto refused = ParseCalibration(j, "cal.json");
    ASSERT_FALSE(refused.ok()) << bad;
    EXPECT_NE(refused.error().message.find("cal.json: class 0.links"), std::string::npos)
        << refused.error().message;
  }
}

TEST(Calibration, MeasuresTheLinksOnACore) {
  // Through the program: the measurement forks, which a test process that already ran gRPC
  // links must not do.
  int status = 0;
  std::string out = RunCli("calibrate --model yolo-tiny --max-threads 1 --iterations 1", &status);
  ASSERT_EQ(status, 0) << out;
  auto doc = ParseJson(out.substr(0, out.rfind('}') + 1), "calibration");
  ASSERT_TRUE(doc.ok()) << out;
  auto c = ParseCalibration(*doc, "calibration");
  ASSERT_TRUE(c.ok()) << c.error().message;
  ASSERT_TRUE(c->classes[0].links.has_value()) << out;
  const LinkCosts& l = *c->classes[0].links;
  EXPECT_GT(l.copy_gbps, 0);
  EXPECT_GT(l.hop_ms + l.hop_ns_per_byte, 0);
  EXPECT_EQ(l.encode_ns.count("float16") + l.decode_ns.count("int8"), 2u);
}

TEST(Calibration, WithoutOneTheSpeedIsEstimatedAndSaidSo) {
  const Model yolo = Yolo();
  auto node = ParseNodeInventory(Rk3399(), "rk.json", "");
  ASSERT_TRUE(node.ok());
  ClassSpeed s = SpeedOf(*node, node->classes[0], yolo, {});
  EXPECT_FALSE(s.calibrated);
  EXPECT_NE(s.basis.find("capacity x max-MHz"), std::string::npos) << s.basis;
  // 1024/1024 x 1.8 GHz x 8 FLOP/cycle x 2 cores = 28.8 GFLOP/s.
  EXPECT_NEAR(s.layer_ms[0], yolo.layers[0].Flops() / 28.8e6, 1e-9);
  // capacity holds the little cores' clock already: 381/1024 of the big cores' 1.8 GHz, x 8
  // FLOP/cycle x 4 cores (not x their own 1416 MHz again).
  ClassSpeed little = SpeedOf(*node, node->classes[1], yolo, {});
  EXPECT_NEAR(little.layer_ms[0], yolo.layers[0].Flops() / (381.0 / 1024 * 1.8 * 8 * 4 * 1e9) * 1e3,
              1e-9);
}

// --- the cost model and the search ------------------------------------------------------

// Nodes whose published figure makes every layer's time FLOPs / G exactly.
std::vector<NodeInventory> Nodes(int count, double gflops) {
  std::vector<NodeInventory> nodes;
  for (int i = 0; i < count; ++i) {
    Json j = Homogeneous(gflops);
    j["cpus"] = Json::array({0});
    j["node"] = "node-" + std::to_string(i);
    auto n = ParseNodeInventory(j, "n.json", "");
    EXPECT_TRUE(n.ok()) << n.error().message;
    nodes.push_back(*n);
  }
  return nodes;
}

// Layers [0, cut) on node 0 and the rest on node 1, each on its "big" class.
std::vector<PlannedStage> TwoStages(const Model& model, int cut) {
  std::vector<PlannedStage> stages(2);
  stages[0].last = cut;
  stages[1].first = cut;
  stages[1].last = int(model.layers.size());
  stages[1].node = 1;
  for (PlannedStage& s : stages) s.core_class = "big";
  return stages;
}

TEST(Planner, OneNodeRunsTheWholeModelAtItsSpeed) {
  const Model yolo = Yolo();
  // Published for both cores, the stage gets one: half of 20 GFLOP/s.
  auto plan = MakePlan(yolo, Nodes(1, 20), PlannerOptions{});
  ASSERT_TRUE(plan.ok()) << plan.error().message;
  ASSERT_EQ(plan->stages.size(), 1u);
  const double ms = yolo.Flops(0, int(yolo.layers.size())) / 10e6;
  // Beside compute, the source's copy of each frame into its ring and the sink's read of the
  // output, at the assumed 4 GB/s: a published figure measures no links.
  const double io = double(yolo.Input().Bytes() + yolo.layers.back().out.Bytes()) / 4e6;
  EXPECT_NEAR(plan->stages[0].compute_ms, ms, 1e-6);
  EXPECT_NEAR(plan->stages[0].io_ms, io, 1e-6);
  EXPECT_NEAR(plan->bottleneck_ms, ms + io, 1e-6);
  EXPECT_NEAR(plan->PredictedFps(), 1000 / (ms + io), 1e-6);
  ASSERT_EQ(plan->notes.size(), 1u);
  EXPECT_NE(plan->notes[0].find("per-frame work is not calibrated"), std::string::npos);
}

TEST(Planner, PricesAStageAsTheSlowerOfComputeAndItsHop) {
  const Model yolo = Yolo();
  const auto nodes = Nodes(2, 20);
  PlannerOptions o;
  o.link_mbps = 20;
  // conv1 alone on node 0: its 448x448x16 output (12.8 MB f32) over 20 Mbit/s.
  std::vector<PlannedStage> stages = TwoStages(yolo, 1);
  Plan p = PricePlan(yolo, nodes, stages, o);
  const Shape cut{448, 448, 16};
  // The link carries the frame's gRPC message (after one stage) with its framing and headers.
  const size_t link = LinkBytes(GrpcFrameMessageBytes(cut, 1), o.framing);
  EXPECT_EQ(p.stages[0].wire_bytes, cut.Bytes());
  EXPECT_EQ(p.stages[0].link_bytes, link);
  EXPECT_NEAR(p.stages[0].transfer_ms, double(link) * 8 / 20e3 + o.hop_ms, 1e-6);
  EXPECT_EQ(p.stages[1].link_bytes, 0u);  // the last stage's output stays on its node
  EXPECT_NEAR(p.stages[0].compute_ms, yolo.layers[0].Flops() / 10e6, 1e-9);
  EXPECT_TRUE(p.stages[0].remote);
  EXPECT_EQ(p.bottleneck_stage, 0);
  EXPECT_NEAR(p.bottleneck_ms, p.stages[0].transfer_ms, 1e-6);  // transfer hides compute
  EXPECT_NEAR(p.latency_ms,
              p.stages[0].compute_ms + p.stages[0].io_ms + p.stages[0].transfer_ms +
                  p.stages[1].compute_ms + p.stages[1].io_ms,
              1e-6);
  // In int8 the same cut moves a quarter of the bytes, plus encoding and decoding.
  stages[0].wire = WireFormat::kInt8;
  Plan q = PricePlan(yolo, nodes, stages, o);
  // int8: a scale and a byte per element, sent as whole floats (WireShape).
  const Shape int8_wire = WireShape(cut, WireFormat::kInt8);
  EXPECT_EQ(int8_wire.Bytes(), 448u * 448 * 16 + 4);
  EXPECT_NEAR(
      q.stages[0].transfer_ms,
      double(LinkBytes(GrpcFrameMessageBytes(int8_wire, 1), o.framing)) * 8 / 20e3 + o.hop_ms,
      1e-6);
  EXPECT_NEAR(q.stages[1].codec_ms, 448.0 * 448 * 16 * o.codec_ms_per_element, 1e-9);
}

TEST(LinkFraming, TheDefaultsAreLinuxTcpOverIpv4OnEthernet) {
  const LinkFraming f;
  // 1500 - 20 (IPv4) - 20 (TCP) - 12 (timestamps) of payload in 1500 + 14 (Ethernet header)
  // of frame: 1448 in 1514, as a 1 Gbit/s tbf'd veth's TCP payload (955 Mbit/s) shows.
  EXPECT_EQ(f.Mss(), 1448);
  EXPECT_EQ(f.PacketBytes(), 1514);
  LinkFraming v6;
  v6.ip_header = 40;
  EXPECT_EQ(v6.Mss(), 1428);
  LinkFraming jumbo;
  jumbo.mtu = 9000;
  EXPECT_EQ(jumbo.Mss(), 8948);
}

TEST(LinkBytes, ChargesGrpcsPrefixHttp2sFrameHeadersAndEverySegmentsHeaders) {
  const LinkFraming f;
  // 1434 bytes of message + 5 (gRPC prefix) + 9 (one DATA frame) fill one segment exactly.
  EXPECT_EQ(LinkBytes(1434, f), 1514u);
  // One byte more starts a second segment, with headers of its own.
  EXPECT_EQ(LinkBytes(1435, f), 1435u + 5 + 9 + 2 * 66);
  // 16384 bytes of prefix and message fit one DATA frame; one more takes a second.
  const size_t one_frame = 16384 - 5;
  EXPECT_EQ(LinkBytes(one_frame, f), 16393u + 66 * 12);  // ceil(16393 / 1448) = 12 segments
  EXPECT_EQ(LinkBytes(one_frame + 1, f), 16403u + 66 * 12);
  // A large frame costs 1514/1448 of its bytes and HTTP/2 9/16384 more: +4.6 %, not 5 % flat.
  const double ratio = double(LinkBytes(200704, f)) / 200704.0;
  EXPECT_NEAR(ratio, 1514.0 / 1448.0 * (1 + 9.0 / 16384), 2e-4);
  // Larger packets, fewer headers.
  LinkFraming jumbo;
  jumbo.mtu = 9000;
  EXPECT_LT(LinkBytes(200704, jumbo), LinkBytes(200704, f));
  EXPECT_NEAR(double(LinkBytes(200704, jumbo)) / 200704.0, 9014.0 / 8948.0, 1e-3);
}

TEST(LinkBytes, TheMessageIsTheFrameAsTheSenderSerialisesIt) {
  // What the gRPC writer sends for a frame after two stages, against the same Frame built by
  // protobuf (typical values: GrpcFrameMessageBytes' comment): the same size, data included.
  const Shape shape{13, 13, 256};
  pipeline::v1::Frame frame;
  frame.set_seq(uint64_t(1) << 24);
  frame.set_t_source_ns(1'000'000'000'000'000);
  frame.set_height(13);
  frame.set_width(13);
  frame.set_channels(256);
  frame.set_source_clock(~uint64_t(0));
  frame.set_source_send_ns(100'000'000);
  for (int i = 0; i < 2 * 3; ++i) frame.add_stage_times(100'000'000);
  frame.set_data(std::string(shape.Bytes(), '\0'));
  EXPECT_EQ(GrpcFrameMessageBytes(shape, 2), frame.ByteSizeLong());
  // Each stage passed adds its three durations.
  EXPECT_EQ(GrpcFrameMessageBytes(shape, 3) - GrpcFrameMessageBytes(shape, 2), 3u * 4);
  // Beside the data: a few dozen bytes.
  EXPECT_LT(GrpcFrameMessageBytes(shape, 1) - shape.Bytes(), 64u);
}

TEST(Planner, TheLinksRateCountsHeadersSoASlowLinkPredictsLessThanPayloadAlone) {
  const Model yolo = Yolo();
  const auto nodes = Nodes(2, 1000);  // compute never binds: the cut's transfer does
  PlannerOptions o;
  o.link_mbps = 20;
  o.hop_ms = 0;
  std::vector<PlannedStage> stages = TwoStages(yolo, 8);
  Plan p = PricePlan(yolo, nodes, stages, o);
  const double payload_ms = double(p.stages[0].wire_bytes) * 8 / 20e3;
  ASSERT_EQ(p.bottleneck_stage, 0);
  EXPECT_NEAR(p.bottleneck_ms / payload_ms, 1514.0 / 1448.0, 0.003);
  // A smaller MTU: more segments, more headers, slower.
  o.framing.mtu = 1450;
  Plan vxlan = PricePlan(yolo, nodes, stages, o);
  EXPECT_GT(vxlan.bottleneck_ms, p.bottleneck_ms);
  EXPECT_NEAR(vxlan.bottleneck_ms / payload_ms, 1464.0 / 1398.0, 0.003);
}

TEST(Planner, ChargesTheLinksWorkToTheStagesWhoseCoresDoIt) {
  const Model yolo = Yolo();
  auto nodes = Nodes(2, 20);
  LinkCosts l;
  l.hop_ms = 0.5;
  l.hop_ns_per_byte = 2;
  l.copy_gbps = 2;
  l.encode_ns = {{"float16", 4}, {"int8", 4}};
  l.decode_ns = {{"float16", 3}, {"int8", 3}};
  for (NodeInventory& n : nodes) {
    n.calibration = FlatCalibration(yolo, 2.0);
    n.calibration->classes[0].links = l;
  }
  PlannerOptions o;
  o.link_mbps = 100000;  // the wire is never the bottleneck here
  const int cut = 6;
  std::vector<PlannedStage> stages(2);
  stages[0].last = stages[1].first = cut;
  stages[1].last = int(yolo.layers.size());
  stages[1].node = 1;
  stages[0].core_class = stages[1].core_class = "big";
  stages[0].wire = WireFormat::kFloat16;
  Plan p = PricePlan(yolo, nodes, stages, o);
  const double elements = double(yolo.layers[cut - 1].out.Elements());
  const double bytes = double(WireBytes(WireFormat::kFloat16, size_t(elements)));
  const double share = 0.5 * (0.5 + bytes * 2 / 1e6);
  // The source's copy of each input frame on the first node, the sender's half of the hop.
  EXPECT_NEAR(p.stages[0].io_ms, double(yolo.Input().Bytes()) / 2e6 + share, 1e-9);
  EXPECT_NEAR(p.stages[0].codec_ms, elements * 4 / 1e6, 1e-9);
  // The receiver's half and the sink's read of the output.
  EXPECT_NEAR(p.stages[1].io_ms, share + double(yolo.layers.back().out.Bytes()) / 2e6, 1e-9);
  EXPECT_NEAR(p.stages[1].codec_ms, elements * 3 / 1e6, 1e-9);
  // Compute-bound: the links' work adds to the cycle.
  EXPECT_NEAR(p.stages[1].CycleMs(),
              p.stages[1].compute_ms + p.stages[1].codec_ms + p.stages[1].io_ms, 1e-9);
  EXPECT_NEAR(p.bottleneck_ms, std::max(p.stages[0].CycleMs(), p.stages[1].CycleMs()), 1e-9);
  // The search prices with the same model: its best two-stage plan is no worse.
  o.stages = 2;
  auto best = MakePlan(yolo, nodes, o);
  ASSERT_TRUE(best.ok());
  EXPECT_LE(best->bottleneck_ms, p.bottleneck_ms + 1e-9);
  EXPECT_GT(best->stages[0].io_ms, 0);
  // A calibration without link figures: the defaults, said so.
  nodes[1].calibration->classes[0].links.reset();
  auto assumed = MakePlan(yolo, nodes, o);
  ASSERT_TRUE(assumed.ok());
  EXPECT_NE(DumpJson(Json(assumed->notes)).find("per-frame work is not calibrated"),
            std::string::npos);
}

TEST(Planner, OnSlowLinksItBeatsTheEqualComputeSplit) {
  const Model yolo = Yolo();
  const auto nodes = Nodes(2, 20);
  PlannerOptions o;
  o.link_mbps = 5;
  o.stages = 2;
  auto plan = MakePlan(yolo, nodes, o);
  auto naive = EqualComputePlan(yolo, nodes, 2, o);
  ASSERT_TRUE(plan.ok() && naive.ok());
  EXPECT_GT(naive->stages[0].transfer_ms, naive->stages[0].compute_ms);  // link-bound
  EXPECT_GT(plan->PredictedFps(), naive->PredictedFps() * 1.2);
  EXPECT_LT(plan->stages[0].wire_bytes, naive->stages[0].wire_bytes);
  // Exhaustive: no other cut or format of two stages is faster.
  for (int cut = 1; cut < int(yolo.layers.size()); ++cut) {
    for (WireFormat f : {WireFormat::kFloat32, WireFormat::kFloat16, WireFormat::kInt8}) {
      std::vector<PlannedStage> s(2);
      s[0].last = s[1].first = cut;
      s[1].last = int(yolo.layers.size());
      s[1].node = 1;
      s[0].core_class = s[1].core_class = "big";
      s[0].wire = f;
      EXPECT_GE(PricePlan(yolo, nodes, s, o).bottleneck_ms, plan->bottleneck_ms - 1e-9);
    }
  }
}

TEST(Planner, FastLinksSplitAndSlowOnesMayNot) {
  const Model yolo = Yolo();
  PlannerOptions fast;
  fast.link_mbps = 100000;
  auto plan = MakePlan(yolo, Nodes(3, 20), fast);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->stages.size(), 3u);
  PlannerOptions slow;
  slow.link_mbps = 1e-4;  // nothing worth sending
  plan = MakePlan(yolo, Nodes(3, 20), slow);
  ASSERT_TRUE(plan.ok());
  EXPECT_EQ(plan->stages.size(), 1u);
}

TEST(Planner, BadInputIsAClearError) {
  const Model yolo = Yolo();
  auto none = MakePlan(yolo, {}, PlannerOptions{});
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no usable node"), std::string::npos);
  PlannerOptions bound;
  bound.latency_ms = 1;
  auto late = MakePlan(yolo, Nodes(2, 20), bound);
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message.find("no placement of yolo-tiny meets --latency-ms 1"),
            std::string::npos)
      << late.error().message;
  PlannerOptions too_many;
  too_many.stages = 3;
  EXPECT_FALSE(MakePlan(yolo, Nodes(2, 20), too_many).ok());
}

TEST(Planner, ALatencyBoundTradesThroughputForLatency) {
  const Model yolo = Yolo();
  PlannerOptions o;
  o.link_mbps = 50;
  auto free = MakePlan(yolo, Nodes(3, 20), o);
  ASSERT_TRUE(free.ok());
  ASSERT_GT(free->stages.size(), 1u);
  auto one = MakePlan(yolo, Nodes(1, 20), o);
  o.latency_ms = one->latency_ms + 0.01;  // only the one-stage latency fits
  auto bounded = MakePlan(yolo, Nodes(3, 20), o);
  ASSERT_TRUE(bounded.ok()) << bounded.error().message;
  EXPECT_LE(bounded->latency_ms, o.latency_ms);
  EXPECT_LT(free->bottleneck_ms, bounded->bottleneck_ms);
}

// --- manifests ----------------------------------------------------------------------------

// tiny-YOLO in two stages on node-0 and node-1, cut after pool6 in int8.
Plan TwoNodeYoloPlan() {
  const Model yolo = Yolo();
  std::vector<PlannedStage> stages(2);
  stages[0].last = stages[1].first = 12;
  stages[1].last = int(yolo.layers.size());
  stages[1].node = 1;
  stages[0].core_class = stages[1].core_class = "big";
  stages[0].wire = WireFormat::kInt8;
  stages[0].node_name = "node-0";
  stages[1].node_name = "node-1";
  stages[0].cpus = stages[1].cpus = {0};
  return PricePlan(yolo, Nodes(2, 20), stages, PlannerOptions{});
}

ModelSpec YoloSpec() {
  ModelSpec spec;
  spec.name = "yolo-tiny";
  return spec;
}

TEST(PlanManifests, EachStageRunsOnItsNodeWithItsCoresAndFormats) {
  const auto plan = std::make_optional(TwoNodeYoloPlan());
  const ModelSpec spec = YoloSpec();
  TempDir dir;
  ASSERT_TRUE(WritePlanManifests(dir / "m", spec, *plan, ManifestOptions{}).ok());
  const auto docs = YAML::LoadAllFromFile(dir / "m/pipeline.yaml");
  int deployments = 0;
  for (const YAML::Node& d : docs) {
    if (d["kind"].as<std::string>() != "Deployment") continue;
    ++deployments;
    const YAML::Node spec_node = d["spec"]["template"]["spec"];
    const std::string name = d["metadata"]["name"].as<std::string>();
    std::vector<std::string> args =
        spec_node["containers"][0]["args"].as<std::vector<std::string>>();
    auto has = [&args](const std::string& a, const std::string& b) {
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == a && args[i + 1] == b) return true;
      }
      return false;
    };
    if (name == "planned-stage-0") {
      EXPECT_EQ(spec_node["nodeSelector"]["kubernetes.io/hostname"].as<std::string>(), "node-0");
      EXPECT_EQ(
          spec_node["containers"][0]["resources"]["limits"]["edgefd.io/big-cpu"].as<std::string>(),
          "1");
      EXPECT_TRUE(has("--next", "planned-stage-1:7000"));
      EXPECT_TRUE(has("--wire-out", WireFormatName(plan->stages[0].wire)));
    }
    if (name == "planned-stage-1") {
      EXPECT_EQ(spec_node["nodeSelector"]["kubernetes.io/hostname"].as<std::string>(), "node-1");
      EXPECT_TRUE(has("--wire-in", WireFormatName(plan->stages[0].wire)));
      EXPECT_TRUE(has("--next", "planned-sink:7000"));
    }
  }
  EXPECT_EQ(deployments, 4);  // source, two stages, sink
  EXPECT_TRUE(YAML::LoadFile(dir / "m/kustomization.yaml")["resources"].IsSequence());
}

// Every container of a plan's manifests starts with options edgefd-pipeline accepts, and serves
// every port it declares: frames on --listen, /metrics on --metrics-port. The sink declared a
// metrics port (and its Service forwarded it) without serving it, so nothing could read the
// planned pipeline's fps from its sink (the e2e TestPlannedPipeline does).
TEST(PlanManifests, EveryContainerStartsWithValidOptionsAndServesThePortsItDeclares) {
  ManifestOptions options;
  options.port = 7100;
  options.metrics_port = 9190;
  const std::string yaml = PlanManifests(YoloSpec(), TwoNodeYoloPlan(), options);
  int containers = 0;
  for (const YAML::Node& d : YAML::LoadAll(yaml)) {
    if (!d.IsMap() || d["kind"].as<std::string>() != "Deployment") continue;
    const YAML::Node c = d["spec"]["template"]["spec"]["containers"][0];
    const std::string name = d["metadata"]["name"].as<std::string>();
    ++containers;
    const auto args = c["args"].as<std::vector<std::string>>();
    std::string argv;
    for (const std::string& a : args) argv += " '" + a + "'";
    int status = 0;
    const std::string out = RunCli(argv + " --check", &status);
    EXPECT_EQ(status, 0) << name << ": " << out;
    auto value_of = [&args](const std::string& flag) {
      for (size_t i = 0; i + 1 < args.size(); ++i) {
        if (args[i] == flag) return args[i + 1];
      }
      return std::string();
    };
    for (const YAML::Node& port : c["ports"]) {
      const std::string port_name = port["name"].as<std::string>();
      const std::string number = port["containerPort"].as<std::string>();
      if (port_name == "frames") {
        EXPECT_EQ(value_of("--listen"), "0.0.0.0:" + number) << name;
      } else if (port_name == "metrics") {
        EXPECT_EQ(value_of("--metrics-port"), number) << name << " declares a metrics port";
      } else {
        ADD_FAILURE() << name << ": port " << port_name << " served by nothing known";
      }
    }
  }
  EXPECT_EQ(containers, 4);  // source, two stages, sink
}

// --- the link probe -----------------------------------------------------------------------

TEST(ProbeLink, MeasuresWhatCrossedALoopbackLink) {
  std::promise<int> port;
  auto served = std::async(std::launch::async, [&port] {
    return ServeLinkProbe("127.0.0.1:0", std::chrono::seconds(10),
                          [&port](int p) { port.set_value(p); });
  });
  const int p = port.get_future().get();
  auto probe = ProbeLink("127.0.0.1:" + std::to_string(p), std::chrono::milliseconds(200),
                         std::chrono::seconds(10));
  ASSERT_TRUE(probe.ok()) << probe.error().message;
  auto server = served.get();
  ASSERT_TRUE(server.ok()) << server.error().message;
  EXPECT_GT(probe->bytes, 0u);
  EXPECT_EQ(probe->bytes, server->bytes);
  // The connection's own segment sizes: loopback's MTU is 65536, its MSS that less the IP and
  // TCP headers and options.
  if (probe->mss == 0 && edgefd::testing::Slowdown() > 1) {
    // qemu-user passes neither TCP_INFO nor IP_MTU through: the sizes are unknown, and the
    // line rate is the payload's (LineMbps' fallback).
    EXPECT_EQ(probe->mtu, 0);
    EXPECT_EQ(probe->LineMbps(), probe->Mbps());
  } else {
    EXPECT_GT(probe->mss, 0);
    EXPECT_GE(probe->mtu, probe->mss + 40);
    EXPECT_GT(probe->LineMbps(), probe->Mbps());
  }
}

TEST(ProbeLink, TheLinesRateAddsEachSegmentsHeadersToThePayloadRate) {
  LinkProbe p;
  p.bytes = 1448 * 100000;  // 100,000 full segments' payload in a second
  p.seconds = 1;
  p.mss = 1448;
  p.mtu = 1500;
  EXPECT_NEAR(p.Mbps(), 1158.4, 1e-9);
  EXPECT_NEAR(p.LineMbps(), 1514 * 100000 * 8 / 1e6, 1e-6);  // every frame's bytes
  EXPECT_NEAR(p.LineMbps(0), 1500 * 100000 * 8 / 1e6, 1e-6);
  p.mss = 0;  // unknown: the payload rate, no guess
  EXPECT_EQ(p.LineMbps(), p.Mbps());
}

TEST(ProbeLink, APeerThatNeverComesIsATimeoutNamingTheAddress) {
  auto served = ServeLinkProbe("127.0.0.1:0", std::chrono::milliseconds(50));
  ASSERT_FALSE(served.ok());
  EXPECT_NE(served.error().message.find("no client connected within 50 ms"), std::string::npos)
      << served.error().message;
  // Nothing listens there: refused at once, named.
  auto refused = ProbeLink("127.0.0.1:1", std::chrono::milliseconds(100), std::chrono::seconds(5));
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("probe-link 127.0.0.1:1: cannot connect"),
            std::string::npos)
      << refused.error().message;
}

// --- the command line ---------------------------------------------------------------------

TEST(PlanCli, RefusesACalibrationOfAnotherModelAndAnUnreachableBound) {
  TempDir dir;
  auto conv = MakeModel("conv", ConvModelOptions{});
  dir.Write("conv-cal.json", DumpJson(CalibrationJson(FlatCalibration(*conv, 1.0))));
  Json node = Homogeneous();
  node["calibration"] = "conv-cal.json";
  dir.Write("a.json", DumpJson(node));
  int status = 0;
  std::string out = RunCli("plan --model yolo-tiny --nodes " + (dir / "a.json"), &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("a calibration of model conv"), std::string::npos) << out;
  EXPECT_NE(out.find("conv-cal.json"), std::string::npos) << out;

  node.erase("calibration");
  dir.Write("b.json", DumpJson(node));
  out = RunCli("plan --model yolo-tiny --latency-ms 0.5 --nodes " + (dir / "b.json"), &status);
  EXPECT_EQ(status, 3) << out;
  EXPECT_NE(out.find("no placement"), std::string::npos) << out;

  node["cpus"] = Json::array();
  dir.Write("c.json", DumpJson(node));
  out = RunCli("plan --model yolo-tiny --nodes " + (dir / "c.json"), &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("no core"), std::string::npos) << out;
}

TEST(PlanCli, TheStageBinaryLeavesFromClusterToEdgefdPlan) {
  TempDir dir;
  dir.Write("a.json", DumpJson(Homogeneous()));
  int status = 0;
  std::string out = RunCli("plan --model yolo-tiny --from-cluster --out " + (dir / "out"), &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("edgefd-pipeline plan: --from-cluster: the stage binary does not talk to "
                     "the API server; run 'edgefd-plan --from-cluster'"),
            std::string::npos)
      << out;
  EXPECT_FALSE(std::filesystem::exists(dir / "out"));
}

TEST(PlanCli, PrintsThePredictionAndSaysWhenItGuessed) {
  TempDir dir;
  dir.Write("a.json", DumpJson(Homogeneous()));
  int status = 0;
  std::string out = RunCli("plan --model yolo-tiny --json --nodes " + (dir / "a.json"), &status);
  ASSERT_EQ(status, 0) << out;
  Json j = Json::parse(out.substr(0, out.rfind('}') + 1));
  EXPECT_GT(j["predicted_fps"].get<double>(), 0);
  EXPECT_NE(j["notes"].dump().find("no calibration"), std::string::npos) << out;
  EXPECT_EQ(j["link_mtu"], 1500);
  for (const Json& s : j["stages"]) {
    // Bytes on the link: more than the cut's own where it crosses one, none where it does not.
    EXPECT_EQ(s["link_bytes"].get<size_t>() > s["wire_bytes"].get<size_t>(),
              s["remote"].get<bool>())
        << s.dump();
  }
}

TEST(PlanCli, PricesAnEarlierPlacementWithTodaysFigures) {
  TempDir dir;
  const Model yolo = Yolo();
  for (const char* name : {"a", "b"}) {
    Json node = Homogeneous();
    node["node"] = std::string("node-") + name;
    node["cpus"] = Json::array({name[0] == 'a' ? 0 : 1});
    node["calibration"] = "cal.json";
    dir.Write(std::string(name) + ".json", DumpJson(node));
  }
  dir.Write("cal.json", DumpJson(CalibrationJson(FlatCalibration(yolo, 2.0))));
  const std::string nodes = " --nodes " + (dir / "a.json") + " --nodes " + (dir / "b.json");
  int status = 0;
  std::string out = RunCli("plan --model yolo-tiny --json --stages 2" + nodes, &status);
  ASSERT_EQ(status, 0) << out;
  dir.Write("plan.json", out.substr(0, out.rfind('}') + 1));
  // Every layer now takes twice as long: the same placement, half the frames per second.
  dir.Write("cal.json", DumpJson(CalibrationJson(FlatCalibration(yolo, 4.0))));
  out = RunCli("plan --model yolo-tiny --json --price " + (dir / "plan.json") + nodes, &status);
  ASSERT_EQ(status, 0) << out;
  const Json before = Json::parse(ReadFile(dir / "plan.json"));
  const Json after = Json::parse(out.substr(0, out.rfind('}') + 1));
  EXPECT_EQ(after["stages"][0]["last_layer"], before["stages"][0]["last_layer"]);
  for (int k : {0, 1}) {
    EXPECT_NEAR(after["stages"][k]["compute_ms"].get<double>(),
                2 * before["stages"][k]["compute_ms"].get<double>(), 1e-3);
  }
  // The links' work (the source's copy, the hop) does not grow with compute: a little more.
  EXPECT_NEAR(after["predicted_fps"].get<double>() / before["predicted_fps"].get<double>(), 0.5,
              0.03);

  dir.Write("bad.json", R"({"stages": [{"first_layer": 3, "last_layer": 17}]})");
  out = RunCli("plan --model yolo-tiny --price " + (dir / "bad.json") + nodes, &status);
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find("do not cover yolo-tiny's layers"), std::string::npos) << out;
}

TEST(PlanCli, PlansFromAClustersNodeList) {
  TempDir dir;
  Json rk = Rk3399();
  Json list = {
      {"kind", "NodeList"},
      {"items",
       Json::array(
           {{{"metadata", {{"name", "rock-1"}, {"labels", rk["labels"]}}},
             {"status",
              {{"allocatable", {{"edgefd.io/big-cpu", "2"}, {"edgefd.io/little-cpu", "3"}}}}}},
            {{"metadata", {{"name", "control-plane"}, {"labels", Json::object()}}},
             {"status", Json::object()}}})}};
  std::vector<std::string> skipped;
  auto nodes = NodesFromNodeList(list, "nodes.json", &skipped);
  ASSERT_TRUE(nodes.ok()) << nodes.error().message;
  ASSERT_EQ(nodes->size(), 1u);
  EXPECT_EQ((*nodes)[0].name, "rock-1");
  ASSERT_EQ((*nodes)[0].classes.size(), 2u);
  EXPECT_EQ((*nodes)[0].classes[0].cpus.size(), 2u);  // big: as allocatable says
  EXPECT_EQ((*nodes)[0].classes[1].cpus.size(),
            3u);  // little: 3 of its 4 cores, as allocatable says
  EXPECT_EQ((*nodes)[0].classes[0].max_mhz, 1800);
  ASSERT_EQ(skipped.size(), 1u);
  EXPECT_NE(skipped[0].find("control-plane"), std::string::npos);

  dir.Write("nodes.json", DumpJson(list));
  int status = 0;
  std::string out =
      RunCli("plan --model yolo-tiny --json --node-list " + (dir / "nodes.json"), &status);
  ASSERT_EQ(status, 0) << out;
  EXPECT_NE(out.find("\"node\": \"rock-1\""), std::string::npos) << out;
  EXPECT_FALSE(NodesFromNodeList(Json::object(), "x.json", &skipped).ok());
}

TEST(ProbeLinkCli, ATimeoutIsAFailureWithAClearMessage) {
  int status = 0;
  std::string out = RunCli("probe-link --listen 127.0.0.1:0 --timeout-ms 50", &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_NE(out.find("no client connected within 50 ms"), std::string::npos) << out;
}

}  // namespace
}  // namespace edgefd::runtime
