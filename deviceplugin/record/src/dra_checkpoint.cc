#include "edgefd/deviceplugin/dra_checkpoint.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "edgefd/common/files.h"
#include "edgefd/common/hash.h"
#include "edgefd/common/json.h"
#include "edgefd/common/unique_fd.h"

namespace edgefd::deviceplugin {
namespace fs = std::filesystem;

namespace {

constexpr int kVersion = kDraCheckpointVersion;
constexpr std::uintmax_t kMaxBytes = 64 << 20;

std::string Checksum(const Json& claims) {
  // FNV-1a 64 over a canonical dump: keys sorted, whatever order the file has them in.
  const uint64_t h = Fnv1a64(nlohmann::json(claims).dump());
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

Json ToJson(const PreparedClaims& claims) {
  Json out = Json::object();
  for (const auto& [uid, c] : claims) {
    Json devices = Json::array();
    for (const PreparedDevice& d : c.devices) {
      devices.push_back({{"request", d.request},
                         {"pool", d.pool},
                         {"device", d.device},
                         {"cdiDeviceIDs", d.cdi_ids}});
    }
    out[uid] = {{"namespace", c.ns}, {"name", c.name}, {"devices", devices}, {"env", c.env}};
    // Only when set, so that a checkpoint without pending claims reads as before.
    if (c.pending) out[uid]["pending"] = true;
  }
  return out;
}

}  // namespace

Result<std::optional<std::string>> DraCheckpoint::Read() const {
  const std::string where = path_.string() + ": ";
  // Never through a symbolic link: whoever can write the directory must not make the plugins
  // read (or, in the DRA driver, set aside) a file of their choosing.
  UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) {
    // Missing is no claims; anything else (a directory we may not search, a file we may not
    // read, a link) is an error, never "no claims".
    if (errno == ENOENT) return std::optional<std::string>{};
    if (errno == ELOOP) return Error{where + "is a symbolic link; refusing to follow it"};
    return Error{where + "cannot be read: " + std::strerror(errno)};
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Error{where + "cannot be read: " + std::strerror(errno)};
  if (!S_ISREG(st.st_mode)) return Error{where + "not a regular file"};
  if (static_cast<std::uintmax_t>(st.st_size) > kMaxBytes) {
    return Error{where + "larger than 64 MiB"};
  }
  std::string text;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Error{where + "cannot be read: " + std::strerror(errno)};
    if (n == 0) break;
    // The file may grow while read: the limit holds whatever fstat said.
    if (text.size() + static_cast<size_t>(n) > kMaxBytes)
      return Error{where + "larger than 64 MiB"};
    text.append(buf, static_cast<size_t>(n));
  }
  return std::optional<std::string>(std::move(text));
}

std::optional<int64_t> DraCheckpointVersion(std::string_view text) {
  auto doc = ParseJson(text, "checkpoint");
  if (!doc || !doc->is_object()) return std::nullopt;
  return IntegerAt(*doc, "/version");
}

Result<PreparedClaims> DraCheckpoint::Load() const {
  auto text = Read();
  if (!text) return text.error();
  if (!*text) return PreparedClaims{};
  return Parse(**text);
}

Result<PreparedClaims> DraCheckpoint::Parse(const std::string& text) const {
  const std::string where = path_.string() + ": ";
  auto parsed = ParseJson(text, path_.string());
  if (!parsed) return Error{parsed.error().message + " (corrupt checkpoint)"};
  const Json& doc = *parsed;
  if (!doc.is_object()) return Error{where + "not a JSON object (corrupt checkpoint)"};
  if (const auto version = IntegerAt(doc, "/version"); version && *version > kVersion) {
    return Error{where + "checkpoint version " + std::to_string(*version) +
                 " was written by a newer edgefd; this one reads version " +
                 std::to_string(kVersion) + " and leaves the file as it is"};
  } else if (version != kVersion) {
    return Error{where + "checkpoint version " + (version ? std::to_string(*version) : "missing") +
                 ", this plugin reads version " + std::to_string(kVersion)};
  }
  const Json* body = ValueAt(doc, "/claims");
  if (body == nullptr || !body->is_object()) return Error{where + "no claims"};
  if (StringAt(doc, "/checksum") != Checksum(*body)) {
    return Error{where + "checksum mismatch (corrupt checkpoint)"};
  }
  PreparedClaims claims;
  try {
    for (const auto& [uid, c] : body->items()) {
      PreparedClaim claim;
      claim.uid = uid;
      claim.ns = c.at("namespace").get<std::string>();
      claim.name = c.at("name").get<std::string>();
      claim.env = c.at("env").get<std::vector<std::string>>();
      claim.pending = c.value("pending", false);
      for (const Json& d : c.at("devices")) {
        claim.devices.push_back({d.at("request").get<std::string>(),
                                 d.at("pool").get<std::string>(), d.at("device").get<std::string>(),
                                 d.at("cdiDeviceIDs").get<std::vector<std::string>>()});
      }
      claims.emplace(uid, std::move(claim));
    }
  } catch (const Json::exception& e) {
    return Error{where + "malformed claim entry: " + e.what()};
  }
  return claims;
}

Status DraCheckpoint::Save(const PreparedClaims& claims) const {
  Json body = ToJson(claims);
  Json doc = {{"version", kVersion}, {"checksum", Checksum(body)}, {"claims", std::move(body)}};
  return WriteFileAtomically(path_, DumpJson(doc, 1) + "\n");
}

}  // namespace edgefd::deviceplugin
