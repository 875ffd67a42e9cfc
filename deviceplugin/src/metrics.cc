#include "edgefd/deviceplugin/metrics.h"

#include "edgefd/common/prometheus.h"

namespace edgefd::deviceplugin {

void Metrics::CountAllocate(const std::string& resource, bool ok) {
  std::lock_guard lock(mu_);
  PerResource& r = resources_[resource];
  ++r.allocations;
  if (!ok) ++r.allocation_errors;
}

void Metrics::CountRegistration(const std::string& resource, bool ok) {
  std::lock_guard lock(mu_);
  PerResource& r = resources_[resource];
  if (ok) {
    ++r.registrations;
  } else {
    ++r.registration_failures;
  }
}

void Metrics::CountInventoryRefresh(bool ok) {
  std::lock_guard lock(mu_);
  ++refreshes_;
  if (!ok) ++refresh_failures_;
}

void Metrics::SetDevices(const std::string& resource, int healthy, int unhealthy) {
  std::lock_guard lock(mu_);
  PerResource& r = resources_[resource];
  r.healthy = healthy;
  r.unhealthy = unhealthy;
}

void Metrics::SetRegistered(const std::string& resource, bool registered) {
  std::lock_guard lock(mu_);
  resources_[resource].registered = registered;
}

void Metrics::SetDraCheckpoint(bool readable, int held_devices) {
  std::lock_guard lock(mu_);
  dra_checkpoint_readable_ = readable;
  dra_held_devices_ = held_devices;
}

void Metrics::CountDraRefusal(const std::string& resource) {
  std::lock_guard lock(mu_);
  ++resources_[resource].dra_refusals;
}

bool Metrics::AllRegistered() const {
  std::lock_guard lock(mu_);
  if (resources_.empty()) return false;
  for (const auto& [name, r] : resources_) {
    if (!r.registered) return false;
  }
  return true;
}

std::string Metrics::Render() const {
  PrometheusWriter out;
  std::lock_guard lock(mu_);
  out.Family("edgefd_deviceplugin_devices", "gauge", "Devices advertised to the kubelet.");
  for (const auto& [name, r] : resources_) {
    out.Sample("edgefd_deviceplugin_devices", {{"resource", name}, {"health", "Healthy"}},
               r.healthy);
    out.Sample("edgefd_deviceplugin_devices", {{"resource", name}, {"health", "Unhealthy"}},
               r.unhealthy);
  }
  out.Family("edgefd_deviceplugin_registered", "gauge",
             "1 while the resource is registered with the kubelet.");
  for (const auto& [name, r] : resources_) {
    out.Sample("edgefd_deviceplugin_registered", {{"resource", name}}, r.registered ? 1 : 0);
  }
  out.Family("edgefd_deviceplugin_registrations_total", "counter",
             "Register calls to the kubelet, by result.");
  for (const auto& [name, r] : resources_) {
    out.Sample("edgefd_deviceplugin_registrations_total", {{"resource", name}, {"result", "ok"}},
               r.registrations);
    out.Sample("edgefd_deviceplugin_registrations_total", {{"resource", name}, {"result", "error"}},
               r.registration_failures);
  }
  out.Family("edgefd_deviceplugin_allocations_total", "counter", "Allocate calls, by result.");
  for (const auto& [name, r] : resources_) {
    out.Sample("edgefd_deviceplugin_allocations_total", {{"resource", name}, {"result", "ok"}},
               r.allocations - r.allocation_errors);
    out.Sample("edgefd_deviceplugin_allocations_total", {{"resource", name}, {"result", "error"}},
               r.allocation_errors);
  }
  out.Family("edgefd_deviceplugin_dra_refusals_total", "counter",
             "Allocate calls refused because a prepared DRA claim holds a device they name, or "
             "the DRA checkpoint cannot be read.");
  for (const auto& [name, r] : resources_) {
    out.Sample("edgefd_deviceplugin_dra_refusals_total", {{"resource", name}}, r.dra_refusals);
  }
  out.Gauge("edgefd_deviceplugin_dra_held_devices",
            "Devices that prepared DRA claims hold, withdrawn from the kubelet (Unhealthy).",
            dra_held_devices_);
  out.Gauge("edgefd_deviceplugin_dra_checkpoint_readable",
            "0 while the DRA checkpoint cannot be read (then every device is withdrawn).",
            dra_checkpoint_readable_ ? 1 : 0);
  out.Counter("edgefd_deviceplugin_kubelet_restarts_total",
              "Times kubelet.sock was recreated or our sockets were removed.",
              kubelet_restarts_.load());
  out.Gauge("edgefd_deviceplugin_list_and_watch_streams", "Open ListAndWatch streams.",
            watch_streams_.load());
  out.Family("edgefd_deviceplugin_inventory_refreshes_total", "counter",
             "Rediscoveries after a hardware change, by result.");
  out.Sample("edgefd_deviceplugin_inventory_refreshes_total", {{"result", "ok"}},
             refreshes_ - refresh_failures_);
  out.Sample("edgefd_deviceplugin_inventory_refreshes_total", {{"result", "error"}},
             refresh_failures_);
  return out.text();
}

HealthChecks PluginHealth(const Metrics& metrics, const DeviceRegistry& registry) {
  HealthChecks checks;
  checks.metrics = [&metrics] { return metrics.Render(); };
  checks.not_ready = [&metrics, &registry]() -> std::optional<std::string> {
    // Ready once the kubelet has every resource (a node with none is ready as is).
    if (registry.ResourceNames().empty() || metrics.AllRegistered()) return std::nullopt;
    return "not registered with the kubelet yet";
  };
  return checks;
}

}  // namespace edgefd::deviceplugin
