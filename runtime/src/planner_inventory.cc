// What the planner reads: calibration files and node inventories (planner.h).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>

#include "edgefd/common/files.h"
#include "edgefd/runtime/planner.h"

namespace edgefd::runtime {
namespace {

constexpr size_t kMaxNodeFileBytes = 1 << 20;
constexpr int kMaxCpuId = 4095;
constexpr int kMaxThreads = 1024;

bool ValidClassName(const std::string& name) {
  return name == "big" || name == "mid" || name == "little";
}

// A list of distinct CPU numbers 0..4095.
Result<std::vector<int>> CpuArray(const Json& j, const std::string& where) {
  if (!j.is_array() || j.size() > size_t(kMaxCpuId) + 1) {
    return Error{where + ": expected an array of CPU numbers"};
  }
  std::vector<int> cpus;
  std::set<int> seen;
  for (const Json& v : j) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxCpuId) {
      return Error{where + ": " + v.dump() + " is not a CPU number (0.." +
                   std::to_string(kMaxCpuId) + ")"};
    }
    if (!seen.insert(v.get<int>()).second) {
      return Error{where + ": CPU " + v.dump() + " is listed twice"};
    }
    cpus.push_back(v.get<int>());
  }
  return cpus;
}

// A positive, finite figure.
std::optional<double> Positive(const Json& j) {
  if (!j.is_number()) return std::nullopt;
  const double v = j.get<double>();
  if (!std::isfinite(v) || v <= 0 || v > 1e9) return std::nullopt;
  return v;
}

int LabelInt(const Json& labels, const std::string& name) {
  const std::string text = StringAt(labels, "/" + name);
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return 0;
  }
  return std::stoi(text);
}

std::optional<double> LabelNumber(const Json& labels, const std::string& name) {
  const std::string text = StringAt(labels, "/" + name);
  if (text.empty() || text.size() > 32) return std::nullopt;
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (end != text.c_str() + text.size() || !std::isfinite(v) || v <= 0) return std::nullopt;
  return v;
}

Result<Calibration::Class> ParseCalibrationClass(const Json& j, const std::string& where,
                                                 size_t layer_count) {
  Calibration::Class c;
  c.name = StringAt(j, "/class");
  if (!ValidClassName(c.name)) return Error{where + ": class must be big, mid or little"};
  if (const Json* cpus = ValueAt(j, "/cpus")) {
    auto list = CpuArray(*cpus, where + ".cpus");
    if (!list) return list.error();
    c.cpus = *list;
  }
  const Json* runs = ValueAt(j, "/threads");
  if (runs == nullptr || !runs->is_array() || runs->empty() || runs->size() > kMaxThreads) {
    return Error{where + ": \"threads\" must list the measured thread counts"};
  }
  for (const Json& run : *runs) {
    const auto t = IntegerAt(run, "/threads");
    if (!t || *t < 1 || *t > kMaxThreads) return Error{where + ": a run without \"threads\""};
    const Json* ms = ValueAt(run, "/layer_ms");
    if (ms == nullptr || !ms->is_array() || ms->size() != layer_count) {
      return Error{where + ": the " + std::to_string(*t) + "-thread run must give layer_ms for " +
                   std::to_string(layer_count) + " layers"};
    }
    std::vector<double>& out = c.layer_ms[int(*t)];
    for (const Json& v : *ms) {
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
          v.get<double>() > 1e7) {
        return Error{where + ": layer_ms holds " + v.dump() + ", not a time in ms"};
      }
      out.push_back(v.get<double>());
    }
    if (auto g = ValueAt(run, "/gflops"); g != nullptr && Positive(*g)) {
      c.gflops[int(*t)] = *Positive(*g);
    }
    if (const Json* kinds = ValueAt(run, "/kind_gflops"); kinds != nullptr && kinds->is_object()) {
      for (const auto& [kind, v] : kinds->items()) {
        if (auto g = Positive(v)) c.kind_gflops[int(*t)][kind] = *g;
      }
    }
  }
  if (const Json* links = ValueAt(j, "/links")) {
    auto l = ParseLinkCosts(*links, where + ".links");
    if (!l) return l.error();
    c.links = *l;
  }
  return c;
}

}  // namespace

