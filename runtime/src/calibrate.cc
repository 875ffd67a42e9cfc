// `edgefd-pipeline calibrate` (planner.h): short runs of the real kernels on each core class.
#include <map>

#include "edgefd/runtime/backend.h"
#include "edgefd/runtime/planner.h"

namespace edgefd::runtime {

Result<Calibration> Calibrate(const Model& model, const CalibrateOptions& o) {
  Calibration cal;
  cal.model = model.name;
  cal.input = model.Input().ToString();
  cal.cpu_model = o.cpu_model;
  auto backend = MakeCpuBackend();
  const int n = int(model.layers.size());
  // The links first, while this process has no threads to fork away from.
  std::map<std::string, LinkCosts> links;
  if (o.links) {
    for (const CoreClass& cls : o.classes) {
      if (cls.cpus.empty()) continue;
      auto c = CalibrateLinks(cls.cpus.front(), o.iterations);
      if (!c) return Error{cls.name + " cores: " + c.error().message};
      links[cls.name] = *c;
    }
  }
  for (const CoreClass& cls : o.classes) {
    Calibration::Class out;
    if (auto it = links.find(cls.name); it != links.end()) out.links = it->second;
    out.name = cls.name;
    out.cpus = cls.cpus;
    int top = int(cls.cpus.size());
    if (o.max_threads > 0) top = std::min(top, o.max_threads);
    for (int t = 1; t <= top; ++t) {
      auto exec = backend->Compile(model, 0, n, ExecOptions{t, cls.cpus, true});
      if (!exec) return exec.error();
      (void)(*exec)->ProfileLayers(1);  // warm: caches, pages, oneDNN's primitives
      std::vector<double> ms = (*exec)->ProfileLayers(o.iterations);
      std::map<std::string, std::pair<double, double>> kinds;  // flops, ms
      double flops = 0, total_ms = 0;
      for (int l = 0; l < n; ++l) {
        auto& k = kinds[LayerKindName(model.layers[size_t(l)].kind)];
        k.first += model.layers[size_t(l)].Flops();
        k.second += ms[size_t(l)];
        flops += model.layers[size_t(l)].Flops();
        total_ms += ms[size_t(l)];
      }
      for (const auto& [kind, fm] : kinds) {
        if (fm.second > 0) out.kind_gflops[t][kind] = fm.first / (fm.second * 1e6);
      }
      if (total_ms > 0) out.gflops[t] = flops / (total_ms * 1e6);
      out.layer_ms[t] = std::move(ms);
    }
    cal.classes.push_back(std::move(out));
  }
  return cal;
}

}  // namespace edgefd::runtime
