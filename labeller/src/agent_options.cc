// The hand-over from edgefd-labeller to edgefd-labeller-agent: parsed options as JSON.
#include <chrono>

#include "edgefd/common/json.h"
#include "edgefd/labeller/cli.h"

namespace edgefd {
namespace {

Json OptionalPath(const std::optional<std::filesystem::path>& path) {
  return path ? Json(path->string()) : Json(nullptr);
}

std::vector<std::string> Strings(const std::vector<std::filesystem::path>& paths) {
  return {paths.begin(), paths.end()};
}

}  // namespace

Result<std::string> AgentOptionsToJson(const AgentCliOptions& o) {
  const DiscoveryOptions& d = o.discovery;
  const Json doc = {{"discovery",
                     {{"root", d.root.string()},
                      {"dtb", OptionalPath(d.dtb)},
                      {"nodes", d.extra_node_names},
                      {"config", Strings(d.rule_files)},
                      {"udev", d.udev ? Json(*d.udev) : Json(nullptr)}}},
                    {"once", o.once},
                    {"kubeconfig", o.kubeconfig.string()},
                    {"node_name", o.node_name},
                    {"resync_s", o.resync.count()},
                    {"insecure_skip_tls_verify", o.insecure_skip_tls_verify},
                    {"allow_insecure_http", o.allow_insecure_http},
                    {"once_timeout_s", o.once_timeout.count()},
                    {"nfd", o.nfd},
                    {"nodefeature", o.nodefeature},
                    {"nfd_file", o.nfd_file.string()},
                    {"metrics_addr", o.metrics_addr},
                    {"rescan_ms", o.rescan.count()},
                    {"log_level", o.log_level},
                    {"calibration", o.calibration.string()},
                    {"prune", o.prune},
                    {"all_nodes", o.all_nodes},
                    {"stop_daemonsets", o.stop_daemonsets}};
  try {
    // Strict: a byte that is not UTF-8 would otherwise arrive as U+FFFD, another path.
    return doc.dump(-1, ' ', false, Json::error_handler_t::strict);
  } catch (const Json::exception&) {
    return Error{"option values must be valid UTF-8 (a path with other bytes cannot be used)"};
  }
}

Result<AgentCliOptions> AgentOptionsFromJson(std::string_view json) {
  auto parsed = ParseJson(json, "agent options");
  if (!parsed) return parsed.error();
  try {
    const Json& j = *parsed;
    const Json& d = j.at("discovery");
    AgentCliOptions o;
    o.discovery.root = d.at("root").get<std::string>();
    if (!d.at("dtb").is_null()) o.discovery.dtb = d.at("dtb").get<std::string>();
    o.discovery.extra_node_names = d.at("nodes").get<std::vector<std::string>>();
    for (const std::string& f : d.at("config").get<std::vector<std::string>>()) {
      o.discovery.rule_files.emplace_back(f);
    }
    if (!d.at("udev").is_null()) o.discovery.udev = d.at("udev").get<bool>();
    o.once = j.at("once").get<bool>();
    o.kubeconfig = j.at("kubeconfig").get<std::string>();
    o.node_name = j.at("node_name").get<std::string>();
    o.resync = std::chrono::seconds(j.at("resync_s").get<int64_t>());
    o.insecure_skip_tls_verify = j.at("insecure_skip_tls_verify").get<bool>();
    o.allow_insecure_http = j.at("allow_insecure_http").get<bool>();
    o.once_timeout = std::chrono::seconds(j.at("once_timeout_s").get<int64_t>());
    o.nfd = j.at("nfd").get<bool>();
    o.nodefeature = j.at("nodefeature").get<bool>();
    o.nfd_file = j.at("nfd_file").get<std::string>();
    o.metrics_addr = j.at("metrics_addr").get<std::string>();
    o.rescan = std::chrono::milliseconds(j.at("rescan_ms").get<int64_t>());
    o.log_level = j.at("log_level").get<std::string>();
    o.calibration = j.value("calibration", std::string());
    o.prune = j.at("prune").get<bool>();
    o.all_nodes = j.at("all_nodes").get<bool>();
    o.stop_daemonsets = j.value("stop_daemonsets", std::vector<std::string>());
    return o;
  } catch (const Json::exception& e) {
    return Error{std::string("agent options: ") + e.what()};
  }
}

}  // namespace edgefd
