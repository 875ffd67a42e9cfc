// ClaimPreparer::Start: the checkpoint read back, or rebuilt when it cannot be read.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <set>

#include "edgefd/dra/claims.h"
#include "edgefd/dra/recovery_api.h"

namespace edgefd::dra {
namespace fs = std::filesystem;
using deviceplugin::IsObjectUid;

namespace {

// "20260105T173012.042Z": sorts as time does.
std::string UtcStamp() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", stamp, static_cast<int>(ms.count()));
  return out;
}

// The checkpoint's records, or why they cannot be trusted. A newer format is `newer`.
Result<PreparedClaims> ReadRecords(const Checkpoint& checkpoint, bool& newer) {
  auto text = checkpoint.Read();
  if (!text) return text.error();
  if (!*text) return PreparedClaims{};
  auto claims = checkpoint.Parse(**text);
  const auto version = deviceplugin::DraCheckpointVersion(**text);
  newer = !claims && version && *version > deviceplugin::kDraCheckpointVersion;
  if (!claims) return claims;
  for (const auto& [uid, claim] : *claims) {
    // Only Prepare writes records, and it checks the UID first: another one was not ours.
    if (!IsObjectUid(uid)) {
      return Error{checkpoint.path().string() + ": a record's claim UID '" +
                   ValidUtf8(uid.substr(0, 64)) + "' is not a UID (corrupt checkpoint)"};
    }
  }
  return claims;
}

}  // namespace

std::string CheckpointRecovery::Message() const {
  return problem + "; kept as " + kept_as + "; rebuilt " + std::to_string(recovered) +
         " prepared claim(s) from the ResourceClaims allocated to this node (" +
         std::to_string(specs_kept) + " with their CDI spec on disk), removed " +
         std::to_string(specs_removed) + " CDI spec(s) of claims no pod here holds";
}

Status ClaimPreparer::Start() {
  std::lock_guard lock(mu_);
  std::error_code ec;
  fs::create_directories(checkpoint_.path().parent_path(), ec);
  bool newer = false;
  auto loaded = ReadRecords(checkpoint_, newer);
  if (newer) {
    return Error{loaded.error().message +
                 ": refusing to start (run the edgefd that wrote it, or move the file away to "
                 "start over)"};
  }
  if (!loaded) {
    if (Status s = Recover(loaded.error().message); !s) return s;
  } else {
    prepared_ = std::move(*loaded);
  }
  // A prepare that stopped while it waited for the kubelet's answer never finished: the
  // kubelet asks again, and then it is checked again.
  std::erase_if(prepared_, [](const auto& entry) {
    if (!entry.second.pending) return false;
    spdlog::info("dropping claim {}: its prepare did not finish", entry.first);
    return true;
  });
  // Writing the checkpoint now proves the directory is writable before the kubelet calls.
  if (Status s = checkpoint_.Save(prepared_); !s) return s;
  for (const auto& [uid, claim] : prepared_) {
    if (Status s = cdi_.WriteClaim(uid, claim.env); !s) return s;
  }
  for (const std::string& uid : cdi_.ClaimSpecs()) {
    if (prepared_.contains(uid)) continue;
    spdlog::info("removing the CDI spec of claim {}, which no record says is prepared", uid);
    if (recovery_) ++recovery_->specs_removed;
    if (Status s = cdi_.RemoveClaim(uid); !s) spdlog::warn("{}", s.error().message);
  }
  if (recovery_) spdlog::warn("{}", recovery_->Message());
  if (!prepared_.empty())
    spdlog::info("{} prepared claim(s) from {}", prepared_.size(), checkpoint_.path().string());
  return Ok{};
}

std::optional<CheckpointRecovery> ClaimPreparer::Recovery() const {
  std::lock_guard lock(mu_);
  return recovery_;
}

Status ClaimPreparer::Recover(const std::string& problem) {
  spdlog::error("{}; rebuilding the prepared claims from the API server", problem);
  // Nothing is moved or deleted before the cluster has said what this node holds.
  auto listed = ListNodeClaims(api_.transport(), version_, node_);
  if (!listed) {
    return Error{problem + "; the prepared claims cannot be rebuilt (" + listed.error().message +
                 "), so nothing was moved or deleted: start again when the API server answers"};
  }
  const std::vector<std::string> specs = cdi_.ClaimSpecs();
  const std::set<std::string> on_disk(specs.begin(), specs.end());
  CheckpointRecovery report;
  report.problem = problem;
  PreparedClaims rebuilt;
  for (const ClaimObject& claim : *listed) {
    const ClaimRef ref{claim.ns, claim.uid, claim.name};
    if (!IsObjectUid(claim.uid)) continue;
    std::vector<std::string> env;
    std::vector<std::pair<std::string, std::string>> plugin_ids;
    PrepareResult result = Build(ref, claim, env, plugin_ids);
    if (!result) {
      spdlog::warn("not rebuilt: {}", result.error().message);
      continue;
    }
    rebuilt[claim.uid] = PreparedClaim{claim.uid, claim.ns, claim.name, *result, env, false};
    ++report.recovered;
    if (on_disk.contains(claim.uid)) ++report.specs_kept;
  }
  report.kept_as = SetAside();
  prepared_ = std::move(rebuilt);
  ++stats_.checkpoint_corrupt;
  stats_.recovered_claims += report.recovered;
  recovery_ = std::move(report);
  return Ok{};
}

std::string ClaimPreparer::SetAside() {
  const std::string base = checkpoint_.path().string() + ".corrupt.";
  const std::string stamp = UtcStamp();
  std::string aside = base + stamp;
  std::error_code ec;
  // Two in one millisecond each keep their own copy, in order.
  for (int n = 1; fs::exists(fs::symlink_status(aside, ec)) && n < 1000; ++n) {
    char suffix[8];
    std::snprintf(suffix, sizeof suffix, "-%03d", n);
    aside = base + stamp + suffix;
  }
  // rename moves a symbolic link itself, never what it points at.
  fs::rename(checkpoint_.path(), aside, ec);
  if (ec) {
    spdlog::warn("{}: cannot be kept as {}: {}", checkpoint_.path().string(), aside, ec.message());
    return "(not kept: " + ec.message() + ")";
  }
  std::vector<fs::path> copies;
  const std::string prefix = checkpoint_.path().filename().string() + ".corrupt.";
  for (const auto& entry : fs::directory_iterator(checkpoint_.path().parent_path(), ec)) {
    if (entry.path().filename().string().starts_with(prefix)) copies.push_back(entry.path());
  }
  // The stamps sort by time; the oldest beyond the bound go.
  std::sort(copies.begin(), copies.end());
  for (size_t i = 0; i + kMaxCorruptCopies < copies.size(); ++i) fs::remove(copies[i], ec);
  return aside;
}

}  // namespace edgefd::dra
