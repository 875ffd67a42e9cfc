#include "edgefd/runtime/stage_args.h"

#include <charconv>

#include "edgefd/common/cli.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/runtime/devices.h"

namespace edgefd::runtime {
namespace {

// The shortest text that reads back as exactly `v`.
std::string Number(double v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, ec == std::errc() ? end : buf);
}

// FIRST:LAST with 0 <= FIRST < LAST (the model's layer count is checked by the stage).
std::optional<std::pair<int, int>> ParseLayerRange(const std::string& text) {
  const size_t colon = text.find(':');
  if (colon == std::string::npos) return std::nullopt;
  int first = 0, last = 0;
  const char* begin = text.data();
  const char* mid = begin + colon;
  const char* end = begin + text.size();
  auto [p1, e1] = std::from_chars(begin, mid, first);
  auto [p2, e2] = std::from_chars(mid + 1, end, last);
  if (e1 != std::errc() || e2 != std::errc() || p1 != mid || p2 != end || first < 0 ||
      first >= last) {
    return std::nullopt;
  }
  return std::make_pair(first, last);
}

}  // namespace

std::string PolicyName(Policy policy) { return policy == Policy::kLatest ? "latest" : "block"; }

std::optional<Policy> ParsePolicy(const std::string& name) {
  if (name == "latest") return Policy::kLatest;
  if (name == "block") return Policy::kBlock;
  return std::nullopt;
}

void AddPolicyFlag(CLI::App& app, std::function<void(Policy)> set,
                   const std::string& default_text) {
  app.add_option_function<std::string>(
         "--policy", [set = std::move(set)](const std::string& name) { set(*ParsePolicy(name)); },
         "latest (newest frame only) or block (default: " + default_text + ")")
      ->type_name("P")
      ->check(OneOf({"latest", "block"}));
}

std::optional<double> ParseMilliseconds(const std::string& text) {
  char* end = nullptr;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || !(v >= 0 && v < 1e9)) return std::nullopt;
  return v;
}

void AddModelFlags(CLI::App& app, ModelSpec& model) {
  const std::string group = "Model";
  app.add_option("--model", model.name, "conv or yolo-tiny (default: conv)")
      ->type_name("M")
      ->check(OneOf({"conv", "yolo-tiny"}))
      ->group(group);
  app.add_option("--width", model.conv.width, "conv frame width (default: 1280)")
      ->type_name("W")
      ->check(IntegerIn(4, 16384))
      ->group(group);
  app.add_option("--height", model.conv.height, "conv frame height (default: 720)")
      ->type_name("H")
      ->check(IntegerIn(4, 16384))
      ->group(group);
  app.add_option("--channels", model.conv.channels, "conv frame channels (default: 1)")
      ->type_name("C")
      ->check(IntegerIn(1, 64))
      ->group(group);
  app.add_option("--seed", model.seed, "seed of the weights and the source's frames (default: 42)")
      ->type_name("S")
      ->check(IntegerIn(0, 1LL << 40))
      ->group(group);
  app.add_option("--weights", model.weights_path, "flat float32 weights instead of seeded ones")
      ->type_name("FILE")
      ->group(group);
}

void AddLinkSecurityFlags(CLI::App& app, LinkSecurity& tls) {
  app.add_option("--token-file", tls.token_file,
                 "the pipeline's shared token (a Secret's key): presented when sending, required "
                 "of every stream when listening")
      ->type_name("FILE")
      ->group("Who may push (gRPC links)");
  const std::string group = "TLS (gRPC links; all three or none)";
  app.add_option("--tls-cert", tls.cert, "this end's certificate (PEM); serves and dials with it")
      ->type_name("FILE")
      ->group(group);
  app.add_option("--tls-key", tls.key, "its private key (PEM)")->type_name("FILE")->group(group);
  app.add_option("--tls-ca", tls.ca, "the CA (PEM) that signed the other ends' certificates")
      ->type_name("FILE")
      ->group(group);
}

void AddWireFlag(CLI::App& app, const std::string& name, WireFormat& format,
                 const std::string& what) {
  app.add_option_function<std::string>(
         name, [&format](const std::string& text) { format = *ParseWireFormat(text); },
         what + ": float32, float16 or int8 with a per-tensor scale; both ends of a link must " +
             "agree (default: float32)")
      ->type_name("F")
      ->check(OneOf({"float32", "float16", "int8"}));
}

void AddPipelineMetricsFlags(CLI::App& app, std::string& address) {
  AddMetricsAddrFlag(app, address)
      ->description("serve /healthz, /readyz and /metrics on ADDR (default: none)");
  app.add_option_function<int>(
         "--metrics-port",
         [&address](int port) { address = port < 0 ? "none" : ":" + std::to_string(port); },
         "the same as --metrics-addr :P (-1: none)")
      ->type_name("P")
      ->check(IntegerIn(-1, 65535))
      ->group("Metrics");
}

