#include "edgefd/deviceplugin/cdi.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "edgefd/common/allocation.h"
#include "edgefd/common/json.h"
#include "edgefd/common/unique_fd.h"
#include "edgefd/discovery/labels.h"

namespace edgefd::deviceplugin {
namespace fs = std::filesystem;

namespace {

constexpr std::string_view kCommonSpecName = "edgefd.io-device.json";
constexpr std::string_view kClaimSpecPrefix = "edgefd.io-device_";
constexpr std::string_view kSpecSuffix = ".json";

// Hardware strings (a USB serial number) are bytes another party controls: keep a printable,
// shell-safe subset, at most 64 characters.
std::string SafeValue(std::string_view raw) {
  std::string out;
  for (unsigned char c : raw) {
    if (out.size() == 64) break;
    out += (std::isalnum(c) || c == '.' || c == '_' || c == '-' || c == ':' || c == '/') ? c : '-';
  }
  return out;
}

std::string Errno() { return std::strerror(errno); }

Status CheckUid(std::string_view uid) {
  if (IsObjectUid(uid)) return Ok{};
  return Error{"claim UID '" + ValidUtf8(uid.substr(0, 64)) +
               "' is not a Kubernetes object UID (8-4-4-4-12 hexadecimal digits)"};
}

}  // namespace

std::string DeviceName(const ResourceSnapshot& resource, const PluginDevice& device) {
  if (resource.kind == ResourceKind::kCpu) return device.id;
  std::string raw = resource.name + "-" + device.id;
  // A DNS label allows only [a-z0-9-]: lower-case, then everything else becomes '-'; the
  // label sanitiser then collapses dashes, trims and hashes over-long names.
  for (char& c : raw) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) c = '-';
  }
  return SanitizeLabelName(raw);
}

std::string QualifiedCdiName(std::string_view name) {
  return std::string(kCdiKind) + "=" + std::string(name);
}

std::vector<CdiDevice> CommonCdiDevices(const std::vector<ResourceSnapshot>& resources) {
  std::vector<CdiDevice> out;
  std::set<std::string> taken;
  for (const ResourceSnapshot& r : resources) {
    for (const PluginDevice& d : r.devices) {
      if (!d.present) continue;
      CdiDevice cdi;
      cdi.name = DeviceName(r, d);
      if (cdi.name.empty() || !taken.insert(cdi.name).second) {
        spdlog::warn("{} device '{}': CDI name '{}' is empty or already taken; left out",
                     r.resource, d.id, cdi.name);
        continue;
      }
      auto add = [&](std::string_view attr, std::string_view value) {
        if (!value.empty()) {
          cdi.env.push_back(DeviceMetadataVariable(cdi.name, attr) + "=" + SafeValue(value));
        }
      };
      auto add_int = [&](std::string_view attr, int value, int unknown) {
        if (value != unknown) add(attr, std::to_string(value));
      };
      add("STABLE_ID", d.id);
      if (r.kind == ResourceKind::kCpu) {
        add_int("CPU", d.cpu, -1);
        add("CORE_CLASS", CoreClassOf(r.name));
        add("MODEL", d.model);
        add_int("CAPACITY", d.capacity, 0);
        add_int("MAX_MHZ", d.max_mhz, 0);
      } else {
        add("VENDOR_ID", d.vendor_id);
        add("PRODUCT_ID", d.product_id);
        add("SERIAL", d.serial);
        add("DRIVER", d.driver);
      }
      add_int("NUMA_NODE", d.numa_node, -1);
      cdi.devnodes = d.devnodes;
      out.push_back(std::move(cdi));
    }
  }
  return out;
}

std::string CdiSpecJson(const std::vector<CdiDevice>& devices) {
  Json spec = {{"cdiVersion", kCdiVersion}, {"kind", kCdiKind}, {"devices", Json::array()}};
  for (const CdiDevice& d : devices) {
    Json edits = Json::object();
    if (!d.env.empty()) edits["env"] = d.env;
    for (const std::string& node : d.devnodes) {
      edits["deviceNodes"].push_back({{"path", node}, {"permissions", "rw"}});
    }
    spec["devices"].push_back({{"name", d.name}, {"containerEdits", edits}});
  }
  return DumpJson(spec, 2) + "\n";
}

