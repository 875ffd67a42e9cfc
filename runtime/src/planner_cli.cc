// calibrate, plan and probe-link: the planner's side of edgefd-pipeline (planner.h).
#include "planner_cli.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "edgefd/common/cli.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/common/files.h"
#include "edgefd/common/program.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/plan_command.h"
#include "edgefd/runtime/planner.h"
#include "edgefd/runtime/probe_link.h"
#include "edgefd/runtime/stage_args.h"
#include "edgefd/runtime/threads.h"

namespace edgefd::runtime {

struct PlannerCommands {
  CLI::App* calibrate = nullptr;
  CLI::App* plan = nullptr;
  CLI::App* probe = nullptr;

  struct {
    ModelSpec model;
    std::string node_file;
    std::optional<std::vector<int>> cpus;
    int iterations = 5;
    int max_threads = 0;
    std::string out;
  } cal;

  PlanArgs plan_args;

  struct {
    std::string listen, connect;
    double seconds = 2;
    int64_t timeout_ms = 10000;
    bool json = false;
  } probe_args;
};

namespace {

int Complain(const char* command, int code, const std::string& message) {
  std::fprintf(stderr, "edgefd-pipeline %s: %s\n", command, message.c_str());
  return code;
}

Result<std::vector<int>> CpuListFlag(const std::string& text) {
  auto list = edgefd::ParseCpuList(text);
  if (!list || list->empty()) return Error{"'" + text + "' is not a CPU list like 0,1 or 0-3"};
  return *list;
}

void AddCalibrateFlags(CLI::App& app, PlannerCommands& c) {
  auto& a = c.cal;
  AddModelFlags(app, a.model);
  app.add_option("--node", a.node_file,
                 "this node's 'edgefd-labeller --dry-run --output json' (its core classes; "
                 "default: every CPU this process may use, as one class, big)")
      ->type_name("FILE");
  app.add_option_function<std::string>(
         "--cpus", [&a](const std::string& text) { a.cpus = *CpuListFlag(text); },
         "measure only these cores")
      ->type_name("LIST")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            auto r = CpuListFlag(text);
            return r ? "" : r.error().message;
          },
          ""));
  app.add_option("--iterations", a.iterations, "runs of each layer (default: 5; the median)")
      ->type_name("N")
      ->check(IntegerIn(1, 1000));
  app.add_option("--max-threads", a.max_threads, "measure 1..T threads (default: every core)")
      ->type_name("T")
      ->check(IntegerIn(0, 1024));
  app.add_option("--out", a.out, "write the calibration here (default: standard output)")
      ->type_name("FILE");
}

int CmdCalibrate(PlannerCommands& c) {
  auto& a = c.cal;
  CalibrateOptions o;
  o.iterations = a.iterations;
  o.max_threads = a.max_threads;
  NodeInventory node;
  if (!a.node_file.empty()) {
    auto parsed = ReadNodeFile(a.node_file);
    if (!parsed) return Complain("calibrate", kExitUsage, parsed.error().message);
    node = std::move(*parsed);
  } else {
    CoreClass all;
    all.name = "big";
    all.cpus = ReadCpuLimits("/", Allocation{}).cpuset;
    node.classes.push_back(all);
  }
  o.cpu_model = node.cpu_model;
  for (CoreClass& cls : node.classes) {
    if (a.cpus) {
      std::erase_if(cls.cpus, [&](int cpu) {
        return std::find(a.cpus->begin(), a.cpus->end(), cpu) == a.cpus->end();
      });
    }
    if (!cls.cpus.empty()) o.classes.push_back(cls);
  }
  if (o.classes.empty()) {
    return Complain("calibrate", kExitUsage, "--cpus leaves no core of this node to measure");
  }
  auto model = BuildModel(a.model);
  if (!model) return Complain("calibrate", kExitUsage, model.error().message);
  for (const CoreClass& cls : o.classes) {
    std::fprintf(stderr, "calibrate: %s on %s cores %s, 1..%zu thread(s)\n", model->name.c_str(),
                 cls.name.c_str(), FormatCpuList(cls.cpus).c_str(),
                 a.max_threads > 0 ? std::min<size_t>(size_t(a.max_threads), cls.cpus.size())
                                   : cls.cpus.size());
  }
  auto cal = Calibrate(*model, o);
  if (!cal) return Complain("calibrate", kExitFailure, cal.error().message);
  const std::string text = DumpJson(CalibrationJson(*cal), 2) + "\n";
  if (a.out.empty()) {
    std::fputs(text.c_str(), stdout);
  } else {
    std::ofstream out(a.out, std::ios::trunc);
    out << text;
    if (!out) return Complain("calibrate", kExitFailure, a.out + ": cannot write");
  }
  for (const auto& k : cal->classes) {
    for (const auto& [threads, g] : k.gflops) {
      std::fprintf(stderr, "calibrate: %s, %d thread(s): %.1f GFLOP/s\n", k.name.c_str(), threads,
                   g);
    }
  }
  return kExitOk;
}

