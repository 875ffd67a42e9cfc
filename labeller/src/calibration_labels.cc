#include "edgefd/labeller/calibration_labels.h"

#include <cmath>
#include <cstdio>

#include "edgefd/common/files.h"
#include "edgefd/common/json.h"
#include "edgefd/discovery/labels.h"

namespace edgefd {

Result<Labels> CalibrationLabels(const std::filesystem::path& file) {
  auto text = ReadFileAtMost(file, 1 << 20, "calibration");
  if (!text) return text.error();
  auto doc = ParseJson(*text, file.string());
  if (!doc) return doc.error();
  const std::string where = file.string() + ": ";
  if (StringAt(*doc, "/kind") != "edgefd-pipeline calibration") {
    return Error{where + "not a calibration ('edgefd-pipeline calibrate --out FILE' writes one)"};
  }
  const std::string model = StringAt(*doc, "/model");
  if (model.empty() || !IsValidLabelValue(model)) return Error{where + "no valid \"model\""};
  const Json* classes = ValueAt(*doc, "/classes");
  if (classes == nullptr || !classes->is_array() || classes->empty() || classes->size() > 3) {
    return Error{where + "\"classes\" must list 1 to 3 core classes"};
  }
  Labels labels;
  for (const Json& c : *classes) {
    const std::string name = StringAt(c, "/class");
    if (name != "big" && name != "mid" && name != "little") {
      return Error{where + "class '" + name + "' is not big, mid or little"};
    }
    // The run with the most threads: the whole class, as a stage given all its cores runs.
    const Json* runs = ValueAt(c, "/threads");
    int best_threads = 0;
    double gflops = 0;
    for (size_t i = 0; runs != nullptr && runs->is_array() && i < runs->size(); ++i) {
      const auto t = IntegerAt((*runs)[i], "/threads");
      const Json* g = ValueAt((*runs)[i], "/gflops");
      if (!t || g == nullptr || !g->is_number()) continue;
      const double v = g->get<double>();
      if (*t > best_threads && std::isfinite(v) && v > 0 && v < 1e7) {
        best_threads = int(*t);
        gflops = v;
      }
    }
    if (best_threads == 0) return Error{where + "class " + name + " has no GFLOP/s figure"};
    char value[32];
    std::snprintf(value, sizeof value, "%.1f", gflops);
    labels["edgefd.io/cpu." + name + ".gflops"] = value;
  }
  labels["edgefd.io/cpu.gflops-model"] = model;
  return labels;
}

}  // namespace edgefd
