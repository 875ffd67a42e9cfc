#include "edgefd/dra/checkpoint.h"

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "edgefd/deviceplugin/cdi.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int kVersion = 1;
constexpr std::uintmax_t kMaxBytes = 64 << 20;

std::string Checksum(const json& claims) {
  uint64_t h = 14695981039346656037ull;  // FNV-1a 64 over the canonical dump
  for (unsigned char c : claims.dump()) {
    h ^= c;
    h *= 1099511628211ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

json ToJson(const PreparedClaims& claims) {
  json out = json::object();
  for (const auto& [uid, c] : claims) {
    json devices = json::array();
    for (const PreparedDevice& d : c.devices) {
      devices.push_back({{"request", d.request},
                         {"pool", d.pool},
                         {"device", d.device},
                         {"cdiDeviceIDs", d.cdi_ids}});
    }
    out[uid] = {{"namespace", c.ns}, {"name", c.name}, {"devices", devices}, {"env", c.env}};
  }
  return out;
}

}  // namespace

Result<PreparedClaims> Checkpoint::Load() const {
  std::error_code ec;
  if (!fs::exists(path_, ec)) return PreparedClaims{};
  const std::string where = path_.string() + ": ";
  if (fs::file_size(path_, ec) > kMaxBytes) return Error{where + "larger than 64 MiB"};
  std::ifstream in(path_, std::ios::binary);
  if (!in) return Error{where + "cannot be read"};
  std::ostringstream ss;
  ss << in.rdbuf();
  json doc = json::parse(ss.str(), nullptr, false);
  if (!doc.is_object()) return Error{where + "not a JSON object (corrupt checkpoint)"};
  PreparedClaims claims;
  try {
    if (!doc.contains("version") || doc["version"] != kVersion) {
      return Error{where + "checkpoint version " + doc["version"].dump() +
                   ", this plugin reads version " + std::to_string(kVersion)};
    }
    if (!doc.contains("claims") || !doc["claims"].is_object()) return Error{where + "no claims"};
    if (!doc.contains("checksum") || doc["checksum"] != Checksum(doc["claims"])) {
      return Error{where + "checksum mismatch (corrupt checkpoint)"};
    }
    for (const auto& [uid, c] : doc["claims"].items()) {
      PreparedClaim claim;
      claim.uid = uid;
      claim.ns = c.at("namespace").get<std::string>();
      claim.name = c.at("name").get<std::string>();
      claim.env = c.at("env").get<std::vector<std::string>>();
      for (const json& d : c.at("devices")) {
        claim.devices.push_back({d.at("request").get<std::string>(),
                                 d.at("pool").get<std::string>(), d.at("device").get<std::string>(),
                                 d.at("cdiDeviceIDs").get<std::vector<std::string>>()});
      }
      claims.emplace(uid, std::move(claim));
    }
  } catch (const json::exception& e) {
    return Error{where + "malformed claim entry: " + e.what()};
  }
  return claims;
}

Status Checkpoint::Save(const PreparedClaims& claims) const {
  json body = ToJson(claims);
  json doc = {{"version", kVersion}, {"checksum", Checksum(body)}, {"claims", std::move(body)}};
  return deviceplugin::WriteFileAtomically(path_, doc.dump(1) + "\n");
}

}  // namespace edgefd::dra