// A placement from an earlier `plan --json` (stages' layers, node, class and wire), priced
// with the nodes' current figures.
Result<Plan> PriceGivenPlan(const std::string& file, const Model& model,
                            const std::vector<NodeInventory>& nodes, const PlannerOptions& o) {
  auto text = ReadFileAtMost(file, 1 << 20, "plan");
  if (!text) return text.error();
  auto doc = ParseJson(*text, file);
  if (!doc) return doc.error();
  const Json* stages = ValueAt(*doc, "/stages");
  if (stages == nullptr || !stages->is_array() || stages->empty() ||
      stages->size() > size_t(kMaxStages)) {
    return Error{file + ": no \"stages\" (expected 'edgefd-pipeline plan --json' output)"};
  }
  std::vector<PlannedStage> out;
  int next_first = 0;
  for (const Json& s : *stages) {
    PlannedStage st;
    const auto first = IntegerAt(s, "/first_layer");
    const auto last = IntegerAt(s, "/last_layer");
    if (!first || !last || *first != next_first || *last < *first ||
        *last >= int64_t(model.layers.size())) {
      return Error{file + ": the stages do not cover " + model.name + "'s layers in order"};
    }
    st.first = int(*first);
    st.last = int(*last) + 1;
    next_first = st.last;
    st.node = -1;
    for (size_t n = 0; n < nodes.size(); ++n) {
      if (nodes[n].name == StringAt(s, "/node")) st.node = int(n);
    }
    if (st.node < 0) return Error{file + ": node '" + StringAt(s, "/node") + "' is not given"};
    st.node_name = nodes[size_t(st.node)].name;
    st.core_class = StringAt(s, "/core_class");
    for (const CoreClass& c : nodes[size_t(st.node)].classes) {
      if (c.name == st.core_class) st.cpus = c.cpus;
    }
    if (st.cpus.empty()) {
      return Error{file + ": node " + st.node_name + " has no " + st.core_class + " cores"};
    }
    const Json* wire = ValueAt(s, "/wire");
    if (wire != nullptr && wire->is_string()) {
      auto f = ParseWireFormat(wire->get<std::string>());
      if (!f) return Error{file + ": unknown wire format " + wire->dump()};
      st.wire = *f;
    }
    out.push_back(std::move(st));
  }
  if (next_first != int(model.layers.size())) {
    return Error{file + ": the stages end before " + model.name + "'s last layer"};
  }
  return PricePlan(model, nodes, std::move(out), o);
}

