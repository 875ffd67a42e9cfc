// The planner's manifests (planner.h): one Deployment and Service per stage, chained by
// Service name, placed on the planned node with the planned cores.
#include <filesystem>
#include <fstream>

#include "edgefd/common/cpu_list.h"
#include "edgefd/runtime/pipeline.h"
#include "edgefd/runtime/planner.h"

namespace edgefd::runtime {
namespace {

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

std::string ArgList(const std::vector<std::string>& args) {
  std::string out = "[";
  for (size_t i = 0; i < args.size(); ++i) out += (i ? ", " : "") + Quote(args[i]);
  return out + "]";
}

std::vector<std::string> ModelArgs(const ModelSpec& m) {
  std::vector<std::string> a = {"--model", m.name};
  if (m.name == "conv") {
    a.insert(a.end(),
             {"--width", std::to_string(m.conv.width), "--height", std::to_string(m.conv.height),
              "--channels", std::to_string(m.conv.channels)});
  }
  return a;
}

// One Deployment (and, when it listens, its Service) of the pipeline.
struct Workload {
  Workload(std::string n, std::string on, std::string why, std::string c)
      : name(std::move(n)), node(std::move(on)), comment(std::move(why)), container(std::move(c)) {}
  std::string name, node, comment, container;
  std::vector<std::string> args;
  std::string resources;  // YAML lines under resources:
  bool listens = false;
};

std::string WorkloadYaml(const Workload& w, const ManifestOptions& o) {
  const std::string part_of = o.name + "-pipeline";
  std::string y = "---\n# " + w.comment + "\n";
  y += "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: " + w.name + "\n";
  y += "  labels: {app.kubernetes.io/name: " + w.name + ", app.kubernetes.io/part-of: " + part_of +
       "}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {app.kubernetes.io/name: " + w.name +
       "}\n  template:\n    metadata:\n      labels: {app.kubernetes.io/name: " + w.name +
       ", app.kubernetes.io/part-of: " + part_of + "}\n    spec:\n";
  y += "      automountServiceAccountToken: false\n";
  y += "      nodeSelector:\n        kubernetes.io/hostname: " + Quote(w.node) + "\n";
  y += "      securityContext:\n        runAsNonRoot: true\n        runAsUser: 10001\n"
       "        runAsGroup: 10001\n        fsGroup: 10001\n"
       "        seccompProfile: {type: RuntimeDefault}\n";
  y +=
      "      volumes:\n        - name: tmp\n          emptyDir: {medium: Memory, sizeLimit: 16Mi}\n"
      "        - name: token\n          secret: {secretName: " +
      o.name + "-pipeline-token, defaultMode: 0440}\n";
  y += "      containers:\n        - name: " + w.container + "\n          image: " + o.image +
       "\n          command: [edgefd-pipeline]\n          args: " + ArgList(w.args) + "\n";
  if (w.listens) {
    y += "          ports:\n            - {name: frames, containerPort: " + std::to_string(o.port) +
         "}\n            - {name: metrics, containerPort: " + std::to_string(o.metrics_port) +
         "}\n";
  }
  y += "          securityContext:\n            allowPrivilegeEscalation: false\n"
       "            readOnlyRootFilesystem: true\n            capabilities: {drop: [\"ALL\"]}\n";
  y += "          volumeMounts:\n            - {name: tmp, mountPath: /tmp}\n"
       "            - {name: token, mountPath: /var/run/secrets/edgefd.io/pipeline, "
       "readOnly: true}\n";
  y += "          resources:\n" + w.resources;
  if (w.listens) {
    y += "---\napiVersion: v1\nkind: Service\nmetadata:\n  name: " + w.name +
         "\n  labels: {app.kubernetes.io/part-of: " + part_of +
         "}\nspec:\n  selector: {app.kubernetes.io/name: " + w.name +
         "}\n  ports:\n    - {name: frames, port: " + std::to_string(o.port) +
         ", targetPort: frames}\n    - {name: metrics, port: " + std::to_string(o.metrics_port) +
         ", targetPort: metrics}\n";
  }
  return y;
}

}  // namespace

std::string PlanManifests(const ModelSpec& model, const Plan& plan, const ManifestOptions& o) {
  const std::string token = "/var/run/secrets/edgefd.io/pipeline/token";
  const std::string port = std::to_string(o.port);
  const size_t n = plan.stages.size();
  auto stage_name = [&](size_t k) { return o.name + "-stage-" + std::to_string(k); };
  char header[256];
  std::snprintf(header, sizeof header,
                "# Written by 'edgefd-pipeline plan': %s in %zu stage(s), predicted %.1f "
                "frames/s.\n",
                model.name.c_str(), n, plan.PredictedFps());
  std::string y = header;
  Workload source(o.name + "-source", plan.stages.front().node_name,
                  "The source, on the first stage's node (where the camera is).", "source");
  source.args = ModelArgs(model);
  char fps[32];
  std::snprintf(fps, sizeof fps, "%g", o.source_fps);
  source.args.insert(source.args.begin(), "source");
  source.args.insert(source.args.end(), {"--fps", fps, "--frames", "1000000000", "--next",
                                         stage_name(0) + ":" + port, "--token-file", token});
  source.resources = "            requests: {cpu: 100m, memory: 128Mi}\n";
  y += WorkloadYaml(source, o);
  for (size_t k = 0; k < n; ++k) {
    const PlannedStage& s = plan.stages[k];
    const int threads = int(s.cpus.size());
    Workload w(stage_name(k), s.node_name, "", "stage");
    char comment[256];
    std::snprintf(comment, sizeof comment,
                  "Stage %zu: layers %d..%d on %s's %s cores, %.2f ms compute, %.2f ms out", k,
                  s.first, s.last - 1, s.node_name.c_str(), s.core_class.c_str(), s.compute_ms,
                  s.transfer_ms);
    w.comment = comment;
    w.args = {"stage"};
    const auto margs = ModelArgs(model);
    w.args.insert(w.args.end(), margs.begin(), margs.end());
    const std::string next = k + 1 < n ? stage_name(k + 1) : o.name + "-sink";
    w.args.insert(w.args.end(), {"--stages", std::to_string(n), "--index", std::to_string(k),
                                 "--layers", std::to_string(s.first) + ":" + std::to_string(s.last),
                                 "--threads", std::to_string(threads), "--listen",
                                 "0.0.0.0:" + port, "--next", next + ":" + port, "--metrics-port",
                                 std::to_string(o.metrics_port), "--token-file", token});
    if (k > 0 && plan.stages[k - 1].wire != WireFormat::kFloat32) {
      w.args.insert(w.args.end(), {"--wire-in", WireFormatName(plan.stages[k - 1].wire)});
    }
    if (k + 1 < n && s.wire != WireFormat::kFloat32) {
      w.args.insert(w.args.end(), {"--wire-out", WireFormatName(s.wire)});
    }
    // The device plugin hands out whole cores of the class and sets EDGEFD_<CLASS>_CPUS,
    // which the stage pins its threads to.
    w.resources = "            limits:\n              edgefd.io/" + s.core_class +
                  "-cpu: " + Quote(std::to_string(threads)) +
                  "\n              memory: 1Gi\n            requests:\n              cpu: 100m\n"
                  "              memory: 512Mi\n";
    w.listens = true;
    y += WorkloadYaml(w, o);
  }
  Workload sink(o.name + "-sink", plan.stages.back().node_name,
                "The sink, on the last stage's node.", "sink");
  sink.args = ModelArgs(model);
  sink.args.insert(sink.args.begin(), "sink");
  // The sink serves /metrics (frames, fps, per-stage times) on the port its Service names.
  sink.args.insert(sink.args.end(),
                   {"--listen", "0.0.0.0:" + port, "--timeout-ms", "1000000000000",
                    "--metrics-port", std::to_string(o.metrics_port), "--token-file", token});
  sink.resources = "            requests: {cpu: 100m, memory: 128Mi}\n";
  sink.listens = true;
  y += WorkloadYaml(sink, o);
  return y;
}

Status WritePlanManifests(const std::string& dir, const ModelSpec& model, const Plan& plan,
                          const ManifestOptions& o) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return Error{dir + ": " + ec.message()};
  const std::string kustomization =
      "# kubectl apply -k " + dir +
      "\n# First create the pipeline's token:\n#   kubectl create secret generic " + o.name +
      "-pipeline-token --from-literal=token=\"$(head -c 32 /dev/urandom | base64)\"\n"
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
      "  - pipeline.yaml\n";
  for (const auto& [file, text] :
       {std::pair<std::string, std::string>{"pipeline.yaml", PlanManifests(model, plan, o)},
        {"kustomization.yaml", kustomization}}) {
    const std::filesystem::path path = std::filesystem::path(dir) / file;
    const std::filesystem::path tmp = path.string() + ".tmp";
    {
      std::ofstream out(tmp, std::ios::trunc);
      out << text;
      if (!out) return Error{tmp.string() + ": cannot write"};
    }
    std::filesystem::rename(tmp, path, ec);
    if (ec) return Error{path.string() + ": " + ec.message()};
  }
  return Ok{};
}

}  // namespace edgefd::runtime
