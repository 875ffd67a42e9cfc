#pragma once

// The kube-apiserver's Status object, as the fakes answer a refused request.
#include <string>

#include "edgefd/common/json.h"

namespace edgefd::testing {

inline std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return DumpJson(Json{{"kind", "Status"},
                       {"apiVersion", "v1"},
                       {"metadata", Json::object()},
                       {"status", "Failure"},
                       {"message", message},
                       {"reason", reason},
                       {"code", code}});
}

}  // namespace edgefd::testing
