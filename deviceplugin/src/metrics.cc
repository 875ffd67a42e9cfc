#include "edgefd/deviceplugin/metrics.h"

#include <sstream>

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

bool Metrics::AllRegistered() const {
  std::lock_guard lock(mu_);
  if (resources_.empty()) return false;
  for (const auto& [name, r] : resources_) {
    if (!r.registered) return false;
  }
  return true;
}

std::string Metrics::Render() const {
  std::ostringstream out;
  std::lock_guard lock(mu_);
  auto family = [&](const char* name, const char* type, const char* help) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n';
  };
  family("edgefd_deviceplugin_devices", "gauge", "Devices advertised to the kubelet.");
  for (const auto& [name, r] : resources_) {
    out << "edgefd_deviceplugin_devices{resource=\"" << name << "\",health=\"Healthy\"} "
        << r.healthy << '\n';
    out << "edgefd_deviceplugin_devices{resource=\"" << name << "\",health=\"Unhealthy\"} "
        << r.unhealthy << '\n';
  }
  family("edgefd_deviceplugin_registered", "gauge",
         "1 while the resource is registered with the kubelet.");
  for (const auto& [name, r] : resources_) {
    out << "edgefd_deviceplugin_registered{resource=\"" << name << "\"} " << (r.registered ? 1 : 0)
        << '\n';
  }
  family("edgefd_deviceplugin_registrations_total", "counter",
         "Register calls to the kubelet, by result.");
  for (const auto& [name, r] : resources_) {
    out << "edgefd_deviceplugin_registrations_total{resource=\"" << name << "\",result=\"ok\"} "
        << r.registrations << '\n';
    out << "edgefd_deviceplugin_registrations_total{resource=\"" << name << "\",result=\"error\"} "
        << r.registration_failures << '\n';
  }
  family("edgefd_deviceplugin_allocations_total", "counter", "Allocate calls, by result.");
  for (const auto& [name, r] : resources_) {
    out << "edgefd_deviceplugin_allocations_total{resource=\"" << name << "\",result=\"ok\"} "
        << r.allocations - r.allocation_errors << '\n';
    out << "edgefd_deviceplugin_allocations_total{resource=\"" << name << "\",result=\"error\"} "
        << r.allocation_errors << '\n';
  }
  family("edgefd_deviceplugin_kubelet_restarts_total", "counter",
         "Times kubelet.sock was recreated or our sockets were removed.");
  out << "edgefd_deviceplugin_kubelet_restarts_total " << kubelet_restarts_.load() << '\n';
  family("edgefd_deviceplugin_list_and_watch_streams", "gauge", "Open ListAndWatch streams.");
  out << "edgefd_deviceplugin_list_and_watch_streams " << watch_streams_.load() << '\n';
  family("edgefd_deviceplugin_inventory_refreshes_total", "counter",
         "Rediscoveries after a hardware change, by result.");
  out << "edgefd_deviceplugin_inventory_refreshes_total{result=\"ok\"} "
      << refreshes_ - refresh_failures_ << '\n';
  out << "edgefd_deviceplugin_inventory_refreshes_total{result=\"error\"} " << refresh_failures_
      << '\n';
  return out.str();
}

}  // namespace edgefd::deviceplugin
