#include "edgefd/kube/events.h"

#include <ctime>

#include "edgefd/common/json.h"

namespace edgefd::kube {

std::string NowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string StatusMessage(const std::string& body) {
  std::string message = StringAt(ParseJsonOrNull(body), "/message");
  return message.empty() ? body.substr(0, 200) : message;
}

std::string DescribeFailure(std::string_view what, const ApiResponse& response) {
  std::string out = std::string(what) + ": HTTP " + std::to_string(response.status);
  const Json body = ParseJsonOrNull(response.body);
  const std::string message = StringAt(body, "/message");
  if (!message.empty()) out += ": " + message.substr(0, 300);
  return out;
}

ErrorCode CodeOfHttpStatus(int status) {
  switch (status) {
    case 401:
      return ErrorCode::kUnauthenticated;
    case 403:
      return ErrorCode::kPermissionDenied;
    case 404:
      return ErrorCode::kNotFound;
    case 409:
      return ErrorCode::kAborted;
    case 429:
      return ErrorCode::kResourceExhausted;
    case 504:
      return ErrorCode::kDeadlineExceeded;
    default:
      if (status >= 500 && status <= 599) return ErrorCode::kUnavailable;
      if (status >= 400 && status <= 499) return ErrorCode::kFailedPrecondition;
      return ErrorCode::kUnknown;
  }
}

Error HttpFailure(std::string_view what, const ApiResponse& response) {
  return Error{DescribeFailure(what, response), CodeOfHttpStatus(response.status)};
}

Status PostNodeEvent(ApiTransport& api, const NodeEvent& event) {
  const std::string now = NowRfc3339();
  Json involved = {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", event.node}};
  if (!event.node_uid.empty()) involved["uid"] = event.node_uid;
  std::string reporting = event.component;
  if (reporting.rfind("edgefd-", 0) == 0) reporting = "edgefd.io/" + reporting.substr(7);
  Json body = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata",
       {{"generateName", event.node + "." + event.component + "."}, {"namespace", "default"}}},
      {"involvedObject", involved},
      {"reason", event.reason},
      {"message", event.message.substr(0, 1024)},
      {"type", event.warning ? "Warning" : "Normal"},
      {"source", {{"component", event.component}, {"host", event.node}}},
      {"reportingComponent", reporting},
      {"reportingInstance", event.node},
      {"firstTimestamp", now},
      {"lastTimestamp", now},
      {"count", 1}};
  const std::string path = "/api/v1/namespaces/default/events";
  auto response = Api(api).CreateEvent("default", DumpJson(body));
  if (!response) return Within("POST " + path, response.error());
  if (response->status != 201 && response->status != 200) {
    return HttpFailure("POST " + path, *response);
  }
  return Ok{};
}

}  // namespace edgefd::kube
