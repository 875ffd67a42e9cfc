#include "edgefd/discovery/calibration.h"

#include <cmath>
#include <cstdio>

#include "edgefd/common/files.h"
#include "edgefd/common/json.h"
#include "edgefd/discovery/labels.h"

namespace edgefd {

namespace {

constexpr size_t kMaxCalibrationBytes = 1 << 20;
constexpr int64_t kMaxThreads = 4096;
constexpr double kMaxGflops = 1e7;

}  // namespace

Result<CalibrationSummary> ReadCalibrationSummary(const std::filesystem::path& file) {
  auto text = ReadFileAtMost(file, kMaxCalibrationBytes, "calibration");
  if (!text) return text.error();
  auto doc = ParseJson(*text, file.string());
  if (!doc) return doc.error();
  const std::string where = file.string() + ": ";
  if (StringAt(*doc, "/kind") != "edgefd-pipeline calibration") {
    return Error{where + "not a calibration ('edgefd-pipeline calibrate --out FILE' writes one)"};
  }
  CalibrationSummary summary;
  summary.model = StringAt(*doc, "/model");
  if (summary.model.empty() || !IsValidLabelValue(summary.model)) {
    return Error{where + "no valid \"model\""};
  }
  const Json* classes = ValueAt(*doc, "/classes");
  if (classes == nullptr || !classes->is_array() || classes->empty() || classes->size() > 3) {
    return Error{where + "\"classes\" must list 1 to 3 core classes"};
  }
  for (const Json& c : *classes) {
    const std::string name = StringAt(c, "/class");
    if (name != "big" && name != "mid" && name != "little") {
      return Error{where + "class '" + name + "' is not big, mid or little"};
    }
    if (summary.classes.contains(name)) return Error{where + "class " + name + " is listed twice"};
    const Json* runs = ValueAt(c, "/threads");
    if (runs == nullptr || !runs->is_array() || runs->empty() || runs->size() > kMaxThreads) {
      return Error{where + "class " + name + " has no \"threads\" runs"};
    }
    // The run with the most threads: the whole class, as a stage given all its cores runs.
    CalibrationSummary::Class best;
    for (size_t i = 0; i < runs->size(); ++i) {
      const std::string run = where + "class " + name + ", run " + std::to_string(i) + ": ";
      const auto threads = IntegerAt((*runs)[i], "/threads");
      if (!threads || *threads < 1 || *threads > kMaxThreads) {
        return Error{run + "\"threads\" must be an integer from 1 to " +
                     std::to_string(kMaxThreads)};
      }
      // `calibrate` writes 0 (and older files nothing) for a count it has no figure for.
      const Json* g = ValueAt((*runs)[i], "/gflops");
      if (g == nullptr || (g->is_number() && g->get<double>() == 0)) continue;
      const double v = g->is_number() ? g->get<double>() : NAN;
      if (!std::isfinite(v) || v < 0 || v >= kMaxGflops) {
        return Error{run + "\"gflops\" must be a positive number below 1e7, not " + g->dump()};
      }
      if (*threads > best.threads) best = {v, int(*threads)};
    }
    if (best.threads == 0) return Error{where + "class " + name + " has no GFLOP/s figure"};
    summary.classes[name] = best;
  }
  return summary;
}

Labels CalibrationLabels(const CalibrationSummary& summary) {
  Labels labels;
  for (const auto& [name, c] : summary.classes) {
    char value[32];
    std::snprintf(value, sizeof value, "%.1f", c.gflops);
    labels["edgefd.io/cpu." + name + ".gflops"] = value;
  }
  labels["edgefd.io/cpu.gflops-model"] = summary.model;
  return labels;
}

Result<Labels> CalibrationLabels(const std::filesystem::path& file) {
  auto summary = ReadCalibrationSummary(file);
  if (!summary) return summary.error();
  return CalibrationLabels(*summary);
}

}  // namespace edgefd