// The nodes of --nodes, --node-list and --from-cluster, each name once.
Result<std::vector<NodeInventory>> ReadPlanNodes(const PlanArgs& a, const Model& model,
                                                 const std::string& program,
                                                 const ClusterNodeReader& cluster) {
  std::vector<NodeInventory> nodes;
  auto add = [&](NodeInventory node) -> Status {
    if (node.calibration) {
      if (Status s = CheckCalibrationFor(*node.calibration, model, node.calibration_source); !s) {
        return s;
      }
    }
    for (const NodeInventory& other : nodes) {
      if (other.name == node.name) {
        return Error{node.origin + ": node " + node.name + " is also " + other.origin +
                     " (give each file its own \"node\" name)"};
      }
    }
    nodes.push_back(std::move(node));
    return Ok{};
  };
  for (const std::string& file : a.nodes) {
    auto node = ReadNodeFile(file);
    if (!node) return node.error();
    if (Status s = add(std::move(*node)); !s) return s.error();
  }
  auto add_listed = [&](Result<std::vector<NodeInventory>> listed, const std::string& where,
                        const std::vector<std::string>& skipped) -> Status {
    if (!listed) return listed.error();
    for (const std::string& s : skipped) {
      std::fprintf(stderr, "%s: %s: skipped %s\n", program.c_str(), where.c_str(), s.c_str());
    }
    if (listed->empty()) {
      std::string why;
      for (const std::string& s : skipped) why += (why.empty() ? "" : ", ") + s;
      return Error{"no usable node in " + where + ": " +
                   (why.empty() ? std::string("it lists no Node") : why)};
    }
    for (NodeInventory& n : *listed) {
      if (Status s = add(std::move(n)); !s) return s;
    }
    return Ok{};
  };
  if (!a.node_list.empty()) {
    auto text = ReadFileAtMost(a.node_list, 64 << 20, "node list");
    if (!text) return text.error();
    auto doc = ParseJson(*text, a.node_list);
    if (!doc) return doc.error();
    std::vector<std::string> skipped;
    auto listed = NodesFromNodeList(*doc, a.node_list, &skipped);
    if (Status s = add_listed(std::move(listed), a.node_list, skipped); !s) return s.error();
  }
  if (a.from_cluster) {
    if (!cluster) {
      return Error{
          "--from-cluster: the stage binary does not talk to the API server; run "
          "'edgefd-plan --from-cluster' (same flags, plus --kubeconfig)"};
    }
    std::vector<std::string> skipped;
    auto listed = cluster(&skipped);
    if (!listed) return Error{"the cluster: " + listed.error().message};
    if (Status s = add_listed(std::move(listed), "the cluster", skipped); !s) return s.error();
  }
  if (a.nodes.empty() && a.node_list.empty() && !a.from_cluster) {
    return Error{"give the nodes: --nodes FILE..., --node-list FILE or --from-cluster"};
  }
  return nodes;
}

}  // namespace

void AddPlanFlags(CLI::App& app, PlanArgs& a) {
  AddModelFlags(app, a.model);
  app.add_option("--nodes", a.nodes,
                 "node inventories: 'edgefd-labeller --dry-run --output json' files, optionally "
                 "with \"cpus\": [..], \"calibration\", \"node\", \"link_mbps\" (repeatable)")
      ->type_name("FILE");
  app.add_option("--node-list", a.node_list,
                 "a cluster's nodes: 'kubectl get nodes -o json' (edgefd's labels, allocatable "
                 "cores, published GFLOP/s)")
      ->type_name("FILE");
  app.add_flag("--from-cluster", a.from_cluster,
               "read the nodes from the API server: Nodes with edgefd's labels, their "
               "allocatable cores and the edgefd.io ResourceSlices (edgefd-plan only)");
  app.add_option("--link-mbps", a.options.link_mbps,
                 "bandwidth between two nodes, Mbit/s of whole frames, headers included, as a "
                 "NIC or tc counts them (default: 1000; measure it: probe-link's line_mbps)")
      ->type_name("B")
      ->check(NumberIn(1e-3, 1e9));
  app.add_option("--link-mtu", a.options.framing.mtu,
                 "IP MTU of the links between nodes: the TCP segment size the planner charges "
                 "headers for (default: 1500)")
      ->type_name("BYTES")
      ->check(IntegerIn(576, 65536));
  app.add_option("--stages", a.options.stages, "exactly this many stages (default: the best)")
      ->type_name("N")
      ->check(IntegerIn(1, kMaxStages));
  app.add_option("--latency-ms", a.options.latency_ms,
                 "one frame must pass every stage within this (default: no bound)")
      ->type_name("L")
      ->check(NumberIn(0, 1e9));
  app.add_option("--wire", a.wire, "wire formats the cuts may use (default: float32,float16,int8)")
      ->type_name("LIST");
  app.add_option("--naive", a.naive_stages,
                 "also price the equal-compute split into N stages on the nodes in order")
      ->type_name("N")
      ->check(IntegerIn(0, kMaxStages));
  app.add_option("--price", a.price,
                 "price this placement (a 'plan --json' output) with the nodes given, rather "
                 "than search")
      ->type_name("FILE");
  app.add_flag("--json", a.json, "print the plan as JSON");
  app.add_option("--out", a.out, "write manifests for 'kubectl apply -k DIR' into DIR")
      ->type_name("DIR");
  app.add_option("--name", a.manifests.name, "prefix of the manifests' objects (default: planned)")
      ->type_name("NAME");
  app.add_option("--image", a.manifests.image, "the image of the manifests' pods")
      ->type_name("IMAGE");
  app.add_option("--source-fps", a.manifests.source_fps,
                 "the manifests' source paces frames at this rate (default: 10)")
      ->type_name("F")
      ->check(NumberIn(0, 1e6));
}