Json LinkCostsJson(const LinkCosts& c) {
  Json encode = Json::object(), decode = Json::object();
  for (const auto& [f, ns] : c.encode_ns) encode[f] = RoundTo(ns, 4);
  for (const auto& [f, ns] : c.decode_ns) decode[f] = RoundTo(ns, 4);
  return {{"hop_ms", RoundTo(c.hop_ms, 4)},
          {"hop_ns_per_byte", RoundTo(c.hop_ns_per_byte, 4)},
          {"copy_gbps", RoundTo(c.copy_gbps, 3)},
          {"encode_ns_per_element", std::move(encode)},
          {"decode_ns_per_element", std::move(decode)}};
}

Result<LinkCosts> ParseLinkCosts(const Json& j, const std::string& where) {
  LinkCosts c;
  // Zero is a measurement (too small to see); negative, huge or not a number is not.
  auto figure = [&](const char* key, double* out) -> Status {
    const Json* v = ValueAt(j, std::string("/") + key);
    if (v == nullptr || !v->is_number() || !std::isfinite(v->get<double>()) ||
        v->get<double>() < 0 || v->get<double>() > 1e6) {
      return Error{where + ": \"" + key + "\" must be a number from 0 to 1e6"};
    }
    *out = v->get<double>();
    return Ok{};
  };
  if (!j.is_object()) return Error{where + ": not an object"};
  for (auto [key, out] : {std::pair{"hop_ms", &c.hop_ms},
                          {"hop_ns_per_byte", &c.hop_ns_per_byte},
                          {"copy_gbps", &c.copy_gbps}}) {
    if (Status s = figure(key, out); !s) return s.error();
  }
  for (auto [key, out] : {std::pair{"encode_ns_per_element", &c.encode_ns},
                          {"decode_ns_per_element", &c.decode_ns}}) {
    const Json* m = ValueAt(j, std::string("/") + key);
    if (m == nullptr) continue;
    if (!m->is_object()) return Error{where + ": \"" + key + "\" must be an object"};
    for (const auto& [format, v] : m->items()) {
      if (!ParseWireFormat(format)) return Error{where + ": unknown wire format " + format};
      if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0 ||
          v.get<double>() > 1e6) {
        return Error{where + ": " + key + "." + format + " is not a time in ns"};
      }
      (*out)[format] = v.get<double>();
    }
  }
  return c;
}

