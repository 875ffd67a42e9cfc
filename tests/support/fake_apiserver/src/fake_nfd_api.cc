#include "edgefd/testing/fake_nfd_api.h"

#include "status_body.h"

namespace edgefd::testing {
namespace {

constexpr std::string_view kNfdGroup = "/apis/nfd.k8s-sigs.io";
constexpr std::string_view kVersion = "/apis/nfd.k8s-sigs.io/v1alpha1";

FakeNfdApi::Reply NfdFail(int code, const std::string& reason, const std::string& message) {
  return {code, StatusBody(code, reason, message)};
}

// The CRD's structural schema for spec.features, as kube-apiserver enforces it: "" when valid.
std::string SchemaError(const Json& spec) {
  if (!spec.is_object()) return "spec: Required value";
  const Json* features = ValueAt(spec, "/features");
  if (features == nullptr) return "";
  for (const char* kind : {"flags", "attributes", "instances"}) {
    const Json* sets = ValueAt(*features, std::string("/") + kind);
    if (sets == nullptr) continue;
    if (!sets->is_object()) return std::string("spec.features.") + kind + ": must be an object";
    for (const auto& [name, set] : sets->items()) {
      const std::string where = std::string("spec.features.") + kind + "." + name;
      const Json* elements = ValueAt(set, "/elements");
      if (elements == nullptr) return where + ".elements: Required value";
      if (std::string(kind) == "instances") {
        if (!elements->is_array()) return where + ".elements: must be an array";
        for (const Json& e : *elements) {
          const Json* attributes = ValueAt(e, "/attributes");
          if (attributes == nullptr || !attributes->is_object()) {
            return where + ".elements.attributes: Required value";
          }
          for (const auto& [key, value] : attributes->items()) {
            if (!value.is_string())
              return where + ".elements.attributes." + key + ": must be a string";
          }
        }
      } else if (!elements->is_object()) {
        return where + ".elements: must be an object";
      }
    }
  }
  if (const Json* labels = ValueAt(spec, "/labels"); labels != nullptr) {
    for (const auto& [key, value] : labels->items()) {
      if (!value.is_string()) return "spec.labels." + key + ": must be a string";
    }
  }
  return "";
}

}  // namespace

std::optional<FakeNfdApi::Reply> FakeNfdApi::Handle(const std::string& method,
                                                    const std::string& target,
                                                    const std::string& content_type,
                                                    const std::string& body) {
  if (target.rfind(kNfdGroup, 0) != 0) return std::nullopt;
  const size_t q = target.find('?');
  const std::string path = target.substr(0, q);
  const std::string query = q == std::string::npos ? "" : target.substr(q + 1);
  std::lock_guard lock(mu_);
  if (!installed_)
    return NfdFail(404, "NotFound", "the server could not find the requested resource");
  if (path == kVersion && method == "GET") {
    Json resources = Json::array();
    for (const char* r : {"nodefeatures", "nodefeaturerules", "nodefeaturegroups"}) {
      resources.push_back({{"name", r}, {"namespaced", std::string(r) != "nodefeaturerules"}});
    }
    return Reply{200, DumpJson({{"kind", "APIResourceList"},
                                {"apiVersion", "v1"},
                                {"groupVersion", "nfd.k8s-sigs.io/v1alpha1"},
                                {"resources", resources}})};
  }
  // .../v1alpha1/namespaces/NS/nodefeatures/NAME
  const std::string prefix = std::string(kVersion) + "/namespaces/";
  if (path.rfind(prefix, 0) == 0) {
    const std::string rest = path.substr(prefix.size());
    const size_t slash = rest.find('/');
    const std::string kind = "/nodefeatures/";
    if (slash != std::string::npos && rest.compare(slash, kind.size(), kind) == 0) {
      const std::string ns = rest.substr(0, slash);
      const std::string name = rest.substr(slash + kind.size());
      if (method == "PATCH") return Apply(ns, name, query, content_type, body);
      if (method == "GET") {
        auto it = objects_.find(ns + "/" + name);
        if (it == objects_.end()) {
          return NfdFail(404, "NotFound",
                         "nodefeatures.nfd.k8s-sigs.io \"" + name + "\" not found");
        }
        return Reply{200, DumpJson(it->second)};
      }
      return NfdFail(405, "MethodNotAllowed", "method not allowed");
    }
  }
  return NfdFail(404, "NotFound", "the server could not find the requested resource");
}

FakeNfdApi::Reply FakeNfdApi::Apply(const std::string& ns, const std::string& name,
                                    const std::string& query, const std::string& content_type,
                                    const std::string& body) {
  if (content_type != "application/apply-patch+yaml") {
    return NfdFail(415, "UnsupportedMediaType", "expected a server-side apply patch");
  }
  if (query.find("fieldManager=") == std::string::npos) {
    return NfdFail(400, "BadRequest", "PATCH with apply requires a fieldManager");
  }
  if (namespaces_.count(ns) == 0) {
    return NfdFail(404, "NotFound", "namespaces \"" + ns + "\" not found");
  }
  Json object = ParseJsonOrNull(body);
  if (!object.is_object()) return NfdFail(400, "BadRequest", "the body is not a JSON object");
  if (StringAt(object, "/apiVersion") != "nfd.k8s-sigs.io/v1alpha1" ||
      StringAt(object, "/kind") != "NodeFeature") {
    return NfdFail(400, "BadRequest",
                   "apiVersion/kind must be nfd.k8s-sigs.io/v1alpha1 NodeFeature");
  }
  if (StringAt(object, "/metadata/name") != name) {
    return NfdFail(400, "BadRequest", "the name of the object does not match the name on the URL");
  }
  const std::string object_ns = StringAt(object, "/metadata/namespace");
  if (!object_ns.empty() && object_ns != ns) {
    return NfdFail(400, "BadRequest", "the namespace of the object does not match the URL");
  }
  const Json* spec = ValueAt(object, "/spec");
  if (std::string error = SchemaError(spec ? *spec : Json()); !error.empty()) {
    return NfdFail(422, "Invalid",
                   "NodeFeature.nfd.k8s-sigs.io \"" + name + "\" is invalid: " + error);
  }
  // Every field is this manager's: the applied object is the stored one (a new
  // resourceVersion only when something changed, as kube-apiserver does).
  object["metadata"]["namespace"] = ns;
  auto [it, created] = objects_.try_emplace(ns + "/" + name);
  Json previous = it->second;
  std::string rv = created ? "" : StringAt(previous, "/metadata/resourceVersion");
  if (!created) previous["metadata"].erase("resourceVersion");
  if (created || previous != object) rv = std::to_string(next_rv_++);
  object["metadata"]["resourceVersion"] = rv;
  it->second = object;
  ++applies_;
  return Reply{created ? 201 : 200, DumpJson(object)};
}

void FakeNfdApi::SetInstalled(bool installed) {
  std::lock_guard lock(mu_);
  installed_ = installed;
}

void FakeNfdApi::AddNamespace(const std::string& ns) {
  std::lock_guard lock(mu_);
  namespaces_.insert(ns);
}

Json FakeNfdApi::NodeFeature(const std::string& ns, const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(ns + "/" + name);
  return it == objects_.end() ? Json() : it->second;
}

size_t FakeNfdApi::Applies() {
  std::lock_guard lock(mu_);
  return applies_;
}

}  // namespace edgefd::testing