int RunPlan(PlanArgs& a, const std::string& program, const ClusterNodeReader& cluster) {
  auto complain = [&program](int code, const std::string& message) {
    std::fprintf(stderr, "%s: %s\n", program.c_str(), message.c_str());
    return code;
  };
  auto model = MakeModel(a.model.name, a.model.conv);
  if (!model) return complain(kExitUsage, model.error().message);
  a.options.formats.clear();
  std::string rest = a.wire;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    const std::string word = rest.substr(0, comma);
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
    auto f = ParseWireFormat(word);
    if (!f) return complain(kExitUsage, "--wire: '" + word + "' is not a wire format");
    a.options.formats.push_back(*f);
  }
  if (a.options.formats.empty() || a.options.formats.front() != WireFormat::kFloat32) {
    a.options.formats.insert(a.options.formats.begin(), WireFormat::kFloat32);
  }
  auto nodes = ReadPlanNodes(a, *model, program, cluster);
  if (!nodes) {
    // The cluster could not be read (unreachable, refused): a failure, not bad input.
    const bool unreachable =
        a.from_cluster && cluster && nodes.error().message.rfind("the cluster:", 0) == 0;
    return complain(unreachable ? kExitFailure : kExitUsage, nodes.error().message);
  }
  auto plan = a.price.empty() ? MakePlan(*model, *nodes, a.options)
                              : PriceGivenPlan(a.price, *model, *nodes, a.options);
  if (!plan) {
    const bool bound = plan.error().message.rfind("no placement", 0) == 0;
    return complain(bound ? kExitNoPlacement : kExitUsage, plan.error().message);
  }
  std::optional<Plan> naive;
  if (a.naive_stages > 0) {
    auto n = EqualComputePlan(*model, *nodes, a.naive_stages, a.options);
    if (!n) return complain(kExitUsage, "--naive: " + n.error().message);
    naive = std::move(*n);
  }
  if (a.json) {
    Json j = PlanToJson(*model, *plan);
    j["link_mbps"] = a.options.link_mbps;
    j["link_mtu"] = a.options.framing.mtu;
    if (naive) j["naive"] = PlanToJson(*model, *naive);
    std::printf("%s\n", DumpJson(j, 2).c_str());
  } else {
    std::printf("%s", FormatPlanText(*model, *plan).c_str());
    if (naive) {
      std::printf("\nthe equal-compute split, for comparison:\n%s",
                  FormatPlanText(*model, *naive).c_str());
    }
  }
  if (!a.out.empty()) {
    if (Status s = WritePlanManifests(a.out, a.model, *plan, a.manifests); !s) {
      return complain(kExitFailure, s.error().message);
    }
    std::fprintf(stderr,
                 "%s: wrote %s/pipeline.yaml and kustomization.yaml (kubectl apply -k "
                 "%s; nothing was applied)\n",
                 program.c_str(), a.out.c_str(), a.out.c_str());
  }
  return kExitOk;
}