const Calibration::Class* Calibration::Find(const std::string& name) const {
  for (const Class& c : classes) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Json CalibrationJson(const Calibration& c) {
  Json classes = Json::array();
  for (const Calibration::Class& k : c.classes) {
    Json runs = Json::array();
    for (const auto& [threads, ms] : k.layer_ms) {
      Json layer_ms = Json::array();
      for (double v : ms) layer_ms.push_back(RoundTo(v, 4));
      Json kinds = Json::object();
      if (auto it = k.kind_gflops.find(threads); it != k.kind_gflops.end()) {
        for (const auto& [kind, g] : it->second) kinds[kind] = RoundTo(g, 2);
      }
      auto g = k.gflops.find(threads);
      runs.push_back({{"threads", threads},
                      {"gflops", g == k.gflops.end() ? 0.0 : RoundTo(g->second, 2)},
                      {"kind_gflops", std::move(kinds)},
                      {"layer_ms", std::move(layer_ms)}});
    }
    Json cls = {{"class", k.name}, {"cpus", k.cpus}, {"threads", std::move(runs)}};
    if (k.links) cls["links"] = LinkCostsJson(*k.links);
    classes.push_back(std::move(cls));
  }
  return {{"kind", "edgefd-pipeline calibration"},
          {"model", c.model},
          {"input", c.input},
          {"cpu_model", c.cpu_model},
          {"classes", std::move(classes)}};
}

Result<Calibration> ParseCalibration(const Json& j, const std::string& source) {
  if (StringAt(j, "/kind") != "edgefd-pipeline calibration") {
    return Error{source + ": not a calibration (edgefd-pipeline calibrate writes one)"};
  }
  Calibration c;
  c.model = StringAt(j, "/model");
  c.input = StringAt(j, "/input");
  c.cpu_model = StringAt(j, "/cpu_model");
  // The layer count follows from the model it names; an unknown model is refused when it is
  // used (CheckCalibrationFor), so take the count from the first run here.
  const Json* classes = ValueAt(j, "/classes");
  if (classes == nullptr || !classes->is_array() || classes->empty() || classes->size() > 3) {
    return Error{source + ": \"classes\" must list 1 to 3 core classes"};
  }
  const Json* first_ms = ValueAt(*classes, "/0/threads/0/layer_ms");
  const size_t layers = first_ms != nullptr && first_ms->is_array() ? first_ms->size() : 0;
  if (layers == 0 || layers > 4096) return Error{source + ": no per-layer times"};
  for (size_t i = 0; i < classes->size(); ++i) {
    auto k = ParseCalibrationClass((*classes)[i], source + ": class " + std::to_string(i), layers);
    if (!k) return k.error();
    if (c.Find(k->name)) return Error{source + ": class " + k->name + " appears twice"};
    c.classes.push_back(std::move(*k));
  }
  return c;
}

Status CheckCalibrationFor(const Calibration& c, const Model& model, const std::string& source) {
  const std::string input = model.Input().ToString();
  if (c.model != model.name || c.input != input) {
    return Error{source + ": a calibration of model " + c.model + " (input " + c.input +
                 "), not of " + model.name + " (input " + input + "); run 'edgefd-pipeline " +
                 "calibrate --model " + model.name + "' on that node"};
  }
  for (const Calibration::Class& k : c.classes) {
    for (const auto& [threads, ms] : k.layer_ms) {
      if (ms.size() != model.layers.size()) {
        return Error{source + ": " + std::to_string(ms.size()) + " layer times, " + model.name +
                     " has " + std::to_string(model.layers.size()) + " layers"};
      }
    }
  }
  return Ok{};
}

Result<NodeInventory> ParseNodeInventory(const Json& j, const std::string& origin,
                                         const std::string& dir) {
  NodeInventory node;
  node.origin = origin;
  if (!j.is_object()) return Error{origin + ": not a JSON object"};
  const Json* labels = ValueAt(j, "/labels");
  if (labels == nullptr || !labels->is_object()) {
    return Error{origin + ": no \"labels\" (expected the output of 'edgefd-labeller --dry-run " +
                 "--output json')"};
  }
  node.arch = StringAt(*labels, "/edgefd.io~1cpu.arch");
  node.cpu_model = StringAt(*labels, "/edgefd.io~1cpu.model");
  if (node.cpu_model.empty()) node.cpu_model = StringAt(*labels, "/edgefd.io~1cpu.big.model");
  node.name = StringAt(j, "/node");
  if (node.name.empty()) node.name = StringAt(*labels, "/kubernetes.io~1hostname");
  if (node.name.empty()) node.name = std::filesystem::path(origin).stem().string();
  if (node.name.empty() || node.name.size() > 253 ||
      !std::all_of(node.name.begin(), node.name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
      })) {
    return Error{origin + ": node name '" + node.name +
                 "' is not a Kubernetes node name (give \"node\": \"NAME\")"};
  }
  // The class map: the labeller's "cpus" object, or "classes" where "cpus" restricts.
  const Json* cpus = ValueAt(j, "/cpus");
  const Json* map = cpus != nullptr && cpus->is_object() ? cpus : ValueAt(j, "/classes");
  std::optional<std::vector<int>> only;
  if (cpus != nullptr && cpus->is_array()) {
    auto list = CpuArray(*cpus, origin + ": \"cpus\"");
    if (!list) return list.error();
    if (list->empty()) return Error{origin + ": \"cpus\" is empty: no core to place a stage on"};
    only = *list;
  }
  Json homogeneous;
  if (map == nullptr) {
    // A homogeneous node's restriction needs no map: every core is of its one class.
    if (!only || StringAt(*labels, "/edgefd.io~1cpu.heterogeneous") == "true") {
      return Error{origin + ": no core classes (\"cpus\": {\"big\": [..], ...} as the labeller " +
                   "prints, or \"classes\" beside a \"cpus\" array)"};
    }
    homogeneous = {{"all", *only}};
    map = &homogeneous;
  }
  if (!map->is_object() || map->size() > 3) return Error{origin + ": bad core class map"};
  for (const auto& [key, value] : map->items()) {
    CoreClass cls;
    // A homogeneous node's cores are all "big" (DESIGN.md, device plugin contract).
    cls.name = key == "all" ? "big" : key;
    if (!ValidClassName(cls.name)) return Error{origin + ": unknown core class '" + key + "'"};
    auto list = CpuArray(value, origin + ": cpus." + key);
    if (!list) return list.error();
    cls.cpus = *list;
    const std::string prefix = key == "all" ? "edgefd.io~1cpu" : "edgefd.io~1cpu." + cls.name;
    if (int cap = LabelInt(*labels, prefix + ".capacity"); cap > 0) cls.capacity = cap;
    cls.max_mhz = LabelInt(*labels, prefix + ".max-mhz");
    cls.published_gflops = LabelNumber(*labels, "edgefd.io~1cpu." + cls.name + ".gflops");
    cls.published_cores = LabelInt(*labels, prefix + ".cores");
    if (cls.published_gflops)
      cls.published_from = "published edgefd.io/cpu." + cls.name + ".gflops";
    node.classes.push_back(std::move(cls));
  }
  if (only) {
    std::set<int> known;
    for (CoreClass& cls : node.classes) {
      known.insert(cls.cpus.begin(), cls.cpus.end());
      std::erase_if(cls.cpus,
                    [&](int c) { return std::find(only->begin(), only->end(), c) == only->end(); });
    }
    for (int c : *only) {
      if (!known.count(c)) {
        return Error{origin + ": \"cpus\" names CPU " + std::to_string(c) +
                     ", which the node's core classes do not list"};
      }
    }
  }
  std::erase_if(node.classes, [](const CoreClass& c) { return c.cpus.empty(); });
  if (const Json* link = ValueAt(j, "/link_mbps")) {
    node.link_mbps = Positive(*link);
    if (!node.link_mbps) return Error{origin + ": link_mbps must be a positive number"};
  }
  if (const Json* cal = ValueAt(j, "/calibration")) {
    std::string source = origin + ": calibration";
    Json doc = *cal;
    if (cal->is_string()) {
      std::filesystem::path path = cal->get<std::string>();
      if (path.is_relative() && !dir.empty()) path = std::filesystem::path(dir) / path;
      auto text = ReadFileAtMost(path, kMaxNodeFileBytes, "calibration");
      if (!text) return Error{origin + ": " + text.error().message};
      auto parsed = ParseJson(*text, path.string());
      if (!parsed) return parsed.error();
      doc = std::move(*parsed);
      source = path.string();
    }
    auto c = ParseCalibration(doc, source);
    if (!c) return c.error();
    node.calibration = std::move(*c);
    node.calibration_source = source;
  }
  return node;
}

