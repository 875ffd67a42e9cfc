#include "edgefd/runtime/devices.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace edgefd::runtime {

Result<std::vector<int>> ParseCpuList(const std::string& variable, const std::string& text) {
  std::vector<int> cpus;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find(',', pos);
    if (end == std::string::npos) end = text.size();
    std::string item = text.substr(pos, end - pos);
    pos = end + 1;
    if (item.empty()) continue;
    size_t dash = item.find('-');
    auto number = [&](const std::string& s) -> int {
      if (s.empty() || s.size() > 5 ||
          !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
        return -1;
      }
      return std::stoi(s);
    };
    int lo = number(item.substr(0, dash));
    int hi = dash == std::string::npos ? lo : number(item.substr(dash + 1));
    if (lo < 0 || hi < lo || hi >= CPU_SETSIZE) {
      return Error{variable + "=" + text + ": '" + item +
                   "' is not a CPU number or range like 4,5 or 0-3"};
    }
    for (int c = lo; c <= hi; ++c) cpus.push_back(c);
  }
  std::sort(cpus.begin(), cpus.end());
  cpus.erase(std::unique(cpus.begin(), cpus.end()), cpus.end());
  return cpus;
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