namespace {

void AddProbeFlags(CLI::App& app, PlannerCommands& c) {
  auto& a = c.probe_args;
  auto* listen = app.add_option("--listen", a.listen, "serve one probe on HOST:PORT or :PORT")
                     ->type_name("ADDR");
  auto* connect =
      app.add_option("--connect", a.connect, "probe the link to HOST:PORT")->type_name("ADDR");
  listen->excludes(connect);
  app.add_option("--seconds", a.seconds, "send for this long (default: 2)")
      ->type_name("S")
      ->check(NumberIn(0.01, 600));
  app.add_option("--timeout-ms", a.timeout_ms,
                 "give up when the peer does not answer within this (default: 10000)")
      ->type_name("MS")
      ->check(IntegerIn(1, 3600000));
  app.add_flag("--json", a.json, "print the figures as JSON");
}

int CmdProbe(PlannerCommands& c) {
  auto& a = c.probe_args;
  if (a.listen.empty() == a.connect.empty()) {
    return Complain("probe-link", kExitUsage, "give --listen ADDR or --connect ADDR");
  }
  const std::chrono::milliseconds timeout(a.timeout_ms);
  Result<LinkProbe> probe =
      a.listen.empty()
          ? ProbeLink(a.connect, std::chrono::milliseconds(int64_t(a.seconds * 1000)), timeout)
          : ServeLinkProbe(a.listen, timeout, [](int port) {
              std::fprintf(stderr, "probe-link: listening on port %d\n", port);
            });
  if (!probe) return Complain("probe-link", kExitFailure, probe.error().message);
  if (a.json) {
    // mbps: TCP payload; line_mbps: what plan --link-mbps takes (headers counted).
    const Json j = {{"bytes", probe->bytes},
                    {"seconds", RoundTo(probe->seconds, 4)},
                    {"mbps", RoundTo(probe->Mbps(), 2)},
                    {"line_mbps", RoundTo(probe->LineMbps(LinkFraming{}.link_header), 2)},
                    {"mss", probe->mss},
                    {"mtu", probe->mtu}};
    std::printf("%s\n", DumpJson(j).c_str());
  } else {
    std::printf(
        "%.1f Mbit/s of TCP payload (%llu bytes in %.3f s); %.1f Mbit/s on the link with "
        "headers (MSS %d, MTU %d): plan --link-mbps %.1f\n",
        probe->Mbps(), (unsigned long long)probe->bytes, probe->seconds,
        probe->LineMbps(LinkFraming{}.link_header), probe->mss, probe->mtu,
        probe->LineMbps(LinkFraming{}.link_header));
  }
  return kExitOk;
}

}  // namespace

PlannerCommands* AddPlannerCommands(CLI::App& app) {
  static PlannerCommands commands;
  commands.calibrate = app.add_subcommand(
      "calibrate", "measures this node's core classes on a model's layers (JSON for plan)");
  AddCalibrateFlags(*commands.calibrate, commands);
  commands.plan =
      app.add_subcommand("plan", "places a model's stages on nodes and predicts its speed");
  AddPlanFlags(*commands.plan, commands.plan_args);
  commands.probe = app.add_subcommand("probe-link", "measures the bandwidth between two pods");
  AddProbeFlags(*commands.probe, commands);
  for (CLI::App* cmd : {commands.calibrate, commands.plan, commands.probe}) {
    cmd->formatter(app.get_formatter());
  }
  return &commands;
}

std::optional<int> RunPlannerCommand(PlannerCommands& c) {
  if (c.calibrate->parsed()) return CmdCalibrate(c);
  if (c.plan->parsed()) return RunPlan(c.plan_args, "edgefd-pipeline plan", {});
  if (c.probe->parsed()) return CmdProbe(c);
  return std::nullopt;
}

}  // namespace edgefd::runtime