namespace {

// What the edgefd.io driver publishes for `node` in `slices`, from its untainted CPU devices
// (attributes kind "cpu", coreClass, cpu, and with --calibration mflops; resource.k8s.io v1
// puts a device's attributes at its top level, v1beta1 under "basic").
struct SliceClasses {
  std::map<std::string, std::set<int>> cpus;  ///< class -> CPU numbers
  std::map<std::string, int64_t> mflops;      ///< class -> MFLOP/s of one core (the least)
};

SliceClasses FromSlices(const std::vector<Json>& slices, const std::string& node) {
  SliceClasses out;
  for (const Json& slice : slices) {
    if (StringAt(slice, "/spec/driver") != "edgefd.io" ||
        StringAt(slice, "/spec/nodeName") != node) {
      continue;
    }
    const Json* devices = ValueAt(slice, "/spec/devices");
    if (devices == nullptr || !devices->is_array()) continue;
    for (const Json& d : *devices) {
      const Json* body = ValueAt(d, "/basic");
      if (body == nullptr || !body->is_object()) body = &d;
      if (const Json* taints = ValueAt(*body, "/taints");
          taints != nullptr && taints->is_array() && !taints->empty()) {
        continue;  // unplugged, unhealthy or held by the device plugin: not to be placed on
      }
      const Json* attrs = ValueAt(*body, "/attributes");
      if (attrs == nullptr || !attrs->is_object() || StringAt(*attrs, "/kind/string") != "cpu") {
        continue;
      }
      const std::string cls = StringAt(*attrs, "/coreClass/string");
      const auto cpu = IntegerAt(*attrs, "/cpu/int");
      if (!ValidClassName(cls) || !cpu || *cpu < 0 || *cpu > kMaxCpuId) continue;
      out.cpus[cls].insert(int(*cpu));
      // The peer's number: positive and below 1e10 MFLOP/s (the labels' bound), else unused.
      if (const auto mflops = IntegerAt(*attrs, "/mflops/int");
          mflops && *mflops > 0 && *mflops < int64_t(1e10)) {
        auto [it, first] = out.mflops.emplace(cls, *mflops);
        if (!first) it->second = std::min(it->second, *mflops);
      }
    }
  }
  return out;
}

}  // namespace

