// Node label reconciliation: what to patch, and how to get it to the API server.
#include "edgefd/agent/reconcile.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "edgefd/common/json.h"
#include "edgefd/discovery/labels.h"
#include "edgefd/kube/events.h"
#include "edgefd/kube/paths.h"

namespace edgefd {
namespace {

// A non-success HTTP status as an outcome of its kind (kube::CodeOfHttpStatus): 429 and 5xx
// are worth retrying, the rest is a configuration problem the user has to fix.
ApplyOutcome Refused(const std::string& what, const std::string& node,
                     const kube::ApiResponse& response) {
  const int s = response.status;
  std::string text = what + ": " + std::to_string(s) + " " + kube::StatusMessage(response.body);
  if (s == 401) {
    text += " — the API server rejected the credentials; check the token or client certificate";
  } else if (s == 403) {
    text += " — the service account needs 'get' and 'patch' on nodes (manifests/labeller)";
  } else if (s == 404) {
    text += " — no Node named '" + node + "'; set --node-name or NODE_NAME";
  }
  return ApplyOutcome::Failure(Error{std::move(text), kube::CodeOfHttpStatus(s)},
                               response.retry_after);
}

}  // namespace

const std::string& ApplyOutcome::error() const {
  static const std::string kNone;
  return status.ok() ? kNone : status.error().message;
}

ApplyOutcome ApplyOutcome::Failure(Error error, std::chrono::milliseconds retry_after) {
  ApplyOutcome out;
  out.status = std::move(error);
  out.retry_after = retry_after;
  return out;
}

bool IsEdgefdLabel(std::string_view name) {
  return name.substr(0, kLabelPrefix.size()) == kLabelPrefix ||
         name.substr(0, kDtLabelPrefix.size()) == kDtLabelPrefix;
}

Result<NodeState> ParseNode(std::string_view json) {
  auto parsed = ParseJson(json, "Node object");
  if (!parsed) return parsed.error();
  const Json& v = *parsed;
  if (!v.is_object() || !v.contains("metadata") || !v["metadata"].is_object()) {
    return Error{"Node object without metadata"};
  }
  const Json& meta = v["metadata"];
  NodeState node;
  if (auto it = meta.find("resourceVersion"); it != meta.end() && it->is_string()) {
    node.resource_version = it->get<std::string>();
  }
  if (auto labels = meta.find("labels"); labels != meta.end() && labels->is_object()) {
    for (const auto& [name, value] : labels->items()) {
      if (value.is_string()) node.labels[name] = value.get<std::string>();
    }
  }
  if (auto annotations = meta.find("annotations");
      annotations != meta.end() && annotations->is_object()) {
    auto it = annotations->find(std::string(kOwnedLabelsAnnotation));
    if (it != annotations->end() && it->is_string()) {
      for (const std::string& name : ParseOwnedLabels(it->get<std::string>())) {
        (IsEdgefdLabel(name) ? node.owned : node.refused).insert(name);
      }
    }
  }
  return node;
}

std::string FormatOwnedLabels(const std::set<std::string>& owned) {
  std::string out;
  for (const std::string& name : owned) {
    if (!out.empty()) out += ',';
    out += name;
  }
  return out;
}

std::set<std::string> ParseOwnedLabels(std::string_view annotation) {
  std::set<std::string> out;
  while (!annotation.empty()) {
    size_t comma = annotation.find(',');
    std::string_view item = annotation.substr(0, comma);
    while (!item.empty() && item.front() == ' ') item.remove_prefix(1);
    while (!item.empty() && item.back() == ' ') item.remove_suffix(1);
    if (!item.empty()) out.emplace(item);
    if (comma == std::string_view::npos) break;
    annotation.remove_prefix(comma + 1);
  }
  return out;
}

std::set<std::string> OwnedAfter(const NodeState& node, const Labels& wanted) {
  std::set<std::string> owned;
  for (const auto& [name, value] : wanted) {
    if (!IsEdgefdLabel(name)) continue;
    // Present on the node without being ours: somebody else's label, never claimed.
    if (node.labels.count(name) != 0 && node.owned.count(name) == 0) continue;
    owned.insert(name);
  }
  return owned;
}

std::optional<std::string> MergePatchFor(const NodeState& node, const Labels& wanted) {
  const std::set<std::string> owned = OwnedAfter(node, wanted);
  Json labels = Json::object();
  for (const std::string& name : owned) {
    const std::string& value = wanted.at(name);
    auto it = node.labels.find(name);
    if (it == node.labels.end() || it->second != value) labels[name] = value;
  }
  for (const std::string& name : node.owned) {
    if (!IsEdgefdLabel(name)) continue;  // a NodeState not made by ParseNode
    if (owned.count(name) == 0 && node.labels.count(name) != 0) labels[name] = nullptr;
  }
  // Refused names are dropped from the annotation, so they are not reported again.
  const bool annotation_changes = owned != node.owned || !node.refused.empty();
  if (labels.empty() && !annotation_changes) return std::nullopt;

  Json metadata = Json::object();
  if (!node.resource_version.empty()) metadata["resourceVersion"] = node.resource_version;
  metadata["labels"] = std::move(labels);
  if (annotation_changes) {
    Json& annotation = metadata["annotations"][std::string(kOwnedLabelsAnnotation)];
    if (!owned.empty()) annotation = FormatOwnedLabels(owned);  // null removes it
  }
  return DumpJson(Json{{"metadata", std::move(metadata)}});
}

NodeLabeller::NodeLabeller(kube::ApiTransport& api, std::string node_name, AgentMetrics* metrics,
                           int max_conflicts)
    : api_(api),
      node_name_(std::move(node_name)),
      path_("/api/v1/nodes/" + kube::Escape(node_name_)),
      metrics_(metrics),
      max_conflicts_(max_conflicts) {}

ApplyOutcome NodeLabeller::Apply(const Labels& wanted) {
  if (Status s = kube::CheckName(node_name_, "node name"); !s) {
    return ApplyOutcome::Failure(
        Error{s.error().message + "; set --node-name or NODE_NAME", ErrorCode::kInvalidArgument});
  }
  for (int conflicts = 0;; ++conflicts) {
    auto got = api_.GetNode(node_name_);
    if (!got) return ApplyOutcome::Failure(got.error());
    if (got->status != 200) return Refused("GET " + path_, node_name_, *got);
    auto node = ParseNode(got->body);
    // Not a Node (a proxy's page, a cut answer): the next answer may be one.
    if (!node) {
      return ApplyOutcome::Failure(
          Error{"GET " + path_ + ": " + node.error().message, ErrorCode::kUnavailable});
    }
    if (!node->refused.empty()) {
      spdlog::warn(
          "node {}: annotation {} lists labels outside edgefd.io/ and beta.devicetree.org/, "
          "which edgefd never changes: {} (ignored, and dropped from the annotation)",
          node_name_, kOwnedLabelsAnnotation, FormatOwnedLabels(node->refused));
    }

    std::optional<std::string> patch = MergePatchFor(*node, wanted);
    if (!patch) {
      ApplyOutcome out;
      out.labels_owned = node->owned.size();
      spdlog::debug("node {}: labels already up to date ({} owned)", node_name_, out.labels_owned);
      return out;
    }
    auto patched = api_.PatchNode(node_name_, *patch);
    if (!patched) return ApplyOutcome::Failure(patched.error());
    if (patched->status == 409) {
      // Somebody changed the Node since our GET: re-read so their change is not lost.
      if (metrics_ != nullptr) ++metrics_->conflicts;
      spdlog::debug("node {}: resourceVersion {} is stale, re-reading", node_name_,
                    node->resource_version);
      if (conflicts + 1 >= max_conflicts_) {
        return ApplyOutcome::Failure(Error{"PATCH " + path_ + ": still conflicting after " +
                                               std::to_string(max_conflicts_) + " re-reads",
                                           ErrorCode::kAborted});
      }
      continue;
    }
    if (patched->status != 200) return Refused("PATCH " + path_, node_name_, *patched);
    if (metrics_ != nullptr) ++metrics_->patches;
    ApplyOutcome out;
    out.changed = true;
    out.labels_owned = OwnedAfter(*node, wanted).size();
    spdlog::info("node {}: labels patched ({} owned)", node_name_, out.labels_owned);
    return out;
  }
}

ApplyOutcome NfdFileSink::Apply(const Labels& wanted) {
  namespace fs = std::filesystem;
  std::string content;
  for (const auto& [name, value] : wanted) content += name + "=" + value + "\n";
  ApplyOutcome out;
  out.labels_owned = wanted.size();
  {
    std::ifstream in(path_, std::ios::binary);
    if (in) {
      std::ostringstream ss;
      ss << in.rdbuf();
      if (ss.str() == content) return out;
    }
  }
  std::error_code ec;
  fs::path dir = path_.parent_path().empty() ? fs::path(".") : path_.parent_path();
  fs::create_directories(dir, ec);
  if (ec) {
    return ApplyOutcome::Failure(Error{
        "NFD feature file directory " + dir.string() + ": " + ec.message(), ErrorCode::kUnknown});
  }
  // A hidden name in the same directory, so NFD never reads a half-written file and the
  // rename is atomic.
  std::string tmp_name = ".";
  tmp_name.append(path_.filename().string()).append(".XXXXXX");
  std::string tmp = (dir / tmp_name).string();
  int fd = mkstemp(tmp.data());
  if (fd < 0) {
    const int error = errno;
    std::string text = "NFD feature file " + path_.string() + ": cannot create a temp file in " +
                       dir.string() + ": " + std::strerror(error);
    struct stat st {};
    if ((error == EACCES || error == EPERM) && stat(dir.c_str(), &st) == 0) {
      // As deployed, the usual cause: NFD's directory belongs to root and the labeller runs
      // as an unprivileged user.
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      text += " — the directory belongs to uid " + std::to_string(st.st_uid) + " (mode " + mode +
              ") and this process runs as uid " + std::to_string(geteuid()) +
              ": run the labeller as the directory's owner (manifests/components/nfd-feature-file "
              "does: uid 0, no capabilities), or use --output nodefeature, which needs no host "
              "directory";
    }
    const bool denied = error == EACCES || error == EPERM;
    return ApplyOutcome::Failure(
        Error{std::move(text), denied ? ErrorCode::kPermissionDenied : ErrorCode::kUnknown});
  }
  bool written = fchmod(fd, 0644) == 0;
  for (size_t off = 0; written && off < content.size();) {
    ssize_t n = write(fd, content.data() + off, content.size() - off);
    if (n < 0 && errno == EINTR) continue;
    written = n > 0;
    if (written) off += static_cast<size_t>(n);
  }
  written = written && fsync(fd) == 0;
  int saved_errno = errno;
  close(fd);
  if (!written || std::rename(tmp.c_str(), path_.c_str()) != 0) {
    if (written) saved_errno = errno;
    unlink(tmp.c_str());
    return ApplyOutcome::Failure(
        Error{"NFD feature file " + path_.string() + ": " + std::strerror(saved_errno)});
  }
  out.changed = true;
  spdlog::info("wrote {} labels to {}", wanted.size(), path_.string());
  return out;
}

}  // namespace edgefd
