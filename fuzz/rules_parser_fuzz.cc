// Any bytes as a rules file: parsing never crashes or throws, every error names the file and
// a line, and every accepted rule name makes valid labels.
#include <cstdio>
#include <cstdlib>
#include <string>

#include "edgefd/discovery/labels.h"
#include "edgefd/discovery/rules.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto rules = edgefd::ParseRules(text, "fuzz.yaml");
  if (!rules) {
    if (rules.error().message.rfind("fuzz.yaml:", 0) != 0) {
      std::fprintf(stderr, "error without its source: %s\n", rules.error().message.c_str());
      std::abort();
    }
    return 0;
  }
  for (const edgefd::Rule& r : *rules) {
    std::string key = "edgefd.io/accel." + r.name + ".count";
    if (!edgefd::IsValidLabelKey(key)) {
      std::fprintf(stderr, "accepted rule name makes a bad label: %s\n", key.c_str());
      std::abort();
    }
  }
  return 0;
}