Result<std::vector<NodeInventory>> NodesFromNodeList(const Json& list, const std::string& origin,
                                                     std::vector<std::string>* skipped,
                                                     const std::vector<Json>& slices) {
  const Json* items = ValueAt(list, "/items");
  if (items == nullptr || !items->is_array() || items->size() > 10000) {
    return Error{origin + ": not a NodeList (expected 'kubectl get nodes -o json')"};
  }
  std::vector<NodeInventory> nodes;
  for (const Json& item : *items) {
    const std::string name = StringAt(item, "/metadata/name");
    const Json* labels = ValueAt(item, "/metadata/labels");
    if (labels == nullptr || !labels->is_object() ||
        StringAt(*labels, "/edgefd.io~1cpu.arch").empty()) {
      skipped->push_back(name + " (no edgefd labels)");
      continue;
    }
    if (const Json* cordoned = ValueAt(item, "/spec/unschedulable");
        cordoned != nullptr && cordoned->is_boolean() && cordoned->get<bool>()) {
      skipped->push_back(name + " (unschedulable)");
      continue;
    }
    const bool hetero = StringAt(*labels, "/edgefd.io~1cpu.heterogeneous") == "true";
    // The cores the DRA driver publishes (real CPU numbers), else those the device plugin
    // hands out, else those the labels count (the plugin assigns the real CPU numbers when it
    // allocates; the plan needs how many).
    Json doc = {{"node", name}, {"labels", *labels}, {"cpus", Json::object()}};
    const SliceClasses sliced = FromSlices(slices, name);
    const auto& published = sliced.cpus;
    for (const char* cls : {"big", "mid", "little"}) {
      const std::string key = hetero ? cls : "all";
      if (auto it = published.find(cls); it != published.end() && (hetero || it->first == "big")) {
        doc["cpus"][key] = Json(std::vector<int>(it->second.begin(), it->second.end()));
        continue;
      }
      int count = 0;
      const std::string allocatable =
          StringAt(item, std::string("/status/allocatable/edgefd.io~1") + cls + "-cpu");
      if (!allocatable.empty() && allocatable.size() < 5 &&
          std::all_of(allocatable.begin(), allocatable.end(),
                      [](char c) { return c >= '0' && c <= '9'; })) {
        count = std::stoi(allocatable);
      } else if (hetero) {
        count = LabelInt(*labels, std::string("edgefd.io~1cpu.") + cls + ".cores");
      } else if (std::string(cls) == "big") {
        count = LabelInt(*labels, "edgefd.io~1cpu.cores");
      }
      if (count <= 0) continue;
      Json cpus = Json::array();
      for (int c = 0; c < count; ++c) cpus.push_back(c);
      doc["cpus"][key] = std::move(cpus);
    }
    if (doc["cpus"].empty()) {
      skipped->push_back(name + " (no cores to give)");
      continue;
    }
    auto node = ParseNodeInventory(doc, origin + ": node " + name, "");
    if (!node) return node.error();
    // Without the labeller's edgefd.io/cpu.<class>.gflops, the DRA driver's measured speed.
    for (CoreClass& cls : node->classes) {
      auto it = sliced.mflops.find(cls.name);
      if (cls.published_gflops || it == sliced.mflops.end()) continue;
      cls.published_gflops = double(it->second) / 1000;
      cls.published_cores = 1;
      cls.published_from = "published DRA attribute mflops of the " + cls.name + " cores";
    }
    nodes.push_back(std::move(*node));
  }
  return nodes;
}

Result<NodeInventory> ReadNodeFile(const std::string& path) {
  auto text = ReadFileAtMost(path, kMaxNodeFileBytes, "node file");
  if (!text) return text.error();
  auto j = ParseJson(*text, path);
  if (!j) return j.error();
  return ParseNodeInventory(*j, path, std::filesystem::path(path).parent_path().string());
}

}  // namespace edgefd::runtime
