#include "edgefd/runtime/devices.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "edgefd/common/allocation.h"
#include "edgefd/common/cpu_list.h"

namespace edgefd::runtime {

Result<std::vector<int>> ParseCpuList(const std::string& variable, const std::string& text) {
  // The kernel's list syntax, parsed by the same code that reads /sys.
  std::optional<std::vector<int>> cpus = edgefd::ParseCpuList(text);
  if (!cpus || (!cpus->empty() && cpus->back() >= CPU_SETSIZE)) {
    return Error{variable + "=" + text + ": not a CPU list like 4,5 or 0-3"};
  }
  return *cpus;
}

namespace {

std::vector<int> Intersect(const std::vector<int>& a, const std::vector<int>& allowed) {
  std::vector<int> out;
  for (int c : a) {
    if (std::find(allowed.begin(), allowed.end(), c) != allowed.end()) out.push_back(c);
  }
  return out;
}

// Opens one node the way a device runtime would: read-write, else read-only when write access
// is refused. O_NONBLOCK so a FIFO or a modem-like node never blocks start-up, O_NOCTTY so a
// tty node never becomes our controlling terminal, and no O_CREAT: a missing node stays missing.
void OpenNode(OpenedDevice& d) {
  if (d.path.empty() || d.path.front() != '/') {
    d.error_number = EINVAL;
    d.error = "'" + d.path + "': not an absolute device node path";
    return;
  }
  const int flags = O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
  int fd = open(d.path.c_str(), O_RDWR | flags);
  if (fd < 0 && (errno == EACCES || errno == EPERM || errno == EROFS)) {
    fd = open(d.path.c_str(), O_RDONLY | flags);
    d.read_only = fd >= 0;
  }
  if (fd < 0) {
    d.error_number = errno;
    d.error = d.path + ": " + std::strerror(errno);
    return;
  }
  d.fd.Reset(fd);
  d.opened = true;
}

}  // namespace

Result<Allocation> ReadAllocation(char** env) {
  std::vector<std::string> vars;
  for (char** e = env; e != nullptr && *e != nullptr; ++e) vars.emplace_back(*e);
  auto stated = ParseAllocationEnv(vars);
  if (!stated) return stated.error();
  Allocation a;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) a.allowed_cpus.push_back(c);
    }
  }
  for (auto& [core_class, cpus] : stated->cpus) {
    if (!cpus.empty() && cpus.back() >= CPU_SETSIZE) {
      return Error{CpusVariable(core_class) + ": CPU " + std::to_string(cpus.back()) +
                   " is beyond what this system can address"};
    }
    // A core we may not run on is not usable, whatever the variable says.
    std::vector<int> usable = Intersect(cpus, a.allowed_cpus);
    if (core_class == "big") a.big_cpus = std::move(usable);
    if (core_class == "mid") a.mid_cpus = std::move(usable);
    if (core_class == "little") a.little_cpus = std::move(usable);
  }
  a.devices = std::move(stated->devices);
  a.devnodes = std::move(stated->devnodes);
  return a;
}

std::vector<int> Allocation::ComputeCpus() const {
  if (!big_cpus.empty()) return big_cpus;
  if (!mid_cpus.empty()) return mid_cpus;
  return allowed_cpus;
}

std::vector<int> Allocation::IoCpus() const {
  if (!little_cpus.empty()) return little_cpus;
  if (!mid_cpus.empty()) return mid_cpus;
  return ComputeCpus();
}

std::string OpenedDevice::Describe() const {
  if (opened) return "opened " + path + (read_only ? " (read-only)" : " (rw)");
  return "not opened: " + error;
}

std::vector<OpenedDevice> OpenAllocatedDevices(const Allocation& allocation) {
  std::vector<OpenedDevice> out;
  std::set<std::string> resources;
  for (const auto& [name, ids] : allocation.devices) resources.insert(name);
  for (const auto& [name, nodes] : allocation.devnodes) resources.insert(name);
  for (const std::string& resource : resources) {
    auto ids_it = allocation.devices.find(resource);
    const std::vector<std::string> ids =
        ids_it == allocation.devices.end() ? std::vector<std::string>{} : ids_it->second;
    auto nodes_it = allocation.devnodes.find(resource);
    if (nodes_it == allocation.devnodes.end() || nodes_it->second.empty()) {
      // Nothing to open for these IDs. IDs are never guessed to be paths: "1-1.2" is a USB
      // port, not a file, and a lookalike under /dev would be some other device.
      const std::string why =
          nodes_it == allocation.devnodes.end()
              ? DevnodesVariable(resource) + " is not set, so no device node is known"
              : "the device plugin allocated no device node (" + DevnodesVariable(resource) +
                    " is empty)";
      for (const std::string& id : ids) {
        OpenedDevice d;
        d.resource = resource;
        d.id = id;
        d.error = why;
        out.push_back(std::move(d));
      }
      continue;
    }
    const std::vector<std::string>& nodes = nodes_it->second;
    for (size_t i = 0; i < nodes.size(); ++i) {
      OpenedDevice d;
      d.resource = resource;
      // The plugin lists nodes in device-ID order; only one node per ID pairs them up.
      d.id = nodes.size() == ids.size() ? ids[i] : JoinAllocationList(ids);
      d.path = nodes[i];
      OpenNode(d);
      out.push_back(std::move(d));
    }
  }
  return out;
}

void LogOpenedDevices(const std::vector<OpenedDevice>& devices, const std::string& who) {
  for (const OpenedDevice& d : devices) {
    if (d.opened) {
      spdlog::info("{}: device {} {} {}; held, not driven: only the CPU backend computes", who,
                   d.resource, d.id, d.Describe());
    } else {
      spdlog::warn("{}: device {} {} {}; only the CPU backend computes", who, d.resource, d.id,
                   d.Describe());
    }
  }
}

Status PinThisThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return Ok{};
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) return Error{"pinning to CPUs " + FormatCpuList(cpus) + ": " + std::strerror(rc)};
  return Ok{};
}

}  // namespace edgefd::runtime
