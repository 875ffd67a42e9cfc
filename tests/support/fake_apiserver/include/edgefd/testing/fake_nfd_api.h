#pragma once

// The nfd.k8s-sigs.io part of the API server stand-in (FakeApiServer routes every request under
// /apis/nfd.k8s-sigs.io here): what kube-apiserver serves once node-feature-discovery's CRDs
// are installed: group-version discovery and NodeFeature objects written by server-side apply,
// checked against the CRD's schema (required `elements`, string attribute values). Whether the
// CRD is installed is a setting: without it every path answers 404, as kube-apiserver does.
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "edgefd/common/json.h"

namespace edgefd::testing {

class FakeNfdApi {
 public:
  struct Reply {
    int status = 200;
    std::string body;
  };

  /// Answers a request under /apis/nfd.k8s-sigs.io; nullopt for any other path.
  std::optional<Reply> Handle(const std::string& method, const std::string& target,
                              const std::string& content_type, const std::string& body);

  /// Whether the NodeFeature CRD is installed (default: yes).
  void SetInstalled(bool installed);
  /// Namespaces that exist (default: edgefd-system, default); an apply elsewhere is a 404.
  void AddNamespace(const std::string& ns);

  /// The stored object (null when absent).
  Json NodeFeature(const std::string& ns, const std::string& name);
  /// Successful applies.
  size_t Applies();

 private:
  Reply Apply(const std::string& ns, const std::string& name, const std::string& query,
              const std::string& content_type, const std::string& body);

  std::mutex mu_;
  bool installed_ = true;
  std::set<std::string> namespaces_{"edgefd-system", "default"};
  uint64_t next_rv_ = 9000;
  size_t applies_ = 0;
  std::map<std::string, Json> objects_;  // "ns/name"
};

}  // namespace edgefd::testing
