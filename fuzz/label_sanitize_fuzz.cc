// Every byte string must sanitise to a valid label name and value, deterministically.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "edgefd/discovery/labels.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string raw(reinterpret_cast<const char*>(data), size);
  std::string name = edgefd::SanitizeLabelName(raw);
  std::string compat = edgefd::CompatibleToLabelName(raw);
  std::string value = edgefd::SanitizeLabelValue(raw);
  bool ok = (name.empty() || edgefd::IsValidLabelKey("edgefd.io/" + name)) &&
            (compat.empty() || edgefd::IsValidLabelKey("beta.devicetree.org/" + compat)) &&
            edgefd::IsValidLabelValue(value) && name == edgefd::SanitizeLabelName(raw);
  if (!ok) {
    std::fprintf(stderr, "bad sanitising: name=%s compat=%s value=%s\n", name.c_str(),
                 compat.c_str(), value.c_str());
    std::abort();
  }
  return 0;
}
