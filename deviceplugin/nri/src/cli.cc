#include "edgefd/nri/cli.h"

#include <signal.h>
#include <spdlog/spdlog.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "edgefd/common/cli.h"
#include "edgefd/common/cpu_list.h"
#include "edgefd/common/json.h"
#include "edgefd/common/prometheus.h"
#include "edgefd/nri/session.h"

namespace edgefd::nri {
namespace {

namespace fs = std::filesystem;

constexpr char kName[] = "edgefd-nri";

constexpr char kDescription[] =
    R"(The NRI plugin of edgefd: makes the container runtime (containerd >= 1.7, CRI-O >= 1.26)
enforce the cores edgefd hands out. A container given edgefd cores (EDGEFD_BIG_CPUS,
EDGEFD_MID_CPUS, EDGEFD_LITTLE_CPUS, from the device plugin or the DRA driver) gets exactly those
cores as its cpuset, as far as the node's allocation record (the kubelet's PodResources API, the
DRA driver's checkpoint) confirms the container holds them: a core a pod named itself is
refused. With the exclusive policy every other container is kept off held cores and gets
them back when they are freed. Without NRI on the node it says so and keeps trying. Runs until
SIGTERM or SIGINT.)";

constexpr char kFooter[] =
    R"(Exit status: 0 clean stop, 1 runtime failure, 2 bad usage or a configuration it refuses
(the kubelet's static CPU manager policy).)";

struct Flags {
  SessionOptions session;
  std::string policy = "exclusive";
  fs::path root = "/";
  fs::path kubelet_dir = "/var/lib/kubelet";
  fs::path pod_resources_socket;  // default: under kubelet_dir
  fs::path dra_checkpoint;        // default: under kubelet_dir
  std::string metrics_address = ":9481";
  std::string log_level = "info";
};

std::optional<int> ParseFlags(int argc, char** argv, Flags& flags) {
  CLI::App app(kDescription, kName);
  ConfigureApp(app, kFooter);
  app.add_option("--socket", flags.session.socket,
                 "the runtime's NRI socket (default: /var/run/nri/nri.sock)")
      ->type_name("PATH");
  app.add_option("--policy", flags.policy,
                 "exclusive: holders get their cores and every other container is kept off "
                 "them; shared: holders are pinned, others left alone (default: exclusive)")
      ->type_name("POLICY")
      ->check(OneOf({"exclusive", "shared"}));
  app.add_option("--root", flags.root,
                 "where the host's /sys is: sys/devices/system/cpu/online under it names the "
                 "online cores (default: /)")
      ->type_name("DIR");
  app.add_option("--kubelet-dir", flags.kubelet_dir,
                 "the kubelet's directory; its cpu_manager_state says whether the static CPU "
                 "manager runs (default: /var/lib/kubelet)")
      ->type_name("DIR");
  app.add_option("--pod-resources-socket", flags.pod_resources_socket,
                 "the kubelet's PodResources API, which says what the device manager assigned "
                 "and which DRA claims each container uses (default: "
                 "KUBELET_DIR/pod-resources/kubelet.sock)")
      ->type_name("PATH");
  app.add_option("--dra-checkpoint", flags.dra_checkpoint,
                 "the DRA driver's checkpoint of prepared claims, which says what cores each "
                 "claim holds (default: KUBELET_DIR/plugins/edgefd.io/checkpoint.json)")
      ->type_name("PATH");
  app.add_option("--plugin-name", flags.session.plugin_name,
                 "the name to register with the runtime (default: edgefd)")
      ->type_name("NAME");
  app.add_option("--plugin-index", flags.session.plugin_index,
                 "the two-digit index to register with; plugins are called in ascending order "
                 "(default: 10)")
      ->type_name("NN")
      ->check(CLI::Validator(
          [](std::string& v) -> std::string {
            const bool ok = v.size() == 2 && std::isdigit(static_cast<unsigned char>(v[0])) &&
                            std::isdigit(static_cast<unsigned char>(v[1]));
            return ok ? "" : "'" + v + "' is not a two-digit index like 10";
          },
          "NN"));
  AddMetricsAddrFlag(app, flags.metrics_address)
      ->description(
          "serve /healthz, /readyz and /metrics on HOST:PORT, [IPV6]:PORT or :PORT "
          "(default: :9481; none or an empty ADDR turns it off)");
  AddLogLevelFlag(app, flags.log_level);
  if (auto code = ParseCommandLine(app, argc, argv)) return code;
  if (flags.session.plugin_name.empty()) {
    std::fprintf(stderr, "%s: --plugin-name: must not be empty\nTry '%s --help'.\n", kName, kName);
    return kExitUsage;
  }
  if (flags.pod_resources_socket.empty()) {
    flags.pod_resources_socket = flags.kubelet_dir / "pod-resources/kubelet.sock";
  }
  if (flags.dra_checkpoint.empty()) {
    flags.dra_checkpoint = flags.kubelet_dir / "plugins/edgefd.io/checkpoint.json";
  }
  SetUpLogging(kName, flags.log_level);
  return std::nullopt;
}

std::string RenderMetrics(const NriService& service, const Metrics& metrics) {
  const TrackerStats stats = service.Stats();
  PrometheusWriter out;
  out.Gauge("edgefd_nri_connected",
            "1 while registered with the container runtime over NRI, 0 while cores are advice "
            "only.",
            metrics.connected ? 1 : 0);
  out.Gauge("edgefd_nri_synchronized", "1 once the runtime synchronized the current connection.",
            metrics.synchronized ? 1 : 0);
  out.Family("edgefd_nri_policy_info", "gauge", "The enforcement policy (--policy).");
  out.Sample("edgefd_nri_policy_info",
             {{"policy", service.policy() == Policy::kExclusive ? "exclusive" : "shared"}}, 1);
  out.Gauge("edgefd_nri_online_cpus", "Online cores of the node.", stats.online);
  out.Gauge("edgefd_nri_held_cpus", "Cores held by containers given edgefd cores.",
            stats.held.size());
  out.Gauge("edgefd_nri_holders", "Live containers pinned to their edgefd cores.", stats.holders);
  out.Gauge("edgefd_nri_confined_containers",
            "Live containers without edgefd cores kept off the held ones.", stats.confined);
  out.Counter("edgefd_nri_connections_total", "Registrations with the runtime.",
              metrics.connections);
  out.Counter("edgefd_nri_disconnects_total", "NRI connections lost after registering.",
              metrics.disconnects);
  out.Counter("edgefd_nri_protocol_errors_total",
              "Frames or messages from the runtime dropped as invalid.", metrics.protocol_errors);
  out.Counter("edgefd_nri_invalid_cpus_total",
              "Containers whose EDGEFD_*_CPUS named cores that are not online or no CPU list.",
              metrics.invalid_cpus);
  out.Counter("edgefd_nri_unverified_cpus_total",
              "Containers whose EDGEFD_*_CPUS named cores the node's allocation record does not "
              "give them (set by the pod, or the record unreadable): those cores are refused.",
              metrics.unverified_cpus);
  out.Counter("edgefd_nri_record_failures_total",
              "Reads of the allocation record (PodResources API, DRA checkpoint) that failed.",
              metrics.record_failures);
  out.Counter("edgefd_nri_cpuset_updates_total",
              "Cpuset changes asked of the runtime for existing containers.", metrics.updates);
  out.Counter("edgefd_nri_cpuset_update_failures_total",
              "Of those, the ones the runtime reported failed or did not answer.",
              metrics.update_failures);
  out.Family("edgefd_nri_requests_total", "counter", "Requests of the runtime, by method.");
  for (const auto& [method, count] : metrics.Requests()) {
    out.Sample("edgefd_nri_requests_total", {{"method", method}}, static_cast<double>(count));
  }
  return out.text();
}

int Serve(const Flags& flags, std::vector<int> online, Policy policy) {
  ::signal(SIGPIPE, SIG_IGN);
  Metrics metrics;
  NodeAllocationRecord record(flags.pod_resources_socket, flags.dra_checkpoint);
  NriService service(std::move(online), policy, metrics, record);
  std::unique_ptr<HttpEndpoint> http;
  if (MetricsEnabled(flags.metrics_address)) {
    auto endpoint = StartHealthEndpoint(
        flags.metrics_address, NriHealth(service, metrics, flags.session.socket), "--metrics-addr");
    if (!endpoint) {
      spdlog::error("{}", endpoint.error().message);
      return kExitUsage;
    }
    http = std::move(*endpoint);
    spdlog::info("metrics on {} (port {})", flags.metrics_address, http->port());
  }
  Session session(service, metrics, flags.session);
  session.Run(StopFd());
  spdlog::info("signal {}: stopping", StopSignal());
  http.reset();
  return kExitOk;
}

}  // namespace

Result<std::vector<int>> ReadOnlineCpus(const fs::path& root) {
  const fs::path path = root / "sys/devices/system/cpu/online";
  std::ifstream in(path);
  std::string text;
  if (!in || !std::getline(in, text)) {
    return Error{path.string() +
                 ": cannot read the online cores (is the host's /sys under "
                 "--root?)"};
  }
  std::optional<std::vector<int>> cpus = ParseCpuList(text);
  if (!cpus || cpus->empty()) {
    return Error{path.string() + ": '" + text + "' is not a CPU list like 0-3"};
  }
  return *cpus;
}

Status CheckCpuManager(const fs::path& kubelet_dir) {
  const fs::path path = kubelet_dir / "cpu_manager_state";
  std::error_code ec;
  if (!fs::exists(path, ec)) return Ok{};
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  if (!in) return Error{path.string() + ": cannot read it"};
  Result<Json> state = ParseJson(text.str(), path.string());
  if (!state) return state.error();
  const std::string policy = StringAt(*state, "/policyName");
  if (policy == "static") {
    return Error{path.string() +
                 ": the kubelet's CPU manager runs the static policy, which sets every "
                 "container's cpuset itself and would undo edgefd's (and edgefd its). Run the "
                 "kubelet with --cpu-manager-policy=none, or leave edgefd-nri out and give "
                 "pods whole CPUs through Guaranteed QoS instead"};
  }
  return Ok{};
}

HealthChecks NriHealth(const NriService& service, const Metrics& metrics, fs::path socket) {
  HealthChecks checks;
  checks.metrics = [&service, &metrics] { return RenderMetrics(service, metrics); };
  checks.not_ready = [&metrics, socket = std::move(socket)]() -> std::optional<std::string> {
    std::error_code ec;
    if (metrics.synchronized || !fs::exists(socket, ec)) return std::nullopt;
    return "the NRI socket " + socket.string() + " is there but edgefd-nri is not " +
           "synchronized with the runtime yet";
  };
  return checks;
}

int RunNriCli(int argc, char** argv) {
  InstallStopHandlers();
  Flags flags;
  if (auto code = ParseFlags(argc, argv, flags)) return *code;
  Result<std::vector<int>> online = ReadOnlineCpus(flags.root);
  if (!online) {
    spdlog::error("{}", online.error().message);
    return kExitUsage;
  }
  if (Status s = CheckCpuManager(flags.kubelet_dir); !s) {
    spdlog::error("refusing to start: {}", s.error().message);
    return kExitUsage;
  }
  spdlog::info("online cores {}; policy {}; NRI socket {}; allocation record {} and {}",
               FormatCpuList(*online), flags.policy, flags.session.socket.string(),
               flags.pod_resources_socket.string(), flags.dra_checkpoint.string());
  return Serve(flags, std::move(*online), *ParsePolicy(flags.policy));
}

}  // namespace edgefd::nri
