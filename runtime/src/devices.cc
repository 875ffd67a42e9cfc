#include "edgefd/runtime/devices.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "edgefd/cpu.h"

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

}  // namespace

Result<Allocation> ReadAllocation(char** env) {
  Allocation a;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    for (int c = 0; c < CPU_SETSIZE; ++c) {
      if (CPU_ISSET(c, &set)) a.allowed_cpus.push_back(c);
    }
  }
  for (char** e = env; e != nullptr && *e != nullptr; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq == std::string::npos || kv.rfind("EDGEFD_", 0) != 0) continue;
    std::string key = kv.substr(0, eq);
    std::string value = kv.substr(eq + 1);
    std::vector<int>* target = nullptr;
    if (key == "EDGEFD_BIG_CPUS") target = &a.big_cpus;
    if (key == "EDGEFD_MID_CPUS") target = &a.mid_cpus;
    if (key == "EDGEFD_LITTLE_CPUS") target = &a.little_cpus;
    if (target != nullptr) {
      auto cpus = ParseCpuList(key, value);
      if (!cpus) return cpus.error();
      // A core we may not run on is not usable, whatever the variable says.
      *target = Intersect(*cpus, a.allowed_cpus);
      continue;
    }
    const std::string suffix = "_DEVICES";
    if (key.size() > 7 + suffix.size() &&
        key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0) {
      std::string name = key.substr(7, key.size() - 7 - suffix.size());
      std::vector<std::string>& ids = a.devices[name];
      size_t pos = 0;
      while (pos <= value.size()) {
        size_t end = value.find(',', pos);
        if (end == std::string::npos) end = value.size();
        if (end > pos) ids.push_back(value.substr(pos, end - pos));
        pos = end + 1;
      }
    }
  }
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

std::vector<OpenedDevice> OpenAllocatedDevices(const Allocation& allocation,
                                               const std::string& dev_root) {
  std::vector<OpenedDevice> out;
  for (const auto& [resource, ids] : allocation.devices) {
    for (const std::string& id : ids) {
      OpenedDevice d;
      d.resource = resource;
      d.id = id;
      std::string candidate = id.front() == '/' ? id : dev_root + "/" + id;
      struct stat st;
      if (id.find("..") == std::string::npos && stat(candidate.c_str(), &st) == 0) {
        d.path = candidate;
        int fd = open(candidate.c_str(), O_RDWR | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) fd = open(candidate.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (fd >= 0) {
          d.opened = true;  // Held open on purpose until exit: the allocation is in use.
        } else {
          d.error = std::strerror(errno);
        }
      } else {
        d.error = "no device node for this ID under " + dev_root;
      }
      out.push_back(d);
    }
  }
  return out;
}

Status PinThisThread(const std::vector<int>& cpus) {
  if (cpus.empty()) return Ok{};
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus) CPU_SET(c, &set);
  int rc = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
  if (rc != 0) return Error{"pinning to CPUs " + CpuListJson(cpus) + ": " + std::strerror(rc)};
  return Ok{};
}

std::string CpuListJson(const std::vector<int>& cpus) {
  std::string s = "[";
  for (size_t i = 0; i < cpus.size(); ++i) {
    if (i) s += ',';
    s += std::to_string(cpus[i]);
  }
  return s + "]";
}

}  // namespace edgefd::runtime
