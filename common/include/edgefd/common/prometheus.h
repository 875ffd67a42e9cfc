#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace edgefd {

/// Writes the Prometheus text exposition format (version 0.0.4): the one writer behind every
/// edgefd binary's /metrics.
///
///   PrometheusWriter out;
///   out.Family("edgefd_deviceplugin_devices", "gauge", "Devices advertised to the kubelet.");
///   out.Sample("edgefd_deviceplugin_devices", {{"resource", name}, {"health", "Healthy"}}, 4);
///   out.Counter("edgefd_reconciles_total", "Reconcile attempts.", 12);
class PrometheusWriter {
 public:
  using LabelList = std::initializer_list<std::pair<std::string_view, std::string_view>>;

  /// The content type of the text this writes.
  static constexpr std::string_view kContentType = "text/plain; version=0.0.4; charset=utf-8";

  /// Starts a metric family: its # HELP and # TYPE ("counter", "gauge") lines.
  PrometheusWriter& Family(std::string_view name, std::string_view type, std::string_view help);
  /// One sample of the current family. Label values are escaped (\\, \", \n); values print
  /// in the shortest form that reads back exactly ("3", "0.25"), NaN as NaN, infinities as
  /// +Inf/-Inf.
  PrometheusWriter& Sample(std::string_view name, LabelList labels, double value);
  PrometheusWriter& Sample(std::string_view name, double value) { return Sample(name, {}, value); }
  /// A family with a single unlabelled sample.
  PrometheusWriter& Counter(std::string_view name, std::string_view help, double value);
  PrometheusWriter& Gauge(std::string_view name, std::string_view help, double value);

  const std::string& text() const { return out_; }

 private:
  std::string out_;
};

}  // namespace edgefd