void AddStageFlags(CLI::App& app, StageArgs& args) {
  AddModelFlags(app, args.model);
  app.add_option("--stages", args.stages, "stages of the pipeline (default: 1)")
      ->type_name("N")
      ->check(IntegerIn(1, kMaxStages));
  app.add_option("--index", args.index, "this stage, from 0 (default: 0)")
      ->type_name("I")
      ->check(IntegerIn(0, kMaxStages - 1));
  app.add_option_function<std::string>(
         "--layers", [&args](const std::string& text) { args.layers = ParseLayerRange(text); },
         "run layers FIRST..LAST-1 (default: this stage's share of the partition)")
      ->type_name("FIRST:LAST")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (ParseLayerRange(text)) return {};
            return "'" + text + "' is not FIRST:LAST with 0 <= FIRST < LAST";
          },
          ""));
  app.add_option("--listen", args.listen,
                 "where frames arrive: shm:NAME, unix:/path, host:port or dns:///svc:port")
      ->type_name("ADDR")
      ->required();
  app.add_option("--next", args.next, "where results go (same forms as --listen)")
      ->type_name("ADDR")
      ->required();
  AddPolicyFlag(
      app, [&args](Policy p) { args.policy = p; }, "latest");
  app.add_option("--threads", args.threads, "compute threads (default: 1)")
      ->type_name("T")
      ->check(IntegerIn(1, 1024));
  app.add_option_function<std::string>(
         "--cpus",
         [&args](const std::string& text) {
           args.cpus = text == "none" ? std::vector<int>{} : *edgefd::ParseCpuList(text);
         },
         "pin compute threads to these CPUs, or none (default: the allocated cores)")
      ->type_name("LIST")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (text == "none" || ParseCpuList("--cpus", text)) return {};
            return "'" + text + "' is not a CPU list like 4,5 or 0-3, nor none";
          },
          ""));
  AddPipelineMetricsFlags(app, args.metrics_addr);
  app.add_option_function<std::string>(
         "--delay-ms",
         [&args](const std::string& text) { args.delay_ms = *ParseMilliseconds(text); },
         "extra milliseconds per frame, to emulate a slow device (default: 0)")
      ->type_name("D")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            if (ParseMilliseconds(text)) return {};
            return "'" + text + "' is not a number of milliseconds";
          },
          ""));
  app.add_option("--idle-exit-ms", args.idle_exit_ms,
                 "exit after this long without input (default: 0, never)")
      ->type_name("MS")
      ->check(IntegerIn(0, 1LL << 40));
  AddWireFlag(app, "--wire-in", args.wire_in, "how frames arrive");
  AddWireFlag(app, "--wire-out", args.wire_out, "how results leave");
  AddLinkSecurityFlags(app, args.tls);
  app.add_flag("--quiet", args.quiet, "log warnings and errors only");
  app.add_flag("--check", args.check, "print the stage's layers and shapes, then exit");
}

std::vector<std::string> StageArgv(const StageArgs& a) {
  std::vector<std::string> out = {"stage",
                                  "--model",
                                  a.model.name,
                                  "--width",
                                  std::to_string(a.model.conv.width),
                                  "--height",
                                  std::to_string(a.model.conv.height),
                                  "--channels",
                                  std::to_string(a.model.conv.channels),
                                  "--seed",
                                  std::to_string(a.model.seed),
                                  "--stages",
                                  std::to_string(a.stages),
                                  "--index",
                                  std::to_string(a.index),
                                  "--listen",
                                  a.listen,
                                  "--next",
                                  a.next,
                                  "--policy",
                                  PolicyName(a.policy),
                                  "--threads",
                                  std::to_string(a.threads),
                                  "--metrics-addr",
                                  a.metrics_addr,
                                  "--delay-ms",
                                  Number(a.delay_ms),
                                  "--idle-exit-ms",
                                  std::to_string(a.idle_exit_ms)};
  auto add = [&out](std::string flag, std::string value) {
    out.push_back(std::move(flag));
    out.push_back(std::move(value));
  };
  if (!a.model.weights_path.empty()) add("--weights", a.model.weights_path);
  if (a.layers) {
    add("--layers", std::to_string(a.layers->first) + ":" + std::to_string(a.layers->second));
  }
  if (a.cpus) add("--cpus", a.cpus->empty() ? "none" : FormatCpuList(*a.cpus));
  if (!a.tls.cert.empty()) add("--tls-cert", a.tls.cert);
  if (!a.tls.key.empty()) add("--tls-key", a.tls.key);
  if (!a.tls.ca.empty()) add("--tls-ca", a.tls.ca);
  if (!a.tls.token_file.empty()) add("--token-file", a.tls.token_file);
  if (a.wire_in != WireFormat::kFloat32) add("--wire-in", WireFormatName(a.wire_in));
  if (a.wire_out != WireFormat::kFloat32) add("--wire-out", WireFormatName(a.wire_out));
  if (a.quiet) out.push_back("--quiet");
  if (a.check) out.push_back("--check");
  return out;
}

Result<StageArgs> ParseStageArgs(const std::vector<std::string>& argv) {
  StageArgs args;
  CLI::App app("", "stage");
  ConfigureApp(app);
  AddStageFlags(app, args);
  std::vector<char*> pointers;
  for (const std::string& a : argv) pointers.push_back(const_cast<char*>(a.c_str()));
  try {
    app.parse(static_cast<int>(pointers.size()), pointers.data());
  } catch (const CLI::ParseError& e) {
    return Error{"stage: " + std::string(e.what())};
  }
  return args;
}

}  // namespace edgefd::runtime
