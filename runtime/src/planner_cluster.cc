// `edgefd-plan --from-cluster` (planner_cluster.h): Nodes and ResourceSlices, read only.
#include "edgefd/runtime/planner_cluster.h"

#include <algorithm>

#include "edgefd/kube/api.h"
#include "edgefd/kube/events.h"

namespace edgefd::runtime {
namespace {

constexpr int kPageSize = 500;
constexpr int kMaxPages = 20;  // 10,000 Nodes, what NodesFromNodeList takes

// The resource.k8s.io version to read slices with; "" when the group is not served.
Result<std::string> SliceVersion(kube::Api& api) {
  auto response = api.GetResourceGroup();
  if (!response) return Error{"GET /apis/resource.k8s.io: " + response.error().message};
  if (response->status == 404) return std::string();
  if (response->status != 200) {
    return Error{kube::DescribeFailure("GET /apis/resource.k8s.io", *response)};
  }
  const Json group = ParseJsonOrNull(response->body);
  std::vector<std::string> served;
  if (const Json* versions = ValueAt(group, "/versions"); versions && versions->is_array()) {
    for (const Json& v : *versions) served.push_back(StringAt(v, "/version"));
  }
  for (const char* want : {"v1", "v1beta2", "v1beta1"}) {
    if (std::find(served.begin(), served.end(), want) != served.end()) return std::string(want);
  }
  return std::string();
}

}  // namespace

Result<std::vector<NodeInventory>> NodesFromCluster(kube::ApiTransport& transport,
                                                    const std::string& server,
                                                    std::vector<std::string>* skipped) {
  kube::Api api(transport);
  Json list = {{"kind", "NodeList"}, {"items", Json::array()}};
  Status listed = api.ListEach("/api/v1/nodes", kPageSize, kMaxPages, "Nodes",
                               [&list](const Json& node) -> Status {
                                 list["items"].push_back(node);
                                 return Ok{};
                               });
  if (!listed) return Error{server + ": " + listed.error().message};
  std::vector<Json> slices;
  auto version = SliceVersion(api);
  if (!version) return Error{server + ": " + version.error().message};
  if (!version->empty()) {
    auto path = kube::ResourceSlicesPath(*version);
    if (!path) return path.error();
    // Every driver's slices (the pager takes no selector); NodesFromNodeList keeps edgefd.io's.
    Status s = api.ListEach(*path, kPageSize, kMaxPages, "ResourceSlices",
                            [&slices](const Json& slice) -> Status {
                              slices.push_back(slice);
                              return Ok{};
                            });
    if (!s) return Error{server + ": " + s.error().message};
  }
  return NodesFromNodeList(list, server, skipped, slices);
}

}  // namespace edgefd::runtime