bool IsObjectUid(std::string_view uid) {
  if (uid.size() != 36) return false;
  for (size_t i = 0; i < uid.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash ? uid[i] != '-' : !std::isxdigit(static_cast<unsigned char>(uid[i]))) return false;
  }
  return true;
}

fs::path CdiSpecDir::CommonSpecPath() const { return dir_ / kCommonSpecName; }

fs::path CdiSpecDir::ClaimSpecPath(std::string_view claim_uid) const {
  return dir_ / (std::string(kClaimSpecPrefix) + std::string(claim_uid) + std::string(kSpecSuffix));
}

std::string CdiSpecDir::ClaimDeviceName(std::string_view claim_uid) {
  return "claim-" + std::string(claim_uid);
}

Status CdiSpecDir::WriteCommon(const std::vector<ResourceSnapshot>& resources) {
  std::string content = CdiSpecJson(CommonCdiDevices(resources));
  std::lock_guard lock(mu_);
  if (content == last_common_ && fs::exists(CommonSpecPath())) return Ok{};
  if (Status s = WriteFileAtomically(CommonSpecPath(), content); !s) return s;
  last_common_ = std::move(content);
  return Ok{};
}

Status CdiSpecDir::WriteClaim(std::string_view claim_uid, const std::vector<std::string>& env) {
  if (Status s = CheckUid(claim_uid); !s) return s;
  CdiDevice device{ClaimDeviceName(claim_uid), env, {}};
  return WriteFileAtomically(ClaimSpecPath(claim_uid), CdiSpecJson({device}));
}

Status CdiSpecDir::RemoveClaim(std::string_view claim_uid) {
  if (Status s = CheckUid(claim_uid); !s) return s;
  fs::path path = ClaimSpecPath(claim_uid);
  if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
    return Error{path.string() + ": cannot remove: " + Errno()};
  }
  return Ok{};
}

std::vector<std::string> CdiSpecDir::ClaimSpecs() const {
  std::vector<std::string> uids;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    std::string name = entry.path().filename().string();
    if (name.starts_with(kClaimSpecPrefix) && name.ends_with(kSpecSuffix)) {
      std::string uid = name.substr(kClaimSpecPrefix.size(),
                                    name.size() - kClaimSpecPrefix.size() - kSpecSuffix.size());
      if (IsObjectUid(uid)) uids.push_back(std::move(uid));
    }
  }
  std::sort(uids.begin(), uids.end());
  return uids;
}

std::vector<fs::path> CdiSpecDir::RemoveForUninstall(const std::set<std::string>& prepared) {
  std::vector<fs::path> stay;
  auto remove = [&stay](const fs::path& path) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("{}: cannot remove: {}", path.string(), Errno());
      stay.push_back(path);
    }
  };
  for (const std::string& uid : ClaimSpecs()) {
    if (prepared.contains(uid)) {
      stay.push_back(ClaimSpecPath(uid));
    } else {
      remove(ClaimSpecPath(uid));
    }
  }
  std::lock_guard lock(mu_);
  if (prepared.empty()) {
    remove(CommonSpecPath());
    last_common_.clear();
  } else if (fs::exists(CommonSpecPath())) {
    stay.push_back(CommonSpecPath());
  }
  std::sort(stay.begin(), stay.end());
  return stay;
}

std::vector<ResourceSnapshot> AllSnapshots(const DeviceRegistry& registry) {
  std::vector<ResourceSnapshot> out;
  for (const std::string& name : registry.ResourceNames()) {
    if (auto snapshot = registry.Snapshot(name)) out.push_back(std::move(*snapshot));
  }
  return out;
}

Status CdiSpecFeed::Start() {
  if (Status s = WriteNow(); !s) return s;
  listener_ = registry_.AddListener([this](const std::string&) {
    if (Status s = WriteNow(); !s) spdlog::error("CDI spec: {}", s.error().message);
  });
  return Ok{};
}

void CdiSpecFeed::Stop() {
  if (listener_ == 0) return;
  registry_.RemoveListener(listener_);
  listener_ = 0;
}

Status CdiSpecFeed::WriteNow() { return dir_.WriteCommon(AllSnapshots(registry_)); }

}  // namespace edgefd::deviceplugin
