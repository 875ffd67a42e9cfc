#include "edgefd/common/prometheus.h"

#include <charconv>
#include <cmath>

namespace edgefd {
namespace {

void AppendValue(std::string& out, double value) {
  if (std::isnan(value)) {
    out += "NaN";
  } else if (std::isinf(value)) {
    out += value > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
    out.append(buf, ec == std::errc() ? end : buf);
  }
}

void AppendLabelValue(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

}  // namespace

PrometheusWriter& PrometheusWriter::Family(std::string_view name, std::string_view type,
                                           std::string_view help) {
  out_.append("# HELP ").append(name).append(" ").append(help).append("\n");
  out_.append("# TYPE ").append(name).append(" ").append(type).append("\n");
  return *this;
}

PrometheusWriter& PrometheusWriter::Sample(std::string_view name, LabelList labels, double value) {
  out_.append(name);
  if (labels.size() > 0) {
    out_ += '{';
    bool first = true;
    for (const auto& [label, label_value] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_.append(label).append("=\"");
      AppendLabelValue(out_, label_value);
      out_ += '"';
    }
    out_ += '}';
  }
  out_ += ' ';
  AppendValue(out_, value);
  out_ += '\n';
  return *this;
}

PrometheusWriter& PrometheusWriter::Counter(std::string_view name, std::string_view help,
                                            double value) {
  return Family(name, "counter", help).Sample(name, value);
}

PrometheusWriter& PrometheusWriter::Gauge(std::string_view name, std::string_view help,
                                          double value) {
  return Family(name, "gauge", help).Sample(name, value);
}

}  // namespace edgefd
